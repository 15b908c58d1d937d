#include "eval/runner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string_view>
#include <thread>

#include "engine/sampler.h"
#include "eval/interrupt.h"
#include "ops/softmax_stats.h"
#include "util/error.h"

namespace kvbits::eval {

namespace {

// log p(token) under logits[vocab]: logits[token] - log sum exp(logits), the sum by the SIMD
// kernel of ops/softmax_stats.h (float exp, lane sums combined in double; relative error of the sum
// ~1e-6 in practice, so ~1e-6 nats per token). The scalar double loop it replaced was 6 % of a
// HellaSwag run's time (perf, 2026-12-03).
double log_prob(std::span<const float> logits, int32_t token) {
  return static_cast<double>(logits[static_cast<size_t>(token)]) - log_sum_exp(logits);
}

// Adds the session's cache (bytes, tokens) to a run's totals (eval::KvStats).
void add_kv(const Session& session, KvStats& kv) {
  const kvbits::KvStats st = session.kv().stats();
  kv.kv_bytes += st.kv_bytes;
  kv.kv_bytes_allocated += st.kv_bytes_allocated;
  kv.tokens += static_cast<uint64_t>(st.tokens);
}

void finish_kv(const Session& session, RunResult& result) {
  const LlamaConfig& c = session.model().config();
  const double elems = static_cast<double>(result.kv.tokens) * c.n_layers * 2.0 * c.kv_dim();
  result.kv.effective_bits = elems > 0 ? 8.0 * static_cast<double>(result.kv.kv_bytes) / elems : 16.0;
}

// Python's str.isspace() for one code point.
bool python_isspace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

// Length in bytes of `s` without its trailing whitespace (Python's len(s.rstrip()) in bytes).
// `s` is valid UTF-8 (the loaders check it).
size_t rstrip_length(std::string_view s) {
  size_t keep = 0;
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1Fu) : n == 3 ? (b & 0x0Fu) : (b & 0x07u);
    for (size_t k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
    i += n;
    if (!python_isspace(cp)) keep = std::min(i, s.size());
  }
  return keep;
}

McRecord score_item(Session& session, const Tokenizer& tok, const McItem& item, int64_t index, KvStats& kv) {
  const McTokens tokens = tokenize_item(tok, item);
  const std::vector<int32_t>& context = tokens.context;
  const std::vector<std::vector<int32_t>>& conts = tokens.continuations;
  session.reset();
  const std::span<float> last = session.prefill(context);
  McRecord r;
  r.index = index;
  r.gold = item.gold;
  for (size_t j = 0; j < conts.size(); ++j) {
    r.ll.push_back(log_prob(last, conts[j][0]));
    r.length.push_back(std::max<int64_t>(1, count_code_points(item.choices[j])));
  }
  add_kv(session, kv);  // the compressed context, before any choice token
  // Every continuation token but the last is fed; row t predicts token t + 1.
  std::vector<std::vector<int32_t>> feeds;
  std::vector<size_t> owner;
  for (size_t j = 0; j < conts.size(); ++j) {
    if (conts[j].size() < 2) continue;
    feeds.emplace_back(conts[j].begin(), conts[j].end() - 1);
    owner.push_back(j);
  }
  if (!feeds.empty()) {
    std::vector<int64_t> offsets;
    const std::span<float> logits = session.score_continuations(feeds, offsets);
    const size_t vocab = static_cast<size_t>(session.model().config().vocab_size);
    for (size_t f = 0; f < feeds.size(); ++f) {
      const auto& c = conts[owner[f]];
      for (size_t t = 0; t + 1 < c.size(); ++t) {
        const size_t row = static_cast<size_t>(offsets[f]) + t;
        r.ll[owner[f]] += log_prob(logits.subspan(row * vocab, vocab), c[t + 1]);
      }
    }
  }
  return r;
}

// KL(p || q) of the distributions softmax(a) and softmax(b), nats.
double kl_divergence(std::span<const float> a, std::span<const float> b) {
  float ma = -INFINITY, mb = -INFINITY;
  for (float x : a) ma = std::max(ma, x);
  for (float x : b) mb = std::max(mb, x);
  double za = 0.0, zb = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    za += std::exp(static_cast<double>(a[i] - ma));
    zb += std::exp(static_cast<double>(b[i] - mb));
  }
  const double lza = std::log(za), lzb = std::log(zb);
  double kl = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double la = a[i] - ma - lza, lb = b[i] - mb - lzb;
    kl += std::exp(la) * (la - lb);
  }
  return std::max(0.0, kl);
}

}  // namespace

