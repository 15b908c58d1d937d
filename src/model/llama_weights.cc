#include "model/llama_weights.h"

#include <string>

#include "io/gguf.h"
#include "io/tensor_type.h"
#include "util/error.h"

namespace kvbits {

namespace {

std::string shape_str(const std::vector<uint64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// GGUF shape [cols, rows] -> MatrixView of [rows, cols].
MatrixView bind_matrix(const GgufFile& f, const std::string& name, int64_t rows, int64_t cols) {
  const GgufTensor& t = f.tensor(name);
  if (t.shape.size() != 2 || t.shape[0] != static_cast<uint64_t>(cols) || t.shape[1] != static_cast<uint64_t>(rows)) {
    throw Error(f.path() + ": tensor '" + name + "' has shape " + shape_str(t.shape) + ", expected [" +
                std::to_string(cols) + ", " + std::to_string(rows) + "]");
  }
  try {
    return make_matrix_view(t.type_id, t.data, rows, cols);
  } catch (const Error& e) {
    throw Error(f.path() + ": tensor '" + name + "': " + e.what());
  }
}

const float* bind_vector(const GgufFile& f, const std::string& name, int64_t n) {
  const GgufTensor& t = f.tensor(name);
  if (t.shape.size() != 1 || t.shape[0] != static_cast<uint64_t>(n)) {
    throw Error(f.path() + ": tensor '" + name + "' has shape " + shape_str(t.shape) + ", expected [" +
                std::to_string(n) + "]");
  }
  if (t.type_id != static_cast<uint32_t>(TensorType::F32)) {
    throw Error(f.path() + ": tensor '" + name + "' has type " + tensor_type_name(t.type_id) + ", expected F32");
  }
  return reinterpret_cast<const float*>(t.data);
}

}  // namespace

LlamaWeights bind_llama_weights(const GgufFile& f, const LlamaConfig& c) {
  LlamaWeights w;
  const int64_t d = c.d_model, q_dim = static_cast<int64_t>(c.n_heads) * c.head_dim, kv = c.kv_dim();
  w.token_embd = bind_matrix(f, "token_embd.weight", c.vocab_size, d);
  w.layers.resize(static_cast<size_t>(c.n_layers));
  uint64_t bytes = w.token_embd.row_bytes;
  auto add = [&](const MatrixView& m) { bytes += m.row_bytes * static_cast<uint64_t>(m.rows); };
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LlamaLayerWeights& L = w.layers[static_cast<size_t>(l)];
    L.attn_norm = bind_vector(f, p + "attn_norm.weight", d);
    L.wq = bind_matrix(f, p + "attn_q.weight", q_dim, d);
    L.wk = bind_matrix(f, p + "attn_k.weight", kv, d);
    L.wv = bind_matrix(f, p + "attn_v.weight", kv, d);
    L.wo = bind_matrix(f, p + "attn_output.weight", d, q_dim);
    L.ffn_norm = bind_vector(f, p + "ffn_norm.weight", d);
    L.w_gate = bind_matrix(f, p + "ffn_gate.weight", c.d_ff, d);
    L.w_up = bind_matrix(f, p + "ffn_up.weight", c.d_ff, d);
    L.w_down = bind_matrix(f, p + "ffn_down.weight", d, c.d_ff);
    for (const MatrixView* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) add(*m);
    bytes += 2 * static_cast<uint64_t>(d) * sizeof(float);
  }
  w.output_norm = bind_vector(f, "output_norm.weight", d);
  if (f.find_tensor("output.weight") != nullptr) {
    w.output = bind_matrix(f, "output.weight", c.vocab_size, d);
  } else {
    w.output = w.token_embd;
    w.tied_output = true;
  }
  add(w.output);
  w.bytes_per_token = bytes;
  return w;
}

}  // namespace kvbits
