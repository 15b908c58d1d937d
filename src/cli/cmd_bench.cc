// `kvbits bench`: prefill tokens/s and decode ms/token at several depths for one KV policy, as
// JSON, with the memory-bandwidth roofline (protocol: docs/protocols.md, "Decode latency").
//
// For each depth D, `runs` times: fill the cache with D prompt tokens (fixed-seed random ids, or
// with --text FILE the first D tokens of that text; committed through the policy), decode `n_gen`
// greedy tokens and record the mean ms/token. Random ids are the default because they need no
// data, but a policy that reads token features (learned, rule) picks its widths from them, and
// attention over them is not attention over prose: --text measures what a real context gets. The
// reported figure is the median run. The roofline is the bytes one decode step must read (all
// weight matrices + one embedding row + the KV cache as the policy stores it at the run's mean
// depth) divided by the measured read bandwidth (a 1 GiB buffer: main memory). Beside it, per
// depth, the working-set roofline: the same bytes divided by the bandwidth of re-reading a buffer
// of exactly that size, which is what a decode step does every token — on a host whose last-level
// cache holds the weights (480 MiB of L3 on some of our CI machines, against a 97 MB model) the
// main-memory roofline is no bound at all and this one is. Attention alone is timed too: every
// layer's attention for one query over the cache at depth D + n_gen, repeated; its bytes
// (kv_bytes) over that time is the achieved attention bandwidth. Each depth also reports the
// share of the CPUs' time the hypervisor stole during its decode runs and during attention alone
// (host_steal_fraction; backend/cpu_steal.h): on a shared VM a figure with much steal is the
// host's, not the code's.
//
// With --baseline SPEC (e.g. fp16) a second cache under that policy is filled to the same depth
// with the same tokens, and the decode steps alternate between the two caches on one thread
// pool: each policy's ms/token and their ratio then come from the same minutes of a shared,
// noisy host (issue targets such as "int4 <= 0.6x of FP16" are ratios in one run).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "backend/cpu_steal.h"
#include "backend/memory_bandwidth.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "engine/sampler.h"
#include "ops/attention.h"
#include "ops/matmul.h"
#include "util/error.h"
#include "util/version.h"

namespace kvbits::cli {

namespace {
struct BenchFlags {
  ModelFlags model;
  KvFlags kv;
  std::string depths = "0,512,2048,8192";
  int64_t n_gen = 128;
  int runs = 3;
  int64_t prefill_tokens = 512;
  std::string baseline;  // --baseline SPEC: a second policy decoded in alternation ("" = none)
  std::string text_file; // --text FILE: fill the cache with this text's tokens ("" = random ids)
  std::string out;
};

std::vector<int64_t> parse_depths(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    if (used != item.size() || item.empty() || v < 0) throw Error("--depth: '" + item + "' is not a depth in tokens");
    out.push_back(v);
  }
  if (out.empty()) throw Error("--depth: no depths given");
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// {"k4/v2": share, ...} of the committed token-layer rows (cli/common.h kv_class_mix).
nlohmann::json kv_class_json(const KvStats& kv) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, share] : kv_class_mix(kv)) out[name] = share;
  return out;
}

