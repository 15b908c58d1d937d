#include "eval/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "eval/plot.h"
#include "util/error.h"

namespace kvbits::eval {
namespace fs = std::filesystem;

// --- merging ------------------------------------------------------------------------------------

namespace {

std::string run_label(const RunResult& r) { return r.task + " / " + r.policy.name; }

// Sort key of merged runs: model (first appearance), task, family, budget (none last), name.
auto order_key(const RunResult& r, const std::map<std::string, size_t>& model_order) {
  return std::make_tuple(model_order.at(r.model_sha256), r.task, policy_family(r.policy), !r.policy.budget_bits,
                         r.policy.budget_bits.value_or(0.0), r.policy.name);
}

void merge_into(MergedRun& m, const std::string& file, const RunResult& r, std::map<int64_t, size_t>& owner,
                std::vector<std::string>& warnings) {
  RunResult& out = m.result;
  const std::string& first = m.files.front();
  if (r.kind != out.kind || r.n_total != out.n_total || r.limit != out.limit) {
    throw Error(first + " and " + file + ": " + run_label(r) + " with a different task kind, --limit or n_total (" +
                std::to_string(out.n_total) + " vs " + std::to_string(r.n_total) + " items): not shards of one run");
  }
  const double n_before = static_cast<double>(out.n());
  const size_t me = m.files.size();
  m.files.push_back(file);
  m.shards.push_back(r.shard);
  const auto check = [&](int64_t index) {
    const auto [it, inserted] = owner.emplace(index, me);
    if (!inserted) {
      throw Error(m.files[it->second] + " (shard " + to_string(m.shards[it->second]) + ") and " + file + " (shard " +
                  to_string(r.shard) + ") both hold item " + std::to_string(index) + " of " + run_label(r) +
                  ": overlapping shards, pass each shard once");
    }
  };
  for (const McRecord& x : r.items) check(x.index), out.items.push_back(x);
  for (const PplWindow& x : r.windows) check(x.index), out.windows.push_back(x);
  if (r.policy.params != out.policy.params) {
    warnings.push_back(first + " and " + file + ": policy '" + r.policy.name + "' with different parameters; merged anyway");
  }
  if (r.kvbits_commit != out.kvbits_commit) {
    warnings.push_back(first + " and " + file + ": written by different kvbits commits (" + out.kvbits_commit + ", " +
                       r.kvbits_commit + ")");
  }
  // KV figures: sums; effective bits weighted by cached tokens (by items if no tokens were counted).
  const bool by_tokens = out.kv.tokens + r.kv.tokens > 0;
  const double w0 = by_tokens ? static_cast<double>(out.kv.tokens) : n_before;
  const double w1 = by_tokens ? static_cast<double>(r.kv.tokens) : static_cast<double>(r.n());
  if (w0 + w1 > 0) out.kv.effective_bits = (out.kv.effective_bits * w0 + r.kv.effective_bits * w1) / (w0 + w1);
  out.kv.kv_bytes += r.kv.kv_bytes;
  out.kv.kv_bytes_allocated += r.kv.kv_bytes_allocated;
  out.kv.tokens += r.kv.tokens;
  out.wall_seconds += r.wall_seconds;
  out.n_skipped = std::max(out.n_skipped, r.n_skipped);
  out.timestamp = std::max(out.timestamp, r.timestamp);
}

}  // namespace

Merged merge_results(std::vector<std::pair<std::string, RunResult>> inputs) {
  Merged merged;
  std::map<std::string, size_t> model_order;
  std::map<std::tuple<std::string, std::string, std::string>, size_t> run_of;  // (sha, policy, task) -> run
  std::vector<std::map<int64_t, size_t>> owners;  // per run: item index -> position in MergedRun::files
  std::vector<std::pair<double, double>> decode;  // per run: sum of ms * n, sum of n (runs that measured it)
  std::vector<bool> interrupted;                  // per run: some file has complete = false
  for (auto& [file, r] : inputs) {
    const std::optional<double> ms = r.decode_ms_per_token;  // r may be moved from below
    const double n = static_cast<double>(std::max<int64_t>(r.n(), 1));
    const bool complete = r.complete;
    if (!r.complete) {
      merged.warnings.push_back(file + ": interrupted run (complete = false), " + std::to_string(r.n()) +
                                " items of shard " + to_string(r.shard));
    }
    model_order.emplace(r.model_sha256, model_order.size());
    const auto key = std::make_tuple(r.model_sha256, r.policy.name, r.task);
    auto it = run_of.find(key);
    if (it == run_of.end()) {
      it = run_of.emplace(key, merged.runs.size()).first;
      MergedRun m;
      m.files.push_back(file);
      m.shards.push_back(r.shard);
      owners.emplace_back();
      for (const McRecord& x : r.items) owners.back().emplace(x.index, 0);
      for (const PplWindow& x : r.windows) owners.back().emplace(x.index, 0);
      decode.emplace_back(0.0, 0.0);
      interrupted.push_back(false);
      m.result = std::move(r);
      merged.runs.push_back(std::move(m));
    } else {
      merge_into(merged.runs[it->second], file, r, owners[it->second], merged.warnings);
    }
    const size_t i = it->second;
    if (ms) {
      decode[i].first += *ms * n;
      decode[i].second += n;
    }
    interrupted[i] = interrupted[i] || !complete;
  }
  for (size_t i = 0; i < merged.runs.size(); ++i) {
    MergedRun& m = merged.runs[i];
    RunResult& r = m.result;
    std::sort(r.items.begin(), r.items.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
    std::sort(r.windows.begin(), r.windows.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
    r.decode_ms_per_token =
        decode[i].second > 0 ? std::optional<double>(decode[i].first / decode[i].second) : std::nullopt;
    // Missing shards are only well defined when every file used the same shard count.
    std::set<int64_t> present;
    bool same_count = true;
    for (const ShardSpec& s : m.shards) {
      present.insert(s.index);
      same_count = same_count && s.count == m.shards.front().count;
    }
    std::string missing;
    for (int64_t s = 1; same_count && s <= m.shards.front().count; ++s) {
      if (!present.count(s)) missing += (missing.empty() ? "" : ", ") + to_string(ShardSpec{s, m.shards.front().count});
    }
    const std::string coverage = std::to_string(r.n()) + " of " + std::to_string(r.n_total) + " items";
    if (!missing.empty()) {
      merged.warnings.push_back(run_label(r) + ": missing shard(s) " + missing + " (" + coverage + ")");
    } else if (r.n() != r.n_total && !interrupted[i]) {
      merged.warnings.push_back(run_label(r) + ": incomplete (" + coverage + ")");
    }
    m.complete = r.n() == r.n_total && !interrupted[i];
    r.complete = m.complete;
    r.shard = ShardSpec{};
  }
  std::stable_sort(merged.runs.begin(), merged.runs.end(), [&](const MergedRun& a, const MergedRun& b) {
    return order_key(a.result, model_order) < order_key(b.result, model_order);
  });
  return merged;
}

Merged merge_result_files(const std::vector<fs::path>& files) {
  std::vector<std::pair<std::string, RunResult>> inputs;
  std::set<fs::path> seen;
  for (const fs::path& f : files) {
    std::error_code ec;
    fs::path canonical = fs::weakly_canonical(f, ec);
    if (!seen.insert(ec ? f : canonical).second) continue;
    inputs.emplace_back(f.string(), read_result(f));
  }
  if (inputs.empty()) throw Error("no result files given");
  return merge_results(std::move(inputs));
}

// --- markdown -------------------------------------------------------------------------------------

PolicyPair parse_pair(std::string_view text) {
  const size_t comma = text.find(',');
  PolicyPair p;
  if (comma != std::string_view::npos) {
    p.a = std::string(text.substr(0, comma));
    p.b = std::string(text.substr(comma + 1));
  }
  if (p.a.empty() || p.b.empty() || p.b.find(',') != std::string::npos) {
    throw Error("--pair '" + std::string(text) + "': expected two policy names, POLICY_A,POLICY_B");
  }
  if (p.a == p.b) throw Error("--pair '" + std::string(text) + "': the two policies are the same");
  return p;
}

namespace {

std::string format(const char* f, double x) {
  if (!std::isfinite(x)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}
std::string with_se(const char* f, double x, double se) { return format(f, x) + " ± " + format("%.4f", se); }

// "| a | b |" and, for a header, the separator row.
std::string row(const std::vector<std::string>& cells) {
  std::string s = "|";
  for (const std::string& c : cells) {
    s += " ";
    for (char ch : c) s += ch == '|' ? std::string("\\|") : std::string(1, ch);  // a policy name may hold '|'
    s += " |";
  }
  return s + "\n";
}
// `align`: one letter per column, 'l' or 'r'; missing letters: the first column left, others right.
std::string header(const std::vector<std::string>& cells, std::string_view align = "") {
  std::string s = row(cells) + "|";
  for (size_t i = 0; i < cells.size(); ++i) {
    const bool left = i < align.size() ? align[i] == 'l' : i == 0;
    s += left ? " --- |" : " ---: |";
  }
  return s + "\n";
}

std::string n_cell(const MergedRun& m) {
  return m.complete ? std::to_string(m.result.n())
                    : std::to_string(m.result.n()) + "/" + std::to_string(m.result.n_total) + "*";
}

// One model's section. `runs` all have that model.
std::string model_section(const std::vector<const MergedRun*>& runs, const std::optional<PolicyPair>& pair) {
  std::vector<std::string> tasks;
  std::vector<const PolicyInfo*> policies;
  std::map<std::pair<std::string, std::string>, const MergedRun*> cell;  // (policy, task)
  for (const MergedRun* m : runs) {
    const RunResult& r = m->result;
    if (std::find(tasks.begin(), tasks.end(), r.task) == tasks.end()) tasks.push_back(r.task);
    if (std::none_of(policies.begin(), policies.end(), [&](const PolicyInfo* p) { return p->name == r.policy.name; })) {
      policies.push_back(&r.policy);
    }
    cell[{r.policy.name, r.task}] = m;
  }
  std::sort(tasks.begin(), tasks.end());
  std::stable_sort(policies.begin(), policies.end(), [](const PolicyInfo* a, const PolicyInfo* b) {
    return std::make_tuple(policy_family(*a), !a->budget_bits, a->budget_bits.value_or(0), a->name) <
           std::make_tuple(policy_family(*b), !b->budget_bits, b->budget_bits.value_or(0), b->name);
  });
  const RunResult& first = runs.front()->result;
  std::string s = "## Model " + fs::path(first.model_path).filename().string() + "\n\n`" + first.model_path +
                  "`, sha256 `" + first.model_sha256 + "`\n\n";

  // Main table.
  std::vector<std::string> head = {"policy", "eff. bits", "decode ms/token"};
  for (const std::string& t : tasks) {
    const bool mc = std::any_of(runs.begin(), runs.end(), [&](const MergedRun* m) {
      return m->result.task == t && m->result.kind == TaskKind::kMultipleChoice;
    });
    for (const char* c : mc ? std::vector<const char*>{"acc", "acc_norm", "n"} : std::vector<const char*>{"ppl", "bits/byte", "n"}) {
      head.push_back(t + " " + c);
    }
  }
  s += header(head);
  bool any_incomplete = false;
  for (const PolicyInfo* p : policies) {
    double bits = 0, tokens = 0, bits_plain = 0, ms = 0, ms_n = 0;
    int runs_here = 0;
    std::vector<std::string> cells;
    for (const std::string& t : tasks) {
      const auto it = cell.find({p->name, t});
      if (it == cell.end()) {
        cells.insert(cells.end(), {"—", "—", "—"});
        continue;
      }
      const MergedRun& m = *it->second;
      const RunResult& r = m.result;
      any_incomplete = any_incomplete || !m.complete;
      ++runs_here;
      bits += r.kv.effective_bits * static_cast<double>(r.kv.tokens);
      tokens += static_cast<double>(r.kv.tokens);
      bits_plain += r.kv.effective_bits;
      if (r.decode_ms_per_token) ms += *r.decode_ms_per_token * static_cast<double>(r.n()), ms_n += static_cast<double>(r.n());
      if (r.n() == 0) {
        cells.insert(cells.end(), {"—", "—", n_cell(m)});
      } else if (r.kind == TaskKind::kMultipleChoice) {
        const McMetrics mm = mc_metrics(r.items);
        cells.insert(cells.end(), {with_se("%.4f", mm.acc, mm.acc_stderr), with_se("%.4f", mm.acc_norm, mm.acc_norm_stderr), n_cell(m)});
      } else {
        const PplMetrics pm = ppl_metrics(r.windows);
        cells.insert(cells.end(), {format("%.3f", pm.ppl), format("%.4f", pm.bits_per_byte), n_cell(m)});
      }
    }
    const double row_bits = tokens > 0 ? bits / tokens : bits_plain / std::max(runs_here, 1);
    std::vector<std::string> line = {p->name, format("%.2f", row_bits), ms_n > 0 ? format("%.2f", ms / ms_n) : "—"};
    line.insert(line.end(), cells.begin(), cells.end());
    s += row(line);
  }
  s += "\nacc, acc_norm: fraction correct ± standard error sqrt(p(1-p)/n). Effective bits: weighted by cached "
       "tokens over the row's tasks. n: items (windows for perplexity)";
  s += any_incomplete ? "; * incomplete run (missing shards or interrupted), n of the task's total.\n\n" : ".\n\n";

  // Effective bits per task (the x axis of the plots).
  if (tasks.size() > 1) {
    std::vector<std::string> h = {"policy"};
    h.insert(h.end(), tasks.begin(), tasks.end());
    s += "Effective KV bits by task:\n\n" + header(h);
    for (const PolicyInfo* p : policies) {
      std::vector<std::string> line = {p->name};
      for (const std::string& t : tasks) {
        const auto it = cell.find({p->name, t});
        line.push_back(it == cell.end() ? "—" : format("%.2f", it->second->result.kv.effective_bits));
      }
      s += row(line);
    }
    s += "\n";
  }

  // Paired differences.
  if (pair) {
    s += "Paired differences " + pair->b + " − " + pair->a + " (same items; ± standard error of the mean difference):\n\n";
    s += header({"task", "n", "Δ acc", "Δ acc_norm", "note"}, "lrrrl");
    for (const std::string& t : tasks) {
      const auto a = cell.find({pair->a, t});
      const auto b = cell.find({pair->b, t});
      if (a == cell.end() || b == cell.end()) {
        s += row({t, "—", "—", "—", std::string("no result for ") + (a == cell.end() ? pair->a : pair->b)});
        continue;
      }
      if (a->second->result.kind != TaskKind::kMultipleChoice) {
        const PplMetrics pa = ppl_metrics(a->second->result.windows), pb = ppl_metrics(b->second->result.windows);
        s += row({t, std::to_string(std::min(pa.windows, pb.windows)), "—", "—",
                  "Δ ppl " + format("%+.3f", pb.ppl - pa.ppl) + ", Δ bits/byte " + format("%+.4f", pb.bits_per_byte - pa.bits_per_byte)});
        continue;
      }
      const McPaired d = paired_mc(a->second->result.items, b->second->result.items);
      std::string note;
      if (d.n_only_a + d.n_only_b > 0) {
        note = std::to_string(d.n_only_a + d.n_only_b) + " items in one run only, left out";
      }
      s += row({t, std::to_string(d.acc.n), with_se("%+.4f", d.acc.mean, d.acc.se),
                with_se("%+.4f", d.acc_norm.mean, d.acc_norm.se), note});
    }
    s += "\n";
  }
  return s;
}

}  // namespace

std::string markdown_report(const Merged& merged, const std::optional<PolicyPair>& pair) {
  if (pair) {
    for (const std::string& name : {pair->a, pair->b}) {
      if (std::none_of(merged.runs.begin(), merged.runs.end(), [&](const MergedRun& m) { return m.result.policy.name == name; })) {
        std::string known;
        for (const MergedRun& m : merged.runs) {
          if (known.find("'" + m.result.policy.name + "'") == std::string::npos) {
            known += (known.empty() ? "'" : ", '") + m.result.policy.name + "'";
          }
        }
        throw Error("--pair: no results for policy '" + name + "' (policies: " + known + ")");
      }
    }
  }
  std::string s = "# kvbits evaluation report\n\n";
  for (size_t i = 0; i < merged.runs.size();) {
    std::vector<const MergedRun*> group;
    const std::string& sha = merged.runs[i].result.model_sha256;
    for (; i < merged.runs.size() && merged.runs[i].result.model_sha256 == sha; ++i) group.push_back(&merged.runs[i]);
    s += model_section(group, pair);
  }
  return s;
}

ReportOutput run_report(const std::vector<fs::path>& files, const ReportOptions& options) {
  ReportOutput out;
  Merged merged = merge_result_files(files);
  out.warnings = merged.warnings;
  out.markdown = markdown_report(merged, options.pair);  // bad --pair fails before anything is written
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (!fs::is_directory(options.out_dir)) {
    throw Error(options.out_dir.string() + ": cannot create the report directory" + (ec ? " (" + ec.message() + ")" : ""));
  }
  PlotOutput plots = draw_plots(merged.runs, options.out_dir, options.gnuplot);
  std::string pictures;
  for (const fs::path& f : plots.files) {
    if (f.extension() == ".svg") pictures += "![" + f.stem().string() + "](" + f.filename().string() + ")\n";
  }
  if (!pictures.empty()) out.markdown += "## Pictures\n\n" + pictures;
  const fs::path md = options.out_dir / "report.md";
  std::ofstream f(md);
  f << out.markdown;
  f.close();
  if (!f) throw Error(md.string() + ": cannot write");
  out.files.push_back(md);
  out.files.insert(out.files.end(), plots.files.begin(), plots.files.end());
  out.warnings.insert(out.warnings.end(), plots.warnings.begin(), plots.warnings.end());
  return out;
}

}  // namespace kvbits::eval
