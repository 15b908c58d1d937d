#include "policy/mlp.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "util/error.h"

namespace kvbits {

const char* to_string(MlpActivation a) { return a == MlpActivation::kGelu ? "gelu" : "relu"; }

MlpActivation parse_mlp_activation(const std::string& name) {
  if (name == "relu") return MlpActivation::kRelu;
  if (name == "gelu") return MlpActivation::kGelu;
  throw Error("unknown activation '" + name + "' (relu, gelu)");
}

namespace {
constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)
}

float mlp_activate(MlpActivation a, float x) {
  if (a == MlpActivation::kRelu) return x > 0.0f ? x : 0.0f;
  const float u = kGeluC * (x + 0.044715f * x * x * x);
  return 0.5f * x * (1.0f + std::tanh(u));
}

float mlp_activate_grad(MlpActivation a, float x) {
  if (a == MlpActivation::kRelu) return x > 0.0f ? 1.0f : 0.0f;
  const float u = kGeluC * (x + 0.044715f * x * x * x);
  const float t = std::tanh(u);
  const float du = kGeluC * (1.0f + 3.0f * 0.044715f * x * x);
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

Mlp::Mlp(const std::vector<int>& sizes, MlpActivation activation) : activation_(activation) {
  if (sizes.size() < 2) throw Error("an MLP needs at least an input and an output size");
  for (int s : sizes) {
    if (s < 1) throw Error("MLP layer sizes must be >= 1");
  }
  for (size_t i = 0; i + 1 < sizes.size(); ++i) {
    DenseLayer d;
    d.in = sizes[i];
    d.out = sizes[i + 1];
    d.w.assign(static_cast<size_t>(d.in) * d.out, 0.0f);
    d.b.assign(static_cast<size_t>(d.out), 0.0f);
    layers_.push_back(std::move(d));
  }
}

std::vector<int> Mlp::sizes() const {
  std::vector<int> s;
  if (layers_.empty()) return s;
  s.push_back(layers_.front().in);
  for (const DenseLayer& d : layers_) s.push_back(d.out);
  return s;
}

size_t Mlp::parameter_count() const {
  size_t n = 0;
  for (const DenseLayer& d : layers_) n += d.w.size() + d.b.size();
  return n;
}

void Mlp::forward(const float* x, float* out, std::vector<float>& scratch) const {
  int widest = 0;
  for (const DenseLayer& d : layers_) widest = std::max(widest, d.out);
  scratch.resize(2 * static_cast<size_t>(widest));
  const float* in = x;
  float* bufs[2] = {scratch.data(), scratch.data() + widest};
  for (size_t l = 0; l < layers_.size(); ++l) {
    const DenseLayer& d = layers_[l];
    const bool last = l + 1 == layers_.size();
    float* y = last ? out : bufs[l % 2];
    for (int o = 0; o < d.out; ++o) {
      const float* w = d.w.data() + static_cast<size_t>(o) * d.in;
      float s = d.b[o];
      for (int i = 0; i < d.in; ++i) s += w[i] * in[i];
      y[o] = last ? s : mlp_activate(activation_, s);
    }
    in = y;
  }
}

void Mlp::init(uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (DenseLayer& d : layers_) {
    const float bound = std::sqrt(6.0f / static_cast<float>(d.in));
    // Uniform in [-bound, bound] from the raw generator (std::uniform_real_distribution's output
    // is implementation-defined; this keeps training files identical across standard libraries).
    for (float& w : d.w) {
      const double u = static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
      w = static_cast<float>((2.0 * u - 1.0) * bound);
    }
    std::fill(d.b.begin(), d.b.end(), 0.0f);
  }
}

}  // namespace kvbits