McTokens tokenize_item(const Tokenizer& tok, const McItem& item) {
  // _encode_pair: trailing whitespace of the context belongs to the continuation.
  size_t n_keep = rstrip_length(item.context);
  if (n_keep == 0) n_keep = item.context.size();
  const std::string_view context_text = std::string_view(item.context).substr(0, n_keep);
  McTokens t;
  t.context = tok.encode(context_text, /*parse_special=*/false);
  tok.prepend_bos(t.context);
  const size_t n_ctx = t.context.size();
  for (const std::string& choice : item.choices) {
    std::vector<int32_t> whole = tok.encode(item.context + " " + choice, false);
    tok.prepend_bos(whole);
    if (whole.size() <= n_ctx) {
      throw Error("item " + item.id + ": choice '" + choice + "' adds no token after the context");
    }
    t.continuations.emplace_back(whole.begin() + static_cast<ptrdiff_t>(n_ctx), whole.end());
  }
  return t;
}

int64_t ppl_window_count(int64_t n_tokens, int64_t window) {
  const int64_t full = n_tokens / window;
  return full + (n_tokens - full * window >= 2 ? 1 : 0);
}

namespace {

// What one worker produced.
struct WorkerOutput {
  std::vector<McRecord> items;
  std::vector<PplWindow> windows;
  KvStats kv;
  std::exception_ptr error;
};

// Running totals over all workers, for the progress line; `stop` makes the workers quit at their
// next item (an error elsewhere).
struct SharedProgress {
  std::mutex mu;
  int64_t done = 0, right = 0, tokens = 0;
  double nll = 0.0, kl = 0.0;
  std::atomic<bool> stop{false};
};

// One perplexity window [begin, end) of `tokens`, fed in chunks from an empty cache.
PplWindow score_window(const RunnerWorker& wk, const Tokenizer& tok, std::span<const int32_t> tokens, int64_t w,
                       const RunnerOptions& o, KvStats& kv) {
  Session& session = *wk.session;
  const size_t vocab = static_cast<size_t>(session.model().config().vocab_size);
  const int64_t begin = w * o.ppl_window;
  const int64_t end = std::min<int64_t>(begin + o.ppl_window, static_cast<int64_t>(tokens.size()));
  session.reset();
  if (wk.reference) wk.reference->reset();
  PplWindow pw;
  pw.index = w;
  if (wk.reference) pw.kl = 0.0;
  for (int64_t c0 = begin; c0 < end; c0 += o.ppl_chunk) {
    const int64_t c1 = std::min(end, c0 + o.ppl_chunk);
    const std::span<const int32_t> chunk = tokens.subspan(static_cast<size_t>(c0), static_cast<size_t>(c1 - c0));
    const std::span<float> logits = session.prefill_all_logits(chunk);
    const std::span<float> ref = wk.reference ? wk.reference->prefill_all_logits(chunk) : std::span<float>();
    for (int64_t t = c0; t < c1; ++t) {
      if (t + 1 >= end) break;  // the window's last token predicts nothing inside it
      const auto row = logits.subspan(static_cast<size_t>(t - c0) * vocab, vocab);
      if (wk.reference) *pw.kl += kl_divergence(ref.subspan(static_cast<size_t>(t - c0) * vocab, vocab), row);
      pw.nll -= log_prob(row, tokens[static_cast<size_t>(t + 1)]);
      ++pw.tokens;
      pw.bytes += static_cast<int64_t>(tok.token_bytes(tokens[static_cast<size_t>(t + 1)]).size());
    }
  }
  add_kv(session, kv);
  return pw;
}

// Worker w of `stride`: items selected[w], selected[w + stride], ...
void run_worker(const RunnerWorker& wk, size_t w, size_t stride, const Tokenizer& tok, const TaskData& data,
                std::span<const int32_t> ppl_tokens, const std::vector<int64_t>& selected, const RunnerOptions& o,
                const ProgressFn& on_progress, SharedProgress& shared, WorkerOutput& out) {
  const bool mc = data.spec.kind == TaskKind::kMultipleChoice;
  const bool kl = wk.reference != nullptr;
  const int64_t total = static_cast<int64_t>(selected.size());
  char metric[64];
  try {
    for (size_t i = w; i < selected.size(); i += stride) {
      if (interrupt_requested() || shared.stop.load()) break;
      const int64_t index = selected[i];
      if (mc) {
        out.items.push_back(score_item(*wk.session, tok, data.items[static_cast<size_t>(index)], index, out.kv));
      } else {
        out.windows.push_back(score_window(wk, tok, ppl_tokens, index, o, out.kv));
      }
      const std::lock_guard<std::mutex> lock(shared.mu);
      ++shared.done;
      if (mc) {
        shared.right += correct(out.items.back()) ? 1 : 0;
        std::snprintf(metric, sizeof metric, "acc %.4f", static_cast<double>(shared.right) / static_cast<double>(shared.done));
      } else {
        const PplWindow& pw = out.windows.back();
        shared.nll += pw.nll;
        shared.tokens += pw.tokens;
        shared.kl += pw.kl.value_or(0.0);
        const double n = static_cast<double>(std::max<int64_t>(1, shared.tokens));
        if (kl) {
          std::snprintf(metric, sizeof metric, "ppl %.3f kl %.5f", std::exp(shared.nll / n), shared.kl / n);
        } else {
          std::snprintf(metric, sizeof metric, "ppl %.3f", std::exp(shared.nll / n));
        }
      }
      on_progress(shared.done, total, metric);
    }
  } catch (...) {
    out.error = std::current_exception();
    shared.stop.store(true);
  }
  wk.session->reset();
}

}  // namespace

