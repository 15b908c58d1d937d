// `kvbits chat`: interactive multi-turn chat with the model's ChatML template. The KV cache keeps
// the whole conversation; each turn prefills only the new text.
#include <cstdio>
#include <unistd.h>

#include <algorithm>
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "engine/generate.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/streaming_decoder.h"
#include "util/error.h"

namespace kvbits::cli {

namespace {
struct ChatFlags {
  ModelFlags model;
  KvFlags kv;
  SamplerOptions sampler;
  std::string system;
  int64_t n_predict = 512;
};

int chat(const ChatFlags& f) {
  LoadedModel m = load_model(f.model);
  const auto tmpl = m.model->file().get_string_opt("tokenizer.chat_template");
  if (!tmpl) throw Error(f.model.model_path + ": the model has no chat template (tokenizer.chat_template)");
  SessionOptions so;
  so.threads = f.model.threads;
  so.context = f.model.context;
  apply_kv_flags(f.kv, so);
  Session session(*m.model, so);
  Sampler sampler(f.sampler);
  std::vector<ChatMessage> history;
  if (!f.system.empty()) history.push_back({"system", f.system});
  std::string rendered;  // conversation text already in the KV cache
  const bool interactive = isatty(fileno(stdin));
  std::string line;
  for (;;) {
    if (interactive) std::fputs("> ", stderr);
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    history.push_back({"user", line});
    const std::string full = apply_chat_template(*tmpl, history, /*add_generation_prompt=*/true);
    // ChatML renders earlier turns identically, so only the new suffix needs prefilling.
    const std::string suffix = full.substr(rendered.size());
    const std::vector<int32_t> ids = m.tokenizer->encode(suffix, /*parse_special=*/true);
    if (session.n_past() + static_cast<int64_t>(ids.size()) + 1 > session.context()) {
      throw Error("context overflow: the conversation needs more than " + std::to_string(session.context()) +
                  " tokens (raise -c)");
    }
    StreamingDecoder out(*m.tokenizer);
    std::vector<int32_t> reply;
    GenerateOptions go;
    go.max_new_tokens = std::min(f.n_predict, session.context() - session.n_past() - static_cast<int64_t>(ids.size()));
    const GenerationStats st = generate(session, ids, sampler, go, [&](int32_t t) { return m.tokenizer->is_end_of_generation(t); },
             [&](int32_t t) {
               reply.push_back(t);
               const std::string s = out.push(t);
               std::fwrite(s.data(), 1, s.size(), stdout);
               std::fflush(stdout);
             });
    // A reply cut by -n ends on a token that was sampled but not yet run through the model; the
    // next turn must see it, so run it now (EOG tokens are re-entered by the template text).
    if (!st.stopped_at_eog && !reply.empty() && session.n_past() < session.context()) session.decode(reply.back());
    const std::string tail = out.flush();
    std::fwrite(tail.data(), 1, tail.size(), stdout);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    history.push_back({"assistant", m.tokenizer->decode(reply)});
    // The cache holds prompt + reply tokens; the end-of-turn marker the template adds after the
    // reply is prefilled with the next turn's suffix.
    rendered = full + history.back().content;
    if (interactive) std::fprintf(stderr, "[%s]\n", kv_summary(session).c_str());
  }
  return 0;
}
}  // namespace

Runner add_chat_command(CLI::App& cmd) {
  auto f = std::make_shared<ChatFlags>();
  add_model_flags(cmd, f->model);
  add_kv_flags(cmd, f->kv);
  add_sampler_flags(cmd, f->sampler);
  cmd.add_option("--system", f->system, "system prompt (default: the template's own)");
  cmd.add_option("-n,--n-predict", f->n_predict, "maximum tokens per reply")->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  return [f] { return chat(*f); };
}

}  // namespace kvbits::cli
