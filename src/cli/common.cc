#include "cli/common.h"

#include <cstdio>

#include "tokenizer/tokenizer_data.h"
#include "util/error.h"

namespace kvbits::cli {

void add_model_flags(CLI::App& cmd, ModelFlags& flags) {
  cmd.add_option("-m,--model", flags.model_path, "GGUF model file")->required();
  cmd.add_option("-t,--threads", flags.threads, "threads")->check(CLI::Range(1, 256));
  cmd.add_option("-c,--ctx-size", flags.context, "context size in tokens (0 = the model's maximum)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
}

void add_sampler_flags(CLI::App& cmd, SamplerOptions& o) {
  cmd.add_option("--temp", o.temperature, "temperature (0 = greedy)");
  cmd.add_option("--top-k", o.top_k, "top-k sampling (<= 0: off)");
  cmd.add_option("--top-p", o.top_p, "top-p (nucleus) sampling (1: off)");
  cmd.add_option("--min-p", o.min_p, "min-p sampling (0: off)");
  cmd.add_option("--repeat-penalty", o.repeat_penalty, "repetition penalty (1: off)");
  cmd.add_option("--repeat-last-n", o.repeat_last_n, "tokens the repetition penalty looks back");
  cmd.add_option("-s,--seed", o.seed, "random seed");
}

LoadedModel load_model(const ModelFlags& flags) {
  LoadedModel m;
  m.model = LlamaModel::load(flags.model_path);
  m.tokenizer = std::make_unique<Tokenizer>(tokenizer_data_from_gguf(m.model->file()));
  if (m.tokenizer->vocab_size() != m.model->config().vocab_size) {
    throw Error(flags.model_path + ": tokenizer has " + std::to_string(m.tokenizer->vocab_size()) +
                " tokens but token_embd.weight has " + std::to_string(m.model->config().vocab_size) + " rows");
  }
  return m;
}

std::string format_bytes(uint64_t bytes) {
  char buf[64];
  if (bytes >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / double(1ull << 30));
  else if (bytes >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", bytes / double(1ull << 20));
  else if (bytes >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024.0);
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

}  // namespace kvbits::cli
