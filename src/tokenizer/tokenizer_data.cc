#include "tokenizer/tokenizer_data.h"

#include "io/gguf.h"
#include "tokenizer/pre_tokenizer.h"
#include "util/error.h"

namespace kvbits {
namespace {

std::vector<std::string> to_strings(const std::vector<std::string_view>& views) {
  return {views.begin(), views.end()};
}

// Special token ids may be stored as any integer type; absent means "none".
int32_t optional_id(const GgufFile& file, std::string_view key) {
  if (!file.has(key)) return -1;
  const int64_t v = file.get_int(key);
  if (v < -1 || v > INT32_MAX) {
    throw Error(file.path() + ": " + std::string(key) + " = " + std::to_string(v) + " is not a token id");
  }
  return static_cast<int32_t>(v);
}

}  // namespace

TokenizerData tokenizer_data_from_gguf(const GgufFile& file) {
  TokenizerData d;
  d.model = std::string(file.get_string("tokenizer.ggml.model"));
  d.pre = std::string(file.get_string_opt("tokenizer.ggml.pre").value_or(""));
  d.tokens = to_strings(file.get_string_array("tokenizer.ggml.tokens"));
  if (file.has("tokenizer.ggml.token_type")) {
    const std::vector<int64_t> types = file.get_int_array("tokenizer.ggml.token_type");
    d.token_types.reserve(types.size());
    for (const int64_t t : types) {
      d.token_types.push_back(t < INT32_MIN || t > INT32_MAX ? -1 : static_cast<int32_t>(t));
    }
  }
  if (d.model == "gpt2") {
    // Required for BPE; checked here so the message names the file.
    if (!file.has("tokenizer.ggml.merges")) {
      throw Error(file.path() + ": tokenizer.ggml.merges is missing (required for a gpt2 tokenizer)");
    }
    d.merges = to_strings(file.get_string_array("tokenizer.ggml.merges"));
  }
  d.bos_id = optional_id(file, "tokenizer.ggml.bos_token_id");
  d.eos_id = optional_id(file, "tokenizer.ggml.eos_token_id");
  d.unk_id = optional_id(file, "tokenizer.ggml.unknown_token_id");
  d.pad_id = optional_id(file, "tokenizer.ggml.padding_token_id");
  d.add_bos = file.get_bool_or("tokenizer.ggml.add_bos_token", false);
  d.chat_template = std::string(file.get_string_opt("tokenizer.chat_template").value_or(""));
  try {
    validate_tokenizer_data(d);
  } catch (const Error& e) {
    throw Error(file.path() + ": " + e.what());
  }
  return d;
}

void validate_tokenizer_data(const TokenizerData& d) {
  if (d.model != "gpt2") {
    throw Error("unsupported tokenizer model '" + d.model + "' (only gpt2 byte-level BPE is implemented)");
  }
  if (!pre_tokenizer_from_name(d.pre)) {
    throw Error("unsupported pre-tokenizer '" + d.pre + "' (supported: " +
                std::string(supported_pre_tokenizer_names()) + ")");
  }
  if (d.tokens.empty()) throw Error("tokenizer vocabulary is empty");
  if (d.tokens.size() > static_cast<size_t>(INT32_MAX)) throw Error("tokenizer vocabulary is too large");
  if (!d.token_types.empty() && d.token_types.size() != d.tokens.size()) {
    throw Error("tokenizer has " + std::to_string(d.tokens.size()) + " tokens but " +
                std::to_string(d.token_types.size()) + " token types");
  }
  for (size_t i = 0; i < d.token_types.size(); ++i) {
    if (d.token_types[i] < 0 || d.token_types[i] > static_cast<int32_t>(TokenType::kByte)) {
      throw Error("token " + std::to_string(i) + " has unknown token type " + std::to_string(d.token_types[i]));
    }
  }
  const auto check_id = [&](int32_t id, const char* what) {
    if (id < -1 || id >= static_cast<int64_t>(d.tokens.size())) {
      throw Error(std::string(what) + " token id " + std::to_string(id) + " is out of range (vocabulary has " +
                  std::to_string(d.tokens.size()) + " tokens)");
    }
  };
  check_id(d.bos_id, "bos");
  check_id(d.eos_id, "eos");
  check_id(d.unk_id, "unknown");
  check_id(d.pad_id, "padding");
  if (d.add_bos && d.bos_id < 0) throw Error("tokenizer asks to add a bos token but has none");
}

}  // namespace kvbits
