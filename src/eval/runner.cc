#include "eval/runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string_view>

#include "eval/interrupt.h"
#include "util/error.h"

namespace kvbits::eval {

namespace {

// log p(token) under logits[vocab] (log-softmax, double accumulation).
double log_prob(std::span<const float> logits, int32_t token) {
  float mx = -INFINITY;
  for (float x : logits) mx = std::max(mx, x);
  double sum = 0.0;
  for (float x : logits) sum += std::exp(static_cast<double>(x - mx));
  return static_cast<double>(logits[static_cast<size_t>(token)] - mx) - std::log(sum);
}

void add_kv(const Session& session, RunResult& result) {
  const kvbits::KvStats st = session.kv().stats();
  result.kv.kv_bytes += st.kv_bytes;
  result.kv.kv_bytes_allocated += st.kv_bytes_allocated;
  result.kv.tokens += static_cast<uint64_t>(st.tokens);
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

McRecord score_item(Session& session, const Tokenizer& tok, const McItem& item, int64_t index, RunResult& result) {
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
  add_kv(session, result);  // the compressed context, before any choice token
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
  if (tok.add_bos() && tok.bos_id() >= 0) t.context.insert(t.context.begin(), tok.bos_id());
  const size_t n_ctx = t.context.size();
  for (const std::string& choice : item.choices) {
    std::vector<int32_t> whole = tok.encode(item.context + " " + choice, false);
    if (tok.add_bos() && tok.bos_id() >= 0) whole.insert(whole.begin(), tok.bos_id());
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

void run_task(Session& session, const Tokenizer& tok, const TaskData& data, const RunnerOptions& o, RunResult& result,
              const std::function<void(int64_t, int64_t, const std::string&)>& on_progress) {
  result.complete = true;
  char metric[64];
  if (data.spec.kind == TaskKind::kMultipleChoice) {
    const int64_t n_items = static_cast<int64_t>(data.items.size());
    result.n_total = limited_count(n_items, o.limit);
    const std::vector<int64_t> selected = select_items(n_items, o.limit, o.shard);
    int64_t done = 0, right = 0;
    for (int64_t index : selected) {
      if (interrupt_requested()) {
        result.complete = false;
        break;
      }
      McRecord r = score_item(session, tok, data.items[static_cast<size_t>(index)], index, result);
      right += correct(r) ? 1 : 0;
      result.items.push_back(std::move(r));
      ++done;
      std::snprintf(metric, sizeof metric, "acc %.4f", static_cast<double>(right) / static_cast<double>(done));
      on_progress(done, static_cast<int64_t>(selected.size()), metric);
    }
  } else {
    if (o.ppl_window < 2 || o.ppl_chunk < 1) throw Error("perplexity needs a window of >= 2 tokens and chunks of >= 1");
    const std::vector<int32_t> tokens = tok.encode(data.text, /*parse_special=*/false);
    const int64_t n_windows = ppl_window_count(static_cast<int64_t>(tokens.size()), o.ppl_window);
    result.n_total = limited_count(n_windows, o.limit);
    const std::vector<int64_t> selected = select_items(n_windows, o.limit, o.shard);
    const size_t vocab = static_cast<size_t>(session.model().config().vocab_size);
    int64_t done = 0;
    double nll_total = 0.0, kl_total = 0.0;
    int64_t tokens_total = 0;
    for (int64_t w : selected) {
      if (interrupt_requested()) {
        result.complete = false;
        break;
      }
      const int64_t begin = w * o.ppl_window;
      const int64_t end = std::min<int64_t>(begin + o.ppl_window, static_cast<int64_t>(tokens.size()));
      session.reset();
      if (o.reference) o.reference->reset();
      PplWindow pw;
      pw.index = w;
      if (o.reference) pw.kl = 0.0;
      for (int64_t c0 = begin; c0 < end; c0 += o.ppl_chunk) {
        const int64_t c1 = std::min(end, c0 + o.ppl_chunk);
        const std::span<const int32_t> chunk(tokens.data() + c0, static_cast<size_t>(c1 - c0));
        const std::span<float> logits = session.prefill_all_logits(chunk);
        const std::span<float> ref = o.reference ? o.reference->prefill_all_logits(chunk) : std::span<float>();
        for (int64_t t = c0; t < c1; ++t) {
          if (t + 1 >= end) break;  // the window's last token predicts nothing inside it
          const auto row = logits.subspan(static_cast<size_t>(t - c0) * vocab, vocab);
          if (o.reference) *pw.kl += kl_divergence(ref.subspan(static_cast<size_t>(t - c0) * vocab, vocab), row);
          pw.nll -= log_prob(row, tokens[t + 1]);
          ++pw.tokens;
          pw.bytes += static_cast<int64_t>(tok.token_bytes(tokens[t + 1]).size());
        }
      }
      add_kv(session, result);
      nll_total += pw.nll;
      tokens_total += pw.tokens;
      result.windows.push_back(pw);
      ++done;
      kl_total += pw.kl.value_or(0.0);
      if (o.reference) {
        std::snprintf(metric, sizeof metric, "ppl %.3f kl %.5f", std::exp(nll_total / static_cast<double>(tokens_total)),
                      kl_total / static_cast<double>(tokens_total));
      } else {
        std::snprintf(metric, sizeof metric, "ppl %.3f", std::exp(nll_total / static_cast<double>(tokens_total)));
      }
      on_progress(done, static_cast<int64_t>(selected.size()), metric);
    }
  }
  finish_kv(session, result);
  session.reset();
}

double measure_decode_ms(Session& session, const std::vector<int32_t>& text, int64_t depth, int64_t n_tokens) {
  if (text.empty()) throw Error("decode timing needs some text");
  std::vector<int32_t> prompt(static_cast<size_t>(std::max<int64_t>(depth, 1)));
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = text[i % text.size()];
  session.reset();
  std::span<float> logits = session.prefill(prompt);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n_tokens; ++i) {
    const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    logits = session.decode(next);
  }
  const double ms = 1000.0 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                    static_cast<double>(n_tokens);
  session.reset();
  return ms;
}

}  // namespace kvbits::eval
