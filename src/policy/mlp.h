#pragma once
// A small multi-layer perceptron: the learned precision controller's scorer (inference only; the
// backward pass and Adam live in train/mlp_train.h).
//
//   x[in] -> dense -> act -> dense -> act -> ... -> dense -> out[n_out]   (no activation at the end)
//
// Each dense layer is y = W x + b with W [out][in] row-major. Sizes are tiny (the controller has
// at most 20k parameters), so plain loops are enough: ~5k multiply-adds per token.
#include <cstdint>
#include <string>
#include <vector>

namespace kvbits {

enum class MlpActivation { kRelu, kGelu };
// "relu" / "gelu"; parse_mlp_activation throws Error on anything else.
const char* to_string(MlpActivation a);
MlpActivation parse_mlp_activation(const std::string& name);
// The activation and its derivative (GELU: the tanh approximation).
float mlp_activate(MlpActivation a, float x);
float mlp_activate_grad(MlpActivation a, float x);

struct DenseLayer {
  int in = 0, out = 0;
  std::vector<float> w;  // [out][in]
  std::vector<float> b;  // [out]
};

class Mlp {
 public:
  Mlp() = default;
  // Layer sizes, e.g. {9, 64, 64, 4}; weights zero. Throws Error on fewer than two sizes or a
  // size < 1.
  Mlp(const std::vector<int>& sizes, MlpActivation activation);

  int n_in() const { return layers_.empty() ? 0 : layers_.front().in; }
  int n_out() const { return layers_.empty() ? 0 : layers_.back().out; }
  std::vector<int> sizes() const;
  size_t parameter_count() const;
  MlpActivation activation() const { return activation_; }
  std::vector<DenseLayer>& layers() { return layers_; }
  const std::vector<DenseLayer>& layers() const { return layers_; }

  // out[n_out] = f(x[n_in]). `scratch` is reused between calls (no allocation once sized).
  void forward(const float* x, float* out, std::vector<float>& scratch) const;

  // Fixed-seed initialisation (He/Kaiming uniform for the weights, zero biases).
  void init(uint64_t seed);

 private:
  std::vector<DenseLayer> layers_;
  MlpActivation activation_ = MlpActivation::kRelu;
};

}  // namespace kvbits
