#pragma once
// Chat prompt formatting without a Jinja engine: we recognise the template family from the GGUF
// `tokenizer.chat_template` text and render what its Jinja would render.
//
// Implemented: ChatML (recognised by "<|im_start|>"), as used by SmolLM2, Qwen and others:
//
//   [<|im_start|>system\n{default system prompt}<|im_end|>\n]   if the template has one and the
//                                                                first message is not "system"
//   <|im_start|>{role}\n{content}<|im_end|>\n                     for each message
//   <|im_start|>assistant\n                                       if add_generation_prompt
//
// The default system prompt is taken from the template text (the literal between
// "<|im_start|>system\n" and "<|im_end|>"), so the SmolLM2 template yields "You are a helpful AI
// assistant named SmolLM, trained by Hugging Face".
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace kvbits {

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", ...
  std::string content;
};

// Throws Error("unsupported chat template (only ChatML is implemented)") for other templates.
std::string apply_chat_template(std::string_view template_text, std::span<const ChatMessage> messages,
                                bool add_generation_prompt);

// The default system prompt a ChatML template inserts, if any (exposed for tests and `inspect`).
std::optional<std::string> chatml_default_system_prompt(std::string_view template_text);

}  // namespace kvbits
