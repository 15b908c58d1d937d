#include "model/llama_model.h"

#include <algorithm>
#include <chrono>

#include "io/mapped_file.h"
#include "ops/elementwise.h"
#include "ops/quant_blocks.h"
#include "util/error.h"

namespace kvbits {

void ForwardScratch::reserve(const LlamaConfig& c, int64_t n) {
  if (n <= capacity) return;
  capacity = n;
  const auto sz = [n](int64_t dim) { return static_cast<size_t>(n * dim); };
  const int64_t q_dim = static_cast<int64_t>(c.n_heads) * c.head_dim;
  x.resize(sz(c.d_model));
  xn.resize(sz(c.d_model));
  q.resize(sz(q_dim));
  k.resize(sz(c.kv_dim()));
  v.resize(sz(c.kv_dim()));
  attn.resize(sz(q_dim));
  proj.resize(sz(c.d_model));
  gate.resize(sz(c.d_ff));
  up.resize(sz(c.d_ff));
  windows.resize(static_cast<size_t>(n));
  rope.resize(sz(c.rope_dim));
}

std::unique_ptr<LlamaModel> LlamaModel::load(const std::string& path) {
  GgufFile file = GgufFile::open(path);
  LlamaConfig config = read_llama_config(file);
  LlamaWeights weights = bind_llama_weights(file, config);
  std::unique_ptr<LlamaModel> model(new LlamaModel(std::move(file), std::move(config), std::move(weights)));
  model->repack_weights();
  return model;
}

std::optional<double> LlamaModel::huge_page_share() const {
  const size_t bytes = repacked_.get_deleter().size;
  if (!repacked_ || bytes == 0) return std::nullopt;
  const std::optional<size_t> huge = huge_page_bytes(repacked_.get(), bytes);
  if (!huge) return std::nullopt;
  return static_cast<double>(*huge) / static_cast<double>(bytes);
}

void LlamaModel::repack_weights() {
  std::vector<MatrixView*> mats;
  auto consider = [&](MatrixView& m) {
    if (can_repack_planar(m.type_id) && !m.planar && m.cols / kBlockElems <= 512) mats.push_back(&m);
  };
  consider(weights_.token_embd);
  for (LlamaLayerWeights& L : weights_.layers) {
    for (MatrixView* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) consider(*m);
  }
  if (!weights_.tied_output) consider(weights_.output);
  uint64_t total = 0;
  for (const MatrixView* m : mats) total += m->row_bytes * static_cast<uint64_t>(m->rows);
  if (total == 0) return;
  repacked_ = allocate_huge_page_buffer(total);
  uint64_t offset = 0;
  for (MatrixView* m : mats) {
    const uint64_t bytes = m->row_bytes * static_cast<uint64_t>(m->rows);
    const uint8_t* original = m->data;
    *m = repack_planar(*m, repacked_.get() + offset);
    release_mapped_pages(original, bytes);
    offset += bytes;
  }
  if (weights_.tied_output) weights_.output = weights_.token_embd;
}

LlamaModel::LlamaModel(GgufFile file, LlamaConfig config, LlamaWeights weights)
    : file_(std::move(file)), config_(std::move(config)), weights_(std::move(weights)) {}

namespace {
// ForwardOptions::query_power for layer l: q [n, q_dim].
template <class Position>
void accumulate_query_power(int l, int64_t n, int64_t q_dim, const Position& position, const float* q,
                            std::vector<double>& power, int n_layers) {
  if (power.size() < static_cast<size_t>(n_layers * q_dim)) power.resize(static_cast<size_t>(n_layers * q_dim), 0.0);
  double* p = power.data() + l * q_dim;
  for (int64_t i = 0; i < n; ++i) {
    if (position(i) < 1) continue;
    for (int64_t e = 0; e < q_dim; ++e) p[e] += static_cast<double>(q[i * q_dim + e]) * q[i * q_dim + e];
  }
}
}  // namespace

void LlamaModel::forward(const ForwardInput& input, KvStore& store, LogitsFor which, std::vector<float>& logits,
                         ThreadPool& pool, ForwardScratch& s, const ForwardOptions& options) const {
  const LlamaConfig& c = config_;
  const std::span<const int32_t> tokens = input.tokens;
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return;
  if ((!input.positions.empty() && static_cast<int64_t>(input.positions.size()) != n) ||
      (!input.windows.empty() && static_cast<int64_t>(input.windows.size()) != n)) {
    throw Error("forward: positions and windows must be given for every token or not at all");
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= c.vocab_size) throw Error("token id " + std::to_string(t) + " is outside the vocabulary");
  }
  const int64_t start = store.begin_append(n);
  const int64_t first_row = start - store.committed();  // window row of tokens[0]
  s.reserve(c, n);
  const int64_t d = c.d_model, kv = c.kv_dim(), q_dim = static_cast<int64_t>(c.n_heads) * c.head_dim;
  const AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim};
  auto position = [&](int64_t i) { return input.positions.empty() ? start + i : input.positions[i]; };
  for (int64_t i = 0; i < n; ++i) {
    s.windows[i] = input.windows.empty() ? WindowRange{first_row + i + 1, 0, 0} : input.windows[i];
  }

  for (int64_t i = 0; i < n; ++i) dequantize_row(weights_.token_embd, tokens[i], &s.x[i * d]);
  for (int64_t i = 0; i < n; ++i) rope_angles(position(i), c.rope_dim, c.rope_theta, &s.rope[i * c.rope_dim]);

  for (int l = 0; l < c.n_layers; ++l) {
    const LlamaLayerWeights& L = weights_.layers[static_cast<size_t>(l)];
    for (int64_t i = 0; i < n; ++i) rms_norm(&s.x[i * d], L.attn_norm, d, c.rms_eps, &s.xn[i * d]);
    const MatmulJob qkv[] = {{&L.wq, s.q.data()}, {&L.wk, s.k.data()}, {&L.wv, s.v.data()}};
    matmul_group(qkv, s.xn.data(), n, pool, s.matmul, options.activations);
    for (int64_t i = 0; i < n; ++i) {
      rope_apply(&s.q[i * q_dim], c.n_heads, c.head_dim, c.rope_dim, &s.rope[i * c.rope_dim]);
      rope_apply(&s.k[i * kv], c.n_kv_heads, c.head_dim, c.rope_dim, &s.rope[i * c.rope_dim]);
    }
    if (options.query_power) accumulate_query_power(l, n, q_dim, position, s.q.data(), *options.query_power, c.n_layers);
    store.write_window(l, start, n, s.k.data(), s.v.data());
    const auto attention_start = std::chrono::steady_clock::now();
    KvLayerView view = store.layer_view(l);
    view.exact_8bit = options.activations == ActivationMode::kFloat;
    attention(shape, s.q.data(), n, s.windows.data(), view, s.attn.data(), pool, s.attention,
              l == c.n_layers - 1 ? options.final_layer_tap : nullptr);
    s.attention_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - attention_start).count();
    matmul(L.wo, s.attn.data(), n, s.proj.data(), pool, s.matmul, options.activations);
    add_in_place(s.x.data(), s.proj.data(), n * d);

    for (int64_t i = 0; i < n; ++i) rms_norm(&s.x[i * d], L.ffn_norm, d, c.rms_eps, &s.xn[i * d]);
    const MatmulJob gate_up[] = {{&L.w_gate, s.gate.data()}, {&L.w_up, s.up.data()}};
    matmul_group(gate_up, s.xn.data(), n, pool, s.matmul, options.activations);
    swiglu(s.gate.data(), s.up.data(), n * c.d_ff);
    matmul(L.w_down, s.gate.data(), n, s.proj.data(), pool, s.matmul, options.activations);
    add_in_place(s.x.data(), s.proj.data(), n * d);
  }
  store.end_append(n);

  if (which == LogitsFor::kNone) {
    logits.clear();
    return;
  }
  const int64_t first = which == LogitsFor::kAll ? 0 : n - 1;
  const int64_t n_out = n - first;
  for (int64_t i = first; i < n; ++i) rms_norm(&s.x[i * d], weights_.output_norm, d, c.rms_eps, &s.xn[(i - first) * d]);
  logits.resize(static_cast<size_t>(n_out * c.vocab_size));
  matmul(weights_.output, s.xn.data(), n_out, logits.data(), pool, s.matmul, options.activations);
}

}  // namespace kvbits