void run_task(std::span<const RunnerWorker> workers, const Tokenizer& tok, const TaskData& data, const RunnerOptions& o,
              RunResult& result, const ProgressFn& on_progress) {
  if (workers.empty()) throw Error("evaluation needs at least one session");
  std::vector<int32_t> ppl_tokens;
  int64_t n_items = 0;
  if (data.spec.kind == TaskKind::kMultipleChoice) {
    n_items = static_cast<int64_t>(data.items.size());
  } else {
    if (o.ppl_window < 2 || o.ppl_chunk < 1) throw Error("perplexity needs a window of >= 2 tokens and chunks of >= 1");
    ppl_tokens = tok.encode(data.text, /*parse_special=*/false);
    n_items = ppl_window_count(static_cast<int64_t>(ppl_tokens.size()), o.ppl_window);
  }
  result.n_total = limited_count(n_items, o.limit);
  const std::vector<int64_t> selected = select_items(n_items, o.limit, o.shard);

  // More workers than items would only idle.
  const size_t n_workers = std::min(workers.size(), selected.size());
  std::vector<WorkerOutput> outputs(n_workers);
  SharedProgress shared;
  std::vector<std::thread> threads;
  for (size_t w = 1; w < n_workers; ++w) {
    threads.emplace_back([&, w] {
      run_worker(workers[w], w, n_workers, tok, data, ppl_tokens, selected, o, on_progress, shared, outputs[w]);
    });
  }
  run_worker(workers[0], 0, n_workers, tok, data, ppl_tokens, selected, o, on_progress, shared, outputs[0]);
  for (std::thread& t : threads) t.join();
  for (const WorkerOutput& out : outputs) {
    if (out.error) std::rethrow_exception(out.error);
  }

  for (WorkerOutput& out : outputs) {
    result.items.insert(result.items.end(), out.items.begin(), out.items.end());
    result.windows.insert(result.windows.end(), out.windows.begin(), out.windows.end());
    result.kv.kv_bytes += out.kv.kv_bytes;
    result.kv.kv_bytes_allocated += out.kv.kv_bytes_allocated;
    result.kv.tokens += out.kv.tokens;
  }
  std::sort(result.items.begin(), result.items.end(), [](const McRecord& a, const McRecord& b) { return a.index < b.index; });
  std::sort(result.windows.begin(), result.windows.end(), [](const PplWindow& a, const PplWindow& b) { return a.index < b.index; });
  result.complete = result.n() == static_cast<int64_t>(selected.size());
  finish_kv(*workers[0].session, result);
}

void run_task(Session& session, const Tokenizer& tok, const TaskData& data, const RunnerOptions& o, RunResult& result,
              const ProgressFn& on_progress) {
  const RunnerWorker worker{&session, nullptr};
  run_task(std::span<const RunnerWorker>(&worker, 1), tok, data, o, result, on_progress);
}

double measure_decode_ms(Session& session, const std::vector<int32_t>& text, int64_t depth, int64_t n_tokens) {
  if (text.empty()) throw Error("decode timing needs some text");
  std::vector<int32_t> prompt(static_cast<size_t>(std::max<int64_t>(depth, 1)));
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = text[i % text.size()];
  session.reset();
  std::span<float> logits = session.prefill(prompt);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n_tokens; ++i) {
    const int32_t next = argmax(logits);  // engine/sampler.h
    logits = session.decode(next);
  }
  const double ms = 1000.0 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                    static_cast<double>(n_tokens);
  session.reset();
  return ms;
}

}  // namespace kvbits::eval
