// `kvbits sweep -m MODEL --tasks T1,T2 --policies P1,P2 --budgets 2.25,2.5,3,4,5 [--limit N] [--jobs J] --out DIR`:
// the accuracy / effective-bits frontier. Every policy is evaluated on every task exactly as
// `kvbits eval` does (eval/runner.h; one result file per policy x budget x task, same schema and
// file names), then `kvbits report` runs over DIR (DIR/report/).
//
// Policies with a budget (learned:FILE, alloc:FILE, oracle) run once per budget as SPEC@BITS; the others
// (fp16, intN, kivi, rule) store fixed widths and run once. A budget a policy cannot reach (below
// its cheapest class) is skipped with a warning. A result file that already exists complete is
// kept (a sweep resumes where it stopped). Ctrl-C writes the partial result and stops.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/eval_workers.h"
#include "eval/interrupt.h"
#include "eval/report.h"
#include "eval/runner.h"
#include "eval/sha256.h"
#include "util/error.h"

namespace kvbits::cli {

namespace {

struct SweepFlags {
  ModelFlags model;
  KvFlags kv;
  std::string tasks;
  std::string policies;
  std::string budgets = "2.25,2.5,3,4,5";
  std::string data;
  std::string out;
  int64_t limit = 0;
  int jobs = 0;  // 0: one per thread
  int64_t decode_tokens = 0;
  int64_t decode_depth = 1024;
  bool no_report = false;
};

std::vector<std::string> split_list(const std::string& s, const char* what) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) throw Error(std::string(what) + ": empty entry in '" + s + "'");
    out.push_back(item);
  }
  if (out.empty()) throw Error(std::string(what) + ": give at least one");
  return out;
}

std::string file_safe(std::string s) {
  for (char& ch : s) {
    if (ch == '/') ch = '-';
    else if (ch == ':' || ch == ',' || ch == '=' || ch == ' ') ch = '_';
  }
  return s;
}

bool budgeted(const std::string& spec) {
  return spec.rfind("learned:", 0) == 0 || spec.rfind("alloc:", 0) == 0 || spec.rfind("oracle", 0) == 0;
}

std::string with_budget(const std::string& spec, double bits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "@%g", bits);
  return spec + buf;
}

// A complete result file already there (resume).
bool complete_result(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return false;
  try {
    return eval::read_result(path).complete;
  } catch (const Error&) {
    return false;
  }
}

