#include "cli/common.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "policy/sink_policy.h"
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

void add_kv_flags(CLI::App& cmd, KvFlags& f) {
  cmd.add_option("--kv", f.policy,
                 "KV cache policy: fp16, int8, int4, int2, K/V pairs like int4/int2, kivi:2, kivi:4, rule, "
                 "layers:W0,W1,... (a width per layer, WxN repeats), alloc:FILE@BITS (per-layer widths from a sensitivity "
                 "file), learned:FILE[@BITS], oracle@BITS");
  cmd.add_option("--kv-bits", f.kv_bits, "average effective bits for learned, alloc and oracle policies, in [2, 16]");
  cmd.add_option("--kv-residual", f.residual, "R: recent tokens kept at FP16 before the policy decides")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  cmd.add_option("--kv-group", f.group, "elements per scale/minimum of quantized KV rows (multiple of 16)")
      ->check(CLI::Range(16, 1024));
  cmd.add_option("--kv-page", f.page_tokens, "token slots per KV page (multiple of 16): the unit the cache grows by")
      ->check(CLI::Range(16, 4096));
  cmd.add_option("--kv-rotate", f.rotate, "Hadamard rotation of quantized rows: none, k, kv")
      ->check(CLI::IsMember({"none", "k", "kv"}));
  cmd.add_option("--kv-mb", f.budget_mib, "KV memory budget in MiB (0: none)")->check(CLI::Range(0.0, 1e9));
  cmd.add_option("--kv-center", f.center, "key centering: store a quantized key row as k - (the model's mean key) where that lowers its error: on, off")
      ->check(CLI::IsMember({"on", "off"}));
  cmd.add_option("--kv-key-weight", f.key_weight, "key channel weights: scale quantized key channels by how much the queries weigh them: on, off")
      ->check(CLI::IsMember({"on", "off"}));
  cmd.add_option("--kv-layers", f.layers,
                 "layer sensitivity file (as for alloc:): the learned policy then picks each token's width per layer, "
                 "its controller scaling the layers' measured damage");
  cmd.add_option("--kv-sinks", f.sinks, "keep the first N positions (attention sinks) at FP16 whatever the policy (0: none)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  cmd.add_option("--kv-sinklike", f.sink_like,
                 "least width of K/V rows whose key is sink-like (far from the model's mean key) in their layer: "
                 "off, or a width such as fp16, int8, int4, int8/int4");
}

void apply_kv_flags(const KvFlags& f, SessionOptions& so) {
  PolicyOptions po;
  po.residual = f.residual;
  po.budget_bits = f.kv_bits;
  if (!f.layers.empty()) po.layers = f.layers;
  so.policy = parse_policy(f.policy, po);
  // Sinks matter only where the policy quantizes something.
  std::optional<KvPrecision> sink_like;
  if (f.sink_like != "off") sink_like = parse_width_pair(f.sink_like, "--kv-sinklike");
  if ((f.sinks > 0 || sink_like) && (so.policy->mixed() || so.policy->floor() != KvPrecision{16, 16})) {
    so.policy = std::make_shared<SinkPolicy>(so.policy, f.sinks, sink_like);
  }
  so.kv.group = f.group;
  so.kv.page_tokens = f.page_tokens;
  so.kv.rotation = f.rotate == "none" ? KvRotation::kNone : f.rotate == "k" ? KvRotation::kKeys : KvRotation::kKeysAndValues;
  so.kv.budget_bytes = static_cast<uint64_t>(f.budget_mib * 1024.0 * 1024.0);
  so.center_keys = f.center == "on";
  so.weight_keys = f.key_weight == "on";
}

std::string kv_summary(const Session& session) {
  const KvStats st = session.kv().stats();
  char buf[256];
  std::snprintf(buf, sizeof buf, "KV %s: %s for %lld tokens (%.2f effective bits), %s allocated",
                session.policy().spec().c_str(), format_bytes(st.kv_bytes).c_str(), static_cast<long long>(st.tokens),
                st.effective_bits, format_bytes(st.kv_bytes_allocated).c_str());
  std::string s = buf;
  if (st.demoted_pages > 0) s += ", " + std::to_string(st.demoted_pages) + " pages demoted";
  const auto mix = kv_class_mix(st);
  if (mix.size() > 1) s += "; rows " + format_class_mix(mix);  // a mixed cache: which widths its rows got
  return s;
}

std::vector<std::pair<std::string, double>> kv_class_mix(const KvStats& stats) {
  int64_t total = 0;
  for (const int64_t n : stats.rows_per_class) total += n;
  std::vector<std::pair<std::string, double>> mix;
  for (int c = 0; c < static_cast<int>(stats.rows_per_class.size()); ++c) {
    const int64_t n = stats.rows_per_class[static_cast<size_t>(c)];
    if (n > 0) mix.emplace_back(to_string(kv_class_from_index(c)), static_cast<double>(n) / static_cast<double>(total));
  }
  std::sort(mix.begin(), mix.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return mix;
}

std::string format_class_mix(const std::vector<std::pair<std::string, double>>& mix) {
  std::string s;
  char buf[64];
  for (const auto& [name, share] : mix) {
    std::snprintf(buf, sizeof buf, "%s%s %.2f%%", s.empty() ? "" : " ", name.c_str(), 100.0 * share);
    s += buf;
  }
  return s;
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

std::string read_text_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": cannot read " + what + " (a directory)");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open " + what + " (" + std::strerror(errno) + ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path + ": cannot read " + what);
  return ss.str();
}

std::string format_bytes(uint64_t bytes) {
  char buf[64];
  if (bytes >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / double(1ull << 30));
  else if (bytes >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", bytes / double(1ull << 20));
  else if (bytes >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024.0);
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

bool warn_if_budget_missed(const PrecisionPolicy& policy, double effective_bits, const std::string& what) {
  const std::optional<double> budget = policy.budget_bits();
  if (!budget || std::fabs(effective_bits - *budget) <= 0.1) return false;
  std::fprintf(stderr,
               "warning: %s: %s stored %.2f effective bits against its budget of %.2f (rows the policy must keep "
               "wide, such as --kv-sinks on short contexts, cost more than the other rows can give back)\n",
               what.c_str(), policy.spec().c_str(), effective_bits, *budget);
  return true;
}

}  // namespace kvbits::cli