int bench(const BenchFlags& f) {
  using clock = std::chrono::steady_clock;
  const std::vector<int64_t> depths = parse_depths(f.depths);
  LoadedModel m = load_model(f.model);
  const LlamaConfig& c = m.model->config();
  const int64_t max_depth = *std::max_element(depths.begin(), depths.end());
  SessionOptions so;
  so.threads = f.model.threads;
  so.context = std::max<int64_t>({max_depth + f.n_gen, f.prefill_tokens, 1});
  // Depth 8192 + 128 generated tokens runs past SmolLM2's trained 8192: allowed here (speed
  // does not depend on it), refused beyond twice the trained length, and flagged in the JSON.
  if (so.context > 2 * static_cast<int64_t>(c.context_length)) {
    throw Error("depth " + std::to_string(max_depth) + " + " + std::to_string(f.n_gen) +
                " generated tokens exceeds twice the model's context length " + std::to_string(c.context_length));
  }
  so.allow_beyond_trained_context = true;
  apply_kv_flags(f.kv, so);
  Session session(*m.model, so);
  std::unique_ptr<Session> base;
  if (!f.baseline.empty()) {
    KvFlags bf = f.kv;
    bf.policy = f.baseline;
    bf.kv_bits.reset();  // a budget belongs to the measured policy (learned:FILE@BITS carries its own)
    bf.layers.clear();   // and so do per-layer widths
    SessionOptions bo = so;
    apply_kv_flags(bf, bo);
    bo.pool = &session.pool();
    base = std::make_unique<Session>(*m.model, bo);
  }
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> tok(0, c.vocab_size - 1);
  // --text: the file's tokens (BOS first where the model wants one), special-token text read as
  // plain text; it must hold every depth plus the first decoded token and the prefill prompt.
  std::vector<int32_t> text_ids;
  if (!f.text_file.empty()) {
    const std::string text = read_text_file(f.text_file, "text file");
    try {
      text_ids = m.tokenizer->encode(text, /*parse_special=*/false);
    } catch (const Error& e) {  // invalid UTF-8: say which file
      throw Error("--text " + f.text_file + ": " + e.what());
    }
    m.tokenizer->prepend_bos(text_ids);
    const int64_t needed = std::max(max_depth + 1, f.prefill_tokens);
    if (static_cast<int64_t>(text_ids.size()) < needed) {
      throw Error("--text " + f.text_file + ": " + std::to_string(text_ids.size()) + " tokens, fewer than the " +
                  std::to_string(needed) + " the largest depth (+ 1 decoded) or --prefill needs");
    }
  }
  // The first n fill tokens: the text's, or fresh random ids.
  auto fill_tokens = [&](int64_t n) {
    if (!text_ids.empty()) return std::vector<int32_t>(text_ids.begin(), text_ids.begin() + n);
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (auto& t : v) t = tok(rng);
    return v;
  };

  nlohmann::json out;
  out["kvbits"] = {{"version", kVersion}, {"commit", kGitCommit}, {"simd_target", matmul_target_name()}};
  out["model"] = {{"path", f.model.model_path}, {"name", c.name}, {"layers", c.n_layers}, {"d_model", c.d_model},
                  {"weight_bytes_per_token", m.model->weights().bytes_per_token}};
  out["threads"] = f.model.threads;
  out["kv_policy"] = {{"spec", session.policy().spec()}, {"parameters", session.policy().parameters()},
                      {"group", so.kv.group}, {"rotate", f.kv.rotate}};
  out["attention_target"] = attention_target_name();
  out["beyond_trained_context"] = so.context > c.context_length;
  out["fill"] = text_ids.empty() ? nlohmann::json{{"source", "random token ids"}}
                             : nlohmann::json{{"source", f.text_file}, {"tokens", text_ids.size()}};
  const double bw = measure_read_bandwidth(session.pool(), {});
  out["memory_read_gbps"] = bw / 1e9;

  // Prefill throughput: best of `runs` passes over a fresh cache.
  if (f.prefill_tokens > 0) {
    const std::vector<int32_t> prompt = fill_tokens(f.prefill_tokens);
    std::vector<double> tps;
    for (int r = 0; r < f.runs; ++r) {
      session.reset();
      const auto t0 = clock::now();
      session.prefill(prompt);
      tps.push_back(static_cast<double>(prompt.size()) / std::chrono::duration<double>(clock::now() - t0).count());
    }
    out["prefill"] = {{"tokens", f.prefill_tokens}, {"tokens_per_second", median(tps)}, {"runs", tps}};
  }

  nlohmann::json decode = nlohmann::json::array();
  std::vector<float> q(static_cast<size_t>(c.n_heads) * c.head_dim), attn_out(q.size());
  for (float& x : q) x = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
  AttentionScratch attn_scratch;
  for (int64_t depth : depths) {
    // Per run: ms per decoded token, of which in features + policy, and in attention.
    std::vector<double> ms, policy_ms, step_attention_ms, base_ms, ratios;
    // With a baseline: the ratio of every pair of alternated steps (all runs). Its median shrugs
    // off the bursts of a shared host (another tenant stealing a core for a few ms), which move
    // the ratio of means.
    std::vector<double> step_ratios;
    KvStats kv;
    const std::optional<CpuTimes> decode_t0 = read_cpu_times();
    for (int r = 0; r < f.runs; ++r) {
      session.reset();
      const std::vector<int32_t> prompt = fill_tokens(depth);
      if (depth > 0) session.prefill(prompt);  // (re)fill: decode must start at depth
      if (base) {
        base->reset();
        if (depth > 0) base->prefill(prompt);
      }
      int32_t next = text_ids.empty() ? tok(rng) : text_ids[static_cast<size_t>(depth)], base_next = next;
      const double policy_s0 = session.policy_seconds();
      const double attention_s0 = session.attention_seconds();
      // One greedy decode step of `s`: feeds `token`, leaves the argmax in it; returns its seconds.
      auto greedy_step = [](Session& s, int32_t& token) {
        const auto t0 = clock::now();
        std::span<float> logits = s.decode(token);
        token = argmax(logits);  // engine/sampler.h (SIMD; a NaN row is an error)
        return std::chrono::duration<double>(clock::now() - t0).count();
      };
      double seconds = 0.0, base_seconds = 0.0;
      for (int64_t i = 0; i < f.n_gen; ++i) {
        const double step = greedy_step(session, next);
        seconds += step;
        if (base) {
          const double base_step = greedy_step(*base, base_next);
          base_seconds += base_step;
          step_ratios.push_back(step / base_step);
        }
      }
      ms.push_back(1000.0 * seconds / static_cast<double>(f.n_gen));
      if (base) {
        base_ms.push_back(1000.0 * base_seconds / static_cast<double>(f.n_gen));
        ratios.push_back(ms.back() / base_ms.back());
      }
      policy_ms.push_back(1000.0 * (session.policy_seconds() - policy_s0) / static_cast<double>(f.n_gen));
      step_attention_ms.push_back(1000.0 * (session.attention_seconds() - attention_s0) / static_cast<double>(f.n_gen));
      kv = session.kv().stats();
    }
    // Attention alone over the final cache (depth + n_gen tokens), all layers, one query, 20 times
    // in a row: the kernels' speed without the weight matmuls in between. A quantized cache small
    // enough to stay in the last-level cache across repetitions (int2 at depth 8192: 26 MB) reads
    // faster here than inside a decode step, so `attention_step_ms` (timed inside the steps
    // above, at the runs' mean depth) is the figure to set against the step time. Each of the
    // rounds follows the main-memory probe (best of 3 passes), and the share of the bandwidth is
    // taken round by round: a shared host's memory and cores change speed from one minute to the
    // next, and a share of a probe taken a minute earlier measured the host as much as the kernels.
    const std::optional<CpuTimes> decode_t1 = read_cpu_times();
    const AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim};
    const WindowRange window{session.kv().window_tokens(), 0, 0};
    const int reps = 20, rounds = 5, warm_up = 5;
    const auto attention_step = [&] {  // every layer's attention of one decode step
      for (int l = 0; l < c.n_layers; ++l) {
        attention(shape, q.data(), 1, &window, session.kv().layer_view(l), attn_out.data(), session.pool(), attn_scratch);
      }
    };
    std::vector<double> attn_ms, probe_gbps, shares;
    for (int r = 0; r < rounds; ++r) {
      BandwidthOptions probe;
      probe.repeats = 3;  // best of 3 passes: one pass alone read ~10 % below the run's best of 5
      probe_gbps.push_back(measure_read_bandwidth(session.pool(), probe) / 1e9);
      // Repetitions untimed first: the probe's 1 GiB has just evicted the cache from the last
      // level, and the first repetitions after it were slower (int2 at depth 8192, session 45:
      // 3.0, 2.8, 2.5, 2.4 ms, then 2.1-2.3).
      for (int rep = 0; rep < warm_up; ++rep) attention_step();
      const auto a0 = clock::now();
      for (int rep = 0; rep < reps; ++rep) attention_step();
      attn_ms.push_back(1000.0 * std::chrono::duration<double>(clock::now() - a0).count() / reps);
      shares.push_back(static_cast<double>(kv.kv_bytes) / attn_ms.back() / 1e6 / probe_gbps.back());
    }
    const std::optional<CpuTimes> attention_t1 = read_cpu_times();
    // Whether the KV pages and the weights sit on the huge pages asked for (a fragmented host
    // gives 4 KiB pages quietly, and attention then reads another layout: kv/page_arena.h).
    const auto share_json = [](std::optional<double> v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
    const nlohmann::json huge_pages = {{"kv", share_json(session.kv().huge_page_share())},
                                       {"weights", share_json(m.model->huge_page_share())}};
    const double attention_ms = median(attn_ms);
    const double attention_share = median(shares);
    // The host's steal over the decode runs (prefills included) and over attention alone: a
    // figure taken while another tenant held the physical CPUs is not the code's (cpu_steal.h).
    nlohmann::json steal = nullptr;
    double decode_steal = 0.0;
    if (decode_t0 && decode_t1 && attention_t1) {
      decode_steal = steal_fraction(*decode_t0, *decode_t1);
      steal = {{"decode", decode_steal}, {"attention_alone", steal_fraction(*decode_t1, *attention_t1)}};
    }
    // KV bytes at the run's mean depth, scaled from the final cache.
    const double mean_depth = static_cast<double>(depth) + 0.5 * static_cast<double>(f.n_gen);
    const double kv_bytes_mean = kv.tokens > 0 ? static_cast<double>(kv.kv_bytes) * mean_depth / kv.tokens : 0.0;
    const double bytes = static_cast<double>(m.model->weights().bytes_per_token) + kv_bytes_mean;
    const double roofline_ms = 1000.0 * bytes / bw;
    BandwidthOptions working_set;
    working_set.bytes = static_cast<uint64_t>(bytes);
    const double ws_bw = measure_read_bandwidth(session.pool(), working_set);
    const double ws_roofline_ms = 1000.0 * bytes / ws_bw;
    const double med = median(ms);
    // Share of each run's decode time spent in token features and policy decisions (median).
    std::vector<double> fractions;
    for (size_t r = 0; r < ms.size(); ++r) fractions.push_back(ms[r] > 0 ? policy_ms[r] / ms[r] : 0.0);
    const double policy_fraction = median(fractions);
    const double step_attention = median(step_attention_ms);
    const double attention_gbps = attention_ms > 0 ? static_cast<double>(kv.kv_bytes) / attention_ms / 1e6 : 0.0;
    decode.push_back({{"depth", depth}, {"ms_per_token", med}, {"runs_ms", ms}, {"bytes_per_token", bytes},
                      {"roofline_ms", roofline_ms}, {"x_roofline", med / roofline_ms},
                      {"working_set_read_gbps", ws_bw / 1e9}, {"working_set_roofline_ms", ws_roofline_ms},
                      {"x_working_set_roofline", med / ws_roofline_ms},
                      {"kv_bytes", kv.kv_bytes}, {"kv_bytes_allocated", kv.kv_bytes_allocated},
                      {"kv_tokens", kv.tokens}, {"effective_bits", kv.effective_bits},
                      {"kv_classes", kv_class_json(kv)},
                      {"attention_ms", attention_ms},
                      {"attention_gbps", attention_gbps},
                      {"attention_probe_gbps", median(probe_gbps)},
                      {"attention_bandwidth_share", attention_share},
                      {"attention_rounds", {{"ms", attn_ms}, {"probe_gbps", probe_gbps}}},
                      {"attention_step_ms", step_attention},
                      {"attention_step_gbps", step_attention > 0 ? kv_bytes_mean / step_attention / 1e6 : 0.0},
                      {"policy_ms", median(policy_ms)}, {"policy_fraction", policy_fraction},
                      {"huge_page_share", huge_pages},
                      {"host_steal_fraction", steal}});
    std::fprintf(stderr,
                 "bench: %s depth %lld: %.2f ms/token (roofline %.2f ms from memory, %.2f ms at the working set's "
                 "%.1f GB/s), %.2f effective bits, attention %.2f ms "
                 "in the step, %.2f ms alone (%.1f GB/s, %.0f%% of the probe beside it), features + policy %.3f ms "
                 "(%.1f%%), host steal %.1f%%\n",
                 session.policy().spec().c_str(), static_cast<long long>(depth), med, roofline_ms, ws_roofline_ms,
                 ws_bw / 1e9, kv.effective_bits,
                 step_attention, attention_ms, attention_gbps, 100.0 * attention_share,
                 median(policy_ms), 100.0 * policy_fraction, 100.0 * decode_steal);
    if (const auto mix = kv_class_mix(kv); mix.size() > 1) {  // a mixed cache: which widths its rows got
      std::fprintf(stderr, "bench: %s depth %lld: rows %s\n", session.policy().spec().c_str(),
                   static_cast<long long>(depth), format_class_mix(mix).c_str());
    }
    warn_if_budget_missed(session.policy(), kv.effective_bits, "bench depth " + std::to_string(depth));
    if (base) {
      // The ratio of each run's two means (steps alternated), median over runs.
      decode.back()["baseline"] = {{"spec", base->policy().spec()}, {"ms_per_token", median(base_ms)},
                                   {"runs_ms", base_ms}, {"effective_bits", base->kv().stats().effective_bits}};
      decode.back()["ratio_to_baseline"] = median(ratios);
      decode.back()["runs_ratio"] = ratios;
      decode.back()["ratio_paired_median"] = median(step_ratios);
      std::fprintf(stderr, "bench: %s depth %lld, steps alternated: %.2f ms/token; %s / %s = %.3f (runs:",
                   base->policy().spec().c_str(), static_cast<long long>(depth), median(base_ms),
                   session.policy().spec().c_str(), base->policy().spec().c_str(), median(ratios));
      for (double x : ratios) std::fprintf(stderr, " %.3f", x);
      std::fprintf(stderr, "; median of the %zu step pairs %.3f)\n", step_ratios.size(), median(step_ratios));
    }
  }
  out["decode"] = decode;
  out["decode_tokens"] = f.n_gen;
  out["runs"] = f.runs;
  const std::string text = out.dump(2);
  if (!f.out.empty()) {
    FILE* fp = std::fopen(f.out.c_str(), "w");
    if (!fp) throw Error(f.out + ": cannot write results");
    std::fputs(text.c_str(), fp);
    std::fputs("\n", fp);
    std::fclose(fp);
  }
  std::printf("%s\n", text.c_str());
  return 0;
}
}  // namespace

Runner add_bench_command(CLI::App& cmd) {
  auto f = std::make_shared<BenchFlags>();
  add_model_flags(cmd, f->model);
  add_kv_flags(cmd, f->kv);
  cmd.add_option("--depth", f->depths, "comma-separated context depths for decode timing");
  cmd.add_option("--n-gen", f->n_gen, "decoded tokens per run")->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  cmd.add_option("--runs", f->runs, "runs per depth (median reported)")->check(CLI::Range(1, 100));
  cmd.add_option("--prefill", f->prefill_tokens, "prompt tokens for the prefill measurement (0: skip)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd.add_option("--baseline", f->baseline,
                 "a second KV policy (e.g. fp16) filled with the same tokens and decoded in alternation with "
                 "--kv, step by step on the same threads; reports both and their ratio");
  cmd.add_option("--text", f->text_file,
                 "fill the cache (and the prefill prompt) with the first tokens of this text file instead of random "
                 "token ids, so that feature-driven policies and attention see real text");
  cmd.add_option("-o,--out", f->out, "also write the JSON here");
  return [f] { return bench(*f); };
}

}  // namespace kvbits::cli
