#include "tokenizer/chat_template.h"

#include "util/error.h"

namespace kvbits {
namespace {

constexpr std::string_view kStart = "<|im_start|>";
constexpr std::string_view kEnd = "<|im_end|>";

// Undoes the escapes a Jinja string literal may use; templates store newlines either raw or as \n.
std::string unescape_jinja_literal(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out.push_back(s[i]);
      continue;
    }
    const char c = s[++i];
    switch (c) {
      case 'n': out.push_back('\n'); break;
      case 't': out.push_back('\t'); break;
      case 'r': out.push_back('\r'); break;
      default: out.push_back(c); break;  // \\ \' \"
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> chatml_default_system_prompt(std::string_view t) {
  const std::string raw_head = std::string(kStart) + "system\n";
  const std::string escaped_head = std::string(kStart) + "system\\n";
  size_t begin = t.find(raw_head);
  if (begin != std::string_view::npos) {
    begin += raw_head.size();
  } else if ((begin = t.find(escaped_head)) != std::string_view::npos) {
    begin += escaped_head.size();
  } else {
    return std::nullopt;
  }
  const size_t end = t.find(kEnd, begin);
  if (end == std::string_view::npos) return std::nullopt;
  const std::string_view literal = t.substr(begin, end - begin);
  // A system header followed by template code (e.g. "' + message['content']") is not a literal
  // default prompt: only accept plain text.
  if (literal.find_first_of("'\"{}") != std::string_view::npos) return std::nullopt;
  return unescape_jinja_literal(literal);
}

std::string apply_chat_template(std::string_view template_text, std::span<const ChatMessage> messages,
                                bool add_generation_prompt) {
  if (template_text.find(kStart) == std::string_view::npos) {
    throw Error("unsupported chat template (only ChatML is implemented)");
  }
  std::string out;
  const auto turn = [&](std::string_view role, std::string_view content) {
    out.append(kStart).append(role).append("\n").append(content).append(kEnd).append("\n");
  };
  if (!messages.empty() && messages.front().role != "system") {
    if (const auto system = chatml_default_system_prompt(template_text)) turn("system", *system);
  }
  for (const ChatMessage& m : messages) turn(m.role, m.content);
  if (add_generation_prompt) out.append(kStart).append("assistant\n");
  return out;
}

}  // namespace kvbits
