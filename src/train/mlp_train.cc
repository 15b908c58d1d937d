#include "train/mlp_train.h"

#include <algorithm>
#include <cmath>

namespace kvbits::train {

MlpGrad::MlpGrad(const Mlp& mlp) : layers(mlp.layers()) { zero(); }

void MlpGrad::zero() {
  for (DenseLayer& d : layers) {
    std::fill(d.w.begin(), d.w.end(), 0.0f);
    std::fill(d.b.begin(), d.b.end(), 0.0f);
  }
}

void MlpBackprop::forward(const float* x, float* out) {
  const auto& layers = mlp_.layers();
  pre_.resize(layers.size());
  post_.resize(layers.size());
  post_[0].assign(x, x + layers.front().in);  // post_[l]: layer l's input
  for (size_t l = 0; l < layers.size(); ++l) {
    const DenseLayer& d = layers[l];
    pre_[l].resize(static_cast<size_t>(d.out));
    for (int o = 0; o < d.out; ++o) {
      const float* w = d.w.data() + static_cast<size_t>(o) * d.in;
      float s = d.b[o];
      for (int i = 0; i < d.in; ++i) s += w[i] * post_[l][i];
      pre_[l][o] = s;
    }
    if (l + 1 == layers.size()) {
      std::copy(pre_[l].begin(), pre_[l].end(), out);
    } else {
      post_[l + 1].resize(pre_[l].size());
      for (size_t o = 0; o < pre_[l].size(); ++o) post_[l + 1][o] = mlp_activate(mlp_.activation(), pre_[l][o]);
    }
  }
}

void MlpBackprop::backward(const float* dout, MlpGrad& grad) {
  const auto& layers = mlp_.layers();
  std::vector<float> delta(dout, dout + layers.back().out);  // dL/d pre of the current layer
  for (size_t li = layers.size(); li-- > 0;) {
    const DenseLayer& d = layers[li];
    DenseLayer& g = grad.layers[li];
    const std::vector<float>& in = post_[li];
    for (int o = 0; o < d.out; ++o) {
      float* gw = g.w.data() + static_cast<size_t>(o) * d.in;
      for (int i = 0; i < d.in; ++i) gw[i] += delta[o] * in[i];
      g.b[o] += delta[o];
    }
    if (li == 0) break;
    std::vector<float> prev(static_cast<size_t>(d.in), 0.0f);
    for (int o = 0; o < d.out; ++o) {
      const float* w = d.w.data() + static_cast<size_t>(o) * d.in;
      for (int i = 0; i < d.in; ++i) prev[i] += w[i] * delta[o];
    }
    for (int i = 0; i < d.in; ++i) prev[i] *= mlp_activate_grad(mlp_.activation(), pre_[li - 1][i]);
    delta.swap(prev);
  }
}

double controller_loss(std::span<const float> z, std::span<const float> q, std::span<const double> bits,
                       std::span<const float> damage, const LossWeights& w, std::span<float> dz) {
  const size_t k = z.size();
  double mx = -INFINITY;
  for (float v : z) mx = std::max(mx, static_cast<double>(v));
  double sum = 0.0;
  double p[16];
  for (size_t j = 0; j < k; ++j) sum += (p[j] = std::exp(z[j] - mx));
  const double lse = mx + std::log(sum);
  double eb = 0.0, ed = 0.0, ce = 0.0;
  for (size_t j = 0; j < k; ++j) {
    p[j] /= sum;
    eb += p[j] * bits[j];
    ed += p[j] * damage[j];
    if (q[j] > 0) ce -= q[j] * (z[j] - lse);
  }
  for (size_t j = 0; j < k; ++j) {
    dz[j] = static_cast<float>(w.alpha * (p[j] - q[j]) + w.beta * p[j] * (bits[j] - eb) +
                               w.gamma * p[j] * (damage[j] - ed));
  }
  return w.alpha * ce + w.beta * eb + w.gamma * ed;
}

Adam::Adam(const Mlp& mlp, const AdamOptions& options) : o_(options), m_(mlp), v_(mlp) {}

void Adam::step(Mlp& mlp, const MlpGrad& grad) {
  ++t_;
  const double c1 = 1.0 - std::pow(o_.beta1, static_cast<double>(t_));
  const double c2 = 1.0 - std::pow(o_.beta2, static_cast<double>(t_));
  auto update = [&](std::vector<float>& p, const std::vector<float>& g, std::vector<float>& m, std::vector<float>& v,
                    bool decay) {
    for (size_t i = 0; i < p.size(); ++i) {
      m[i] = static_cast<float>(o_.beta1 * m[i] + (1 - o_.beta1) * g[i]);
      v[i] = static_cast<float>(o_.beta2 * v[i] + (1 - o_.beta2) * static_cast<double>(g[i]) * g[i]);
      const double mh = m[i] / c1, vh = v[i] / c2;
      double x = p[i] - o_.lr * mh / (std::sqrt(vh) + o_.eps);
      if (decay) x -= o_.lr * o_.weight_decay * p[i];
      p[i] = static_cast<float>(x);
    }
  };
  for (size_t l = 0; l < mlp.layers().size(); ++l) {
    DenseLayer& d = mlp.layers()[l];
    update(d.w, grad.layers[l].w, m_.layers[l].w, v_.layers[l].w, true);
    update(d.b, grad.layers[l].b, m_.layers[l].b, v_.layers[l].b, false);
  }
}

}  // namespace kvbits::train
