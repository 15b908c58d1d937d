#include "tokenizer/streaming_decoder.h"

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace kvbits {

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool render_special)
    : tokenizer_(&tokenizer), render_special_(render_special) {}

std::string StreamingDecoder::push(int32_t id) {
  return push_bytes(tokenizer_->token_bytes(id, render_special_));
}

std::string StreamingDecoder::push_bytes(std::string_view bytes) {
  pending_.append(bytes);
  std::string out;
  out.reserve(pending_.size());
  size_t pos = 0;
  while (pos < pending_.size()) {
    const utf8::Scan r = utf8::scan(pending_, pos);
    if (r.kind == utf8::Scan::Kind::kIncomplete) break;  // wait for the next token
    if (r.kind == utf8::Scan::Kind::kComplete) {
      out.append(pending_, pos, r.length);
    } else {
      out.append(utf8::kReplacementUtf8);
    }
    pos += r.length;
  }
  pending_.erase(0, pos);
  return out;
}

std::string StreamingDecoder::flush() {
  std::string out = pending_.empty() ? std::string() : std::string(utf8::kReplacementUtf8);
  pending_.clear();
  return out;
}

}  // namespace kvbits