int sweep_command(const SweepFlags& f) {
  const std::vector<std::string> task_names = split_list(f.tasks, "--tasks");
  const std::vector<std::string> policy_specs = split_list(f.policies, "--policies");
  std::vector<double> budgets;
  for (const std::string& b : split_list(f.budgets, "--budgets")) {
    char* end = nullptr;
    const double v = std::strtod(b.c_str(), &end);
    if (end != b.c_str() + b.size()) throw Error("--budgets: '" + b + "' is not a number of bits");
    check_budget_bits(v, "--budgets");
    budgets.push_back(v);
  }
  if (f.limit < 0) throw Error("--limit must be >= 0");
  // Every run: (spec, budget or none). Specs are parsed first so typos fail before data or model load.
  struct Run {
    std::string spec;
    std::optional<double> budget;
  };
  std::vector<Run> runs;
  for (const std::string& p : policy_specs) {
    if (p.find('@') != std::string::npos) throw Error("--policies: '" + p + "': give budgets with --budgets, not '@'");
    if (budgeted(p)) {
      for (double b : budgets) {
        runs.push_back({with_budget(p, b), b});
        PolicyOptions po;
        po.residual = f.kv.residual;
        if (!f.kv.layers.empty() && p.rfind("learned:", 0) == 0) po.layers = f.kv.layers;
        (void)parse_policy(runs.back().spec, po);
      }
    } else {
      PolicyOptions po;
      po.residual = f.kv.residual;
      (void)parse_policy(p, po);
      runs.push_back({p, std::nullopt});
    }
  }
  // Then the data (flags are checked first: a typo in a policy needs no data directory).
  const eval::DataDir data_dir = eval::resolve_data_dir(f.data);
  std::vector<eval::TaskSpec> specs;
  for (const std::string& t : task_names) specs.push_back(eval::parse_task(t, data_dir));
  std::vector<eval::TaskData> data;
  for (const auto& spec : specs) data.push_back(eval::load_task(spec, {}));
  const std::filesystem::path dir = f.out;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(dir.string() + ": cannot create the results directory: " + ec.message());

  LoadedModel m = load_model(f.model);
  const std::string sha = eval::sha256_file(f.model.model_path);
  const int jobs = f.jobs > 0 ? f.jobs : default_jobs(f.model.threads);
  eval::SigintScope sigint;
  std::vector<std::filesystem::path> files;
  std::vector<std::string> warnings;
  bool interrupted = false;
  for (const Run& run : runs) {
    if (interrupted) break;
    KvFlags kf = f.kv;
    kf.policy = run.spec;
    kf.kv_bits.reset();  // the budget is in the spec
    if (run.spec.rfind("learned:", 0) != 0) kf.layers.clear();  // --kv-layers shapes the learned runs only
    SessionOptions so;
    so.threads = f.model.threads;
    so.context = f.model.context;
    so.max_batch = 512;
    EvalWorkers ew;
    try {
      apply_kv_flags(kf, so);
      ew = make_eval_workers(*m.model, so, kf, f.model.threads, jobs, false);
    } catch (const Error& e) {
      if (!run.budget) throw;
      warnings.push_back(std::string("skipped ") + run.spec + ": " + e.what());
      std::fprintf(stderr, "sweep: %s\n", warnings.back().c_str());
      continue;
    }
    Session* session = ew.workers.front().session;
    const PrecisionPolicy& policy = session->policy();
    for (size_t t = 0; t < specs.size() && !interrupted; ++t) {
      const std::filesystem::path path = dir / (file_safe(specs[t].name) + "." + file_safe(policy.spec()) + ".json");
      files.push_back(path);
      if (complete_result(path)) {
        std::fprintf(stderr, "sweep: %s exists, kept\n", path.string().c_str());
        continue;
      }
      eval::ResultWriter writer(path);
      eval::RunResult r;
      r.model_path = f.model.model_path;
      r.model_sha256 = sha;
      r.policy.name = policy.spec();
      if (policy.residual() != 0 && policy.spec().rfind("kivi", 0) != 0) r.policy.name += ",R=" + std::to_string(policy.residual());
      if (f.kv.group != 64) r.policy.name += ",g=" + std::to_string(f.kv.group);
      r.policy.family = policy.family();
      r.policy.budget_bits = policy.budget_bits();
      r.task = specs[t].name;
      r.kind = specs[t].kind;
      r.data_file = specs[t].file.string();
      r.limit = f.limit;
      eval::RunnerOptions ro;
      ro.limit = f.limit;
      run_task_with_progress(ew.workers, *m.tokenizer, data[t], ro, r);
      interrupted = !r.complete;
      if (!interrupted && f.decode_tokens > 0) {
        const std::string sample = data[t].text.empty() ? data[t].items.front().context : data[t].text.substr(0, 20000);
        const std::vector<int32_t> ids = m.tokenizer->encode(sample, false);
        // A session of its own with all the threads (the workers may have one each).
        SessionOptions to = so;
        apply_kv_flags(kf, to);
        Session timing(*m.model, to);
        r.decode_ms_per_token = eval::measure_decode_ms(timing, ids, std::min(f.decode_depth, timing.context() - f.decode_tokens),
                                                        f.decode_tokens);
      }
      // Parameters last: they include what the policy did (achieved bits, final multiplier).
      r.policy.params = policy.parameters();
      r.policy.params["group"] = so.kv.group;
      r.policy.params["rotate"] = f.kv.rotate;
      r.policy.params["page_tokens"] = so.kv.page_tokens;
      r.policy.params["jobs"] = jobs;
      writer.write(r);
      std::printf("%s\t%s\tn=%lld\teffective bits %.3f\t%s\n", r.task.c_str(), r.policy.name.c_str(),
                  static_cast<long long>(r.n()), r.kv.effective_bits, path.string().c_str());
      std::fflush(stdout);
      if (r.n() > 0) warn_if_budget_missed(policy, r.kv.effective_bits, "sweep " + r.task);
    }
  }
  if (!f.no_report && !files.empty()) {
    std::vector<std::filesystem::path> existing;
    for (const auto& p : files) {
      if (std::filesystem::exists(p, ec)) existing.push_back(p);
    }
    eval::ReportOptions ro;
    ro.out_dir = dir / "report";
    const eval::ReportOutput rep = eval::run_report(existing, ro);
    for (const std::string& w : rep.warnings) std::fprintf(stderr, "report: %s\n", w.c_str());
    std::printf("report\t%s\n", (dir / "report" / "report.md").string().c_str());
  }
  for (const std::string& w : warnings) std::fprintf(stderr, "sweep: %s\n", w.c_str());
  return interrupted ? 130 : 0;
}

}  // namespace

Runner add_sweep_command(CLI::App& cmd) {
  auto f = std::make_shared<SweepFlags>();
  add_model_flags(cmd, f->model);
  add_kv_flags(cmd, f->kv);
  cmd.add_option("--tasks", f->tasks, "comma-separated tasks: " + eval::task_names_help())->required();
  cmd.add_option("--policies", f->policies,
                 "comma-separated policies (fp16, int4, int2, kivi:2, rule, learned:FILE, oracle; no '@')")
      ->required();
  cmd.add_option("--budgets", f->budgets, "effective-bit budgets for learned and oracle policies");
  cmd.add_option("--data", f->data, "benchmark data directory (default: $KVBITS_DATA, else ../shared/data)");
  cmd.add_option("-o,--out", f->out, "results directory (report in DIR/report)")->required();
  cmd.add_option("--limit", f->limit, "evaluate the first N items (windows) of each task only")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd.add_option("--jobs", f->jobs,
                 "items scored in parallel, each by a session of its own with threads/jobs threads (default: one per thread)")
      ->check(CLI::Range(1, 256));
  cmd.add_option("--decode-tokens", f->decode_tokens, "also time N decoded tokens per run (0: skip)")
      ->check(CLI::Range(int64_t{0}, int64_t{4096}));
  cmd.add_option("--decode-depth", f->decode_depth, "context depth for that timing");
  cmd.add_flag("--no-report", f->no_report, "only write the result files");
  return [f] { return sweep_command(*f); };
}

}  // namespace kvbits::cli
