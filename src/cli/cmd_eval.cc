// `kvbits eval -m MODEL --task T [--task T2 ...] --kv POLICY [--limit N] [--shard i/n] [--jobs J] [--out PATH]`:
// accuracy (multiple choice) or perplexity under a KV policy, one result file per task
// (src/eval/result_file.h), progress on stderr, a summary line per task on stdout. Items are
// scored by J sessions in parallel (default: one per thread; cli/eval_workers.h).
//
// Order of work, so that mistakes surface in seconds: task names and data files are checked and
// loaded, and every result path is reserved (created) before the model is loaded. Ctrl-C stops at
// the next item and writes the partial result (complete = false); the exit status is then 130.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/eval_workers.h"
#include "eval/interrupt.h"
#include "eval/runner.h"
#include "eval/sha256.h"
#include "util/error.h"

namespace kvbits::cli {

namespace {
struct EvalFlags {
  ModelFlags model;
  KvFlags kv;
  std::vector<std::string> tasks;
  std::string data;
  std::string out;
  std::string shard = "1/1";
  int64_t limit = 0;
  int jobs = 0;  // 0: one per thread
  bool skip_bad = false;
  eval::RunnerOptions runner;
  int64_t decode_depth = 1024;
  int64_t decode_tokens = 32;
  bool kl = false;
  std::string activations = "int8";
};

// "int4/int2" -> "int4-int2", "kivi:2" -> "kivi_2": safe in file names.
std::string file_safe(std::string s) {
  for (char& ch : s) {
    if (ch == '/') ch = '-';
    else if (ch == ':' || ch == ',' || ch == '=' || ch == ' ') ch = '_';
  }
  return s;
}

// The policy as result files and reports name it: the spec plus every non-default setting.
eval::PolicyInfo policy_info(const Session& session, const EvalFlags& f, const SessionOptions& so) {
  eval::PolicyInfo p;
  const PrecisionPolicy& policy = session.policy();
  p.name = policy.spec();
  if (policy.residual() != 0 && policy.spec().rfind("kivi", 0) != 0) p.name += ",R=" + std::to_string(policy.residual());
  if (policy.spec().rfind("kivi", 0) == 0 && policy.residual() != 128) p.name += ",R=" + std::to_string(policy.residual());
  if (f.kv.group != 64) p.name += ",g=" + std::to_string(f.kv.group);
  if (f.kv.rotate != "kv") p.name += ",rot=" + f.kv.rotate;
  if (f.kv.budget_mib > 0) p.name += ",mb=" + std::to_string(f.kv.budget_mib);
  p.family = policy.family();
  p.budget_bits = policy.budget_bits();
  p.params = policy.parameters();
  p.params["group"] = so.kv.group;
  p.params["rotate"] = f.kv.rotate;
  p.params["page_tokens"] = so.kv.page_tokens;
  p.params["budget_mib"] = f.kv.budget_mib;
  return p;
}

int eval_command(const EvalFlags& f) {
  if (f.tasks.empty()) throw Error("--task: give at least one task (" + eval::task_names_help() + ")");
  const eval::ShardSpec shard = eval::parse_shard(f.shard);
  if (f.limit < 0) throw Error("--limit must be >= 0");
  const eval::DataDir data_dir = eval::resolve_data_dir(f.data);
  std::vector<eval::TaskSpec> specs;
  for (const std::string& t : f.tasks) specs.push_back(eval::parse_task(t, data_dir));
  // The policy spec is checked before anything slow.
  SessionOptions so;
  so.threads = f.model.threads;
  so.context = f.model.context;
  so.max_batch = 512;  // side-by-side choices of one item in one forward call
  so.activations = f.activations == "float" ? ActivationMode::kFloat : ActivationMode::kInt8;
  apply_kv_flags(f.kv, so);

  std::vector<eval::TaskData> data;
  for (const auto& spec : specs) {
    data.push_back(eval::load_task(spec, {f.skip_bad}));
    if (!data.back().skipped.empty()) {
      std::fprintf(stderr, "eval: %s: skipped %zu malformed item(s), first: %s\n", spec.name.c_str(),
                   data.back().skipped.size(), data.back().skipped.front().c_str());
    }
  }
  // Result paths, reserved now.
  const std::string shard_tag = shard.count > 1 ? ".shard-" + std::to_string(shard.index) + "-of-" + std::to_string(shard.count) : "";
  std::vector<std::unique_ptr<eval::ResultWriter>> writers;
  for (const auto& spec : specs) {
    std::filesystem::path path;
    const std::string name = file_safe(spec.name) + "." + file_safe(so.policy->spec()) + shard_tag + ".json";
    if (!f.out.empty() && specs.size() == 1 && std::filesystem::path(f.out).extension() == ".json") {
      path = f.out;
    } else {
      const std::filesystem::path dir = f.out.empty() ? "results" : f.out;
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) throw Error(dir.string() + ": cannot create the results directory: " + ec.message());
      path = dir / name;
    }
    writers.push_back(std::make_unique<eval::ResultWriter>(path));
  }

