// `kvbits run`: one prompt in, streamed tokens out, a one-line summary on stderr.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "engine/generate.h"
#include "tokenizer/streaming_decoder.h"
#include "util/error.h"

namespace kvbits::cli {

namespace {
struct RunFlags {
  ModelFlags model;
  KvFlags kv;
  SamplerOptions sampler;
  std::string prompt;
  std::string prompt_file;
  int64_t n_predict = 128;
  bool no_special = false;
  bool ignore_eos = false;
};

int run(const RunFlags& f) {
  LoadedModel m = load_model(f.model);
  const std::string prompt = f.prompt_file.empty() ? f.prompt : read_text_file(f.prompt_file, "prompt file");
  std::vector<int32_t> ids = m.tokenizer->encode(prompt, !f.no_special);
  m.tokenizer->prepend_bos(ids);
  if (ids.empty()) throw Error("the prompt is empty (give -p TEXT or -f FILE)");
  SessionOptions so;
  so.threads = f.model.threads;
  so.context = f.model.context;
  apply_kv_flags(f.kv, so);
  Session session(*m.model, so);
  if (static_cast<int64_t>(ids.size()) > session.context()) {
    throw Error("context overflow: the prompt has " + std::to_string(ids.size()) +
                " tokens but the context holds " + std::to_string(session.context()) + " (raise -c)");
  }
  Sampler sampler(f.sampler);
  StreamingDecoder out(*m.tokenizer);
  GenerateOptions go;
  go.max_new_tokens = f.n_predict;
  go.stop_at_eog = !f.ignore_eos;
  const GenerationStats st = generate(
      session, ids, sampler, go, [&](int32_t t) { return m.tokenizer->is_end_of_generation(t); },
      [&](int32_t t) {
        const std::string s = out.push(t);
        std::fwrite(s.data(), 1, s.size(), stdout);
        std::fflush(stdout);
      });
  const std::string tail = out.flush();
  std::fwrite(tail.data(), 1, tail.size(), stdout);
  std::fputs("\n", stdout);
  std::fflush(stdout);
  std::fprintf(stderr,
               "kvbits: prompt %lld tokens, prefill %.1f tok/s | generated %lld tokens, decode %.2f ms/token | %s%s\n",
               static_cast<long long>(st.prompt_tokens), st.prefill_tokens_per_second(),
               static_cast<long long>(st.generated_tokens), st.decode_ms_per_token(), kv_summary(session).c_str(),
               (!st.stopped_at_eog && session.n_past() >= session.context()) ? " | stopped: context full" : "");
  return 0;
}
}  // namespace

Runner add_run_command(CLI::App& cmd) {
  auto f = std::make_shared<RunFlags>();
  add_model_flags(cmd, f->model);
  add_kv_flags(cmd, f->kv);
  add_sampler_flags(cmd, f->sampler);
  auto* p = cmd.add_option("-p,--prompt", f->prompt, "prompt text");
  auto* pf = cmd.add_option("-f,--file", f->prompt_file, "read the prompt from a file");
  p->excludes(pf);
  cmd.add_option("-n,--n-predict", f->n_predict, "tokens to generate")->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  cmd.add_flag("--no-special", f->no_special, "treat special-token text in the prompt as plain text");
  cmd.add_flag("--ignore-eos", f->ignore_eos, "keep generating past end-of-generation tokens");
  return [f] { return run(*f); };
}

}  // namespace kvbits::cli