  LoadedModel m = load_model(f.model);
  const std::string sha = eval::sha256_file(f.model.model_path);
  const int jobs = f.jobs > 0 ? f.jobs : default_jobs(f.model.threads);
  const EvalWorkers ew = make_eval_workers(*m.model, so, f.kv, f.model.threads, jobs, f.kl);
  Session& session = *ew.workers.front().session;
  eval::SigintScope sigint;
  bool interrupted = false;
  std::vector<eval::RunResult> results;
  for (size_t t = 0; t < specs.size() && !interrupted; ++t) {
    eval::RunResult r;
    r.model_path = f.model.model_path;
    r.model_sha256 = sha;
    r.policy = policy_info(session, f, so);
    r.policy.params["jobs"] = jobs;
    r.task = specs[t].name;
    r.kind = specs[t].kind;
    r.data_file = specs[t].file.string();
    r.shard = shard;
    r.limit = f.limit;
    r.n_skipped = static_cast<int64_t>(data[t].skipped.size());
    r.kv = {};
    eval::RunnerOptions ro = f.runner;
    ro.limit = f.limit;
    ro.shard = shard;
    run_task_with_progress(ew.workers, *m.tokenizer, data[t], ro, r);
    interrupted = !r.complete;
    results.push_back(std::move(r));
  }
  // Decode speed of this policy (once for all tasks): depth `decode_depth` of WikiText-like text.
  std::optional<double> decode_ms;
  if (!interrupted && f.decode_tokens > 0) {
    std::vector<int32_t> text;
    for (const auto& d : data) {
      const std::string sample = d.text.empty() ? d.items.front().context : d.text.substr(0, 20000);
      const std::vector<int32_t> ids = m.tokenizer->encode(sample, false);
      text.insert(text.end(), ids.begin(), ids.end());
    }
    // A session of its own with all the threads (the workers may have one each).
    SessionOptions to = so;
    apply_kv_flags(f.kv, to);
    Session timing(*m.model, to);
    decode_ms = eval::measure_decode_ms(timing, text, std::min(f.decode_depth, timing.context() - f.decode_tokens),
                                        f.decode_tokens);
  }
  for (size_t t = 0; t < results.size(); ++t) {
    eval::RunResult& r = results[t];
    r.decode_ms_per_token = decode_ms;
    writers[t]->write(r);
    const nlohmann::json j = eval::to_json(r);
    std::printf("%s\t%s\tn=%lld\t", r.task.c_str(), r.policy.name.c_str(), static_cast<long long>(r.n()));
    if (r.n() == 0) {
      std::printf("no items done");
    } else if (r.kind == eval::TaskKind::kMultipleChoice) {
      std::printf("acc %.4f ± %.4f\tacc_norm %.4f ± %.4f", j["metrics"]["acc"].get<double>(),
                  j["metrics"]["acc_stderr"].get<double>(), j["metrics"]["acc_norm"].get<double>(),
                  j["metrics"]["acc_norm_stderr"].get<double>());
    } else {
      std::printf("ppl %.4f\tbits/byte %.4f", j["metrics"]["ppl"].get<double>(), j["metrics"]["bits_per_byte"].get<double>());
      if (j["metrics"].contains("kl_vs_fp16")) std::printf("\tKL vs fp16 %.6f nats/token", j["metrics"]["kl_vs_fp16"].get<double>());
    }
    std::printf("\teffective bits %.3f\t%s%s\n", r.kv.effective_bits, writers[t]->path().string().c_str(),
                r.complete ? "" : "\t(partial: interrupted)");
    std::fflush(stdout);  // the warning after its result line
    if (r.n() > 0) warn_if_budget_missed(session.policy(), r.kv.effective_bits, "eval " + r.task);
  }
  std::fflush(stdout);
  return interrupted ? 130 : 0;
}
}  // namespace

Runner add_eval_command(CLI::App& cmd) {
  auto f = std::make_shared<EvalFlags>();
  add_model_flags(cmd, f->model);
  add_kv_flags(cmd, f->kv);
  cmd.add_option("--task", f->tasks, "task(s): " + eval::task_names_help())->required();
  cmd.add_option("--data", f->data, "benchmark data directory (default: $KVBITS_DATA, else ../shared/data)");
  cmd.add_option("-o,--out", f->out, "result file (one task, *.json) or directory (default: results/)");
  cmd.add_option("--limit", f->limit, "evaluate the first N items (windows) only")->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd.add_option("--shard", f->shard, "i/n: this machine's share of the items (1-based)");
  cmd.add_option("--jobs", f->jobs,
                 "items scored in parallel, each by a session of its own with threads/jobs threads (default: one per thread)")
      ->check(CLI::Range(1, 256));
  cmd.add_flag("--skip-bad", f->skip_bad, "count and skip malformed data lines instead of stopping");
  cmd.add_option("--ppl-window", f->runner.ppl_window, "perplexity window W in tokens")->check(CLI::Range(int64_t{2}, int64_t{8192}));
  cmd.add_option("--ppl-chunk", f->runner.ppl_chunk, "perplexity chunk C in tokens")->check(CLI::Range(int64_t{1}, int64_t{256}));
  cmd.add_option("--activations", f->activations,
                 "matmul inputs: int8 (fast, as llama.cpp) or float (slow; no activation rounding, for analysis)")
      ->check(CLI::IsMember({"int8", "float"}));
  cmd.add_flag("--kl", f->kl, "perplexity tasks: also KL divergence from an FP16-cache run of the same chunks");
  cmd.add_option("--decode-depth", f->decode_depth, "context depth for the decode timing in the result");
  cmd.add_option("--decode-tokens", f->decode_tokens, "decoded tokens for that timing (0: skip)")->check(CLI::Range(int64_t{0}, int64_t{4096}));
  return [f] { return eval_command(*f); };
}

}  // namespace kvbits::cli
