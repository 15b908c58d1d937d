// SIMD matmul (ops/matmul.cc, dispatched) against the scalar reference matmul_ref, for every weight
// type, file-layout and planar (repacked) rows, over many shapes (every chunk tail of the planar
// layout), token counts (tiles of 4, task chunks of 64), row counts (tiles of 2 and 4, reduction
// batches of 16), thread counts, misaligned weights and activations, and every SIMD target
// compiled into the library; with sentinels around the output and a NaN/Inf check. Also: results
// bit-identical across token counts, tiles and threads; the repack and the arranged activations
// against the layout definition; vectorized activation quantization against its scalar reference.
//
// Tolerance of matmul vs matmul_ref(quantize_activations = true). Both see identical weights and,
// for quantized types, identical int8 activations (QuantizedActivations), so in exact arithmetic
// they agree; what differs is fp32 rounding (u = 2^-24):
//  * matmul_ref multiplies in double (exact: each factor has <= 24 significant bits) and sums in
//    double (relative error ~cols * 2^-53, far below u), then rounds y to fp32 once: <= u*|y|.
//    For Q4_1 it also rounds each decoded weight d*q + m to fp32: <= u * sum|w x|.
//  * Quantized kernels form one integer dot product per block (exact: |sum| < 2^24) or per SIMD
//    lane, scale it by fl(dw * da) and accumulate over nb = cols/32 blocks: every term passes
//    through <= nb + 8 roundings (file layout: scale product, nb accumulations, 3 levels of
//    horizontal sum, final add: nb + 5; planar rows: scale product, one FMA per 16-block chunk,
//    two for Q4_1, into the block's lane, the narrow tail's fold, 4 levels of pairwise lane sums:
//    <= 2 ceil(nb/16) + 6 <= nb + 8), so |error| <= gamma(nb + 8) * S,
//    gamma(k) = k u / (1 - k u), where S bounds the
//    sum of magnitudes of everything added: sum_b |dw da| sum_j |qw_j qa_j| for Q8_0; for Q4_0 the
//    x86 kernels add unsigned nibbles and subtract 8 * sum(qa) (exactly, in integers on planar rows), so
//    S = sum_b |dw da| (sum_j q_j |qa_j| + 8 |sum_j qa_j|); for Q4_1, S = sum_b |dw da| sum_j q_j
//    |qa_j| + sum_b |m_b s_b|.
//  * Q4_1 only: the kernels add m * s with s = fl(dh * sum(qa)) in fp32 (planar: via d * isum of
//    QuantizedActivations; file layout: fl(fl(m * dh) * sum(qa))) where the reference adds
//    m * dh * sum(qa) in double: these roundings are within the count above (S includes
//    sum_b |m_b s_b|). The extra allowance E = per block |m| (2^-10 |d| |sum qa| + 2^-25 (1 +
//    |sum qa|)) dates from kernels that rounded s to fp16 as ggml's Q8_1 does; it is slack now.
//  * Float weights: fp32 multiply-add (fused or not) over 2 accumulators of N lanes (N >= 4 on
//    every SIMD target; N = 1 on HWY_SCALAR, which is compiled in as the last fallback), then a
//    horizontal sum and a scalar tail of < N <= 16 elements: <= cols/(2N) + 24 roundings per
//    term, |error| <= gamma(cols/(2N) + 24) * sum|w x|.
//  * ActivationMode::kFloat with quantized weights: each block is decoded by the reference
//    dequantizers (identical fp32 weights) and multiplied with the raw fp32 activations into one
//    accumulator of N lanes: gamma(cols/N + 24) * sum|w x| against matmul_ref(..., false).
// These are worst-case bounds, not fitted numbers; a wrong element or a dropped block shifts y by
// ~|w x| ~ sum|w x| / cols, which at cols = 1536 is still >> gamma(200) ~ 1.2e-5 relative.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backend/thread_pool.h"
#include "hwy/targets.h"
#include "io/tensor_type.h"
#include "ops/matmul.h"
#include "ops/quant_blocks.h"
#include "util/error.h"
#include "util/half.h"

namespace kvbits {
namespace {

constexpr double kU = 0x1p-24;
double gamma_k(double k) { return k * kU / (1.0 - k * kU); }

constexpr TensorType kAllTypes[] = {TensorType::F32, TensorType::F16, TensorType::BF16,
                                    TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0};
constexpr int64_t kRows[] = {1, 2, 3, 7, 8, 9, 31, 32, 33, 100};
constexpr int64_t kTokens[] = {1, 2, 3, 4, 5, 7, 8, 9, 64, 65, 130};

std::vector<int64_t> all_cols() {  // multiples of 32 up to 1024, plus the model's 576 and 1536
  std::vector<int64_t> c;
  for (int64_t v = 32; v <= 1024; v += 32) c.push_back(v);
  c.push_back(1536);
  return c;  // 576 = 18 * 32 is in the range already
}

// Fewest fp32 lanes the float kernel can use on the target matmul dispatches to right now.
double min_float_lanes() {
  const std::string name = matmul_target_name();
  return name == "SCALAR" ? 1.0 : 4.0;
}

bool is_quantized(TensorType t) {
  return t == TensorType::Q4_0 || t == TensorType::Q4_1 || t == TensorType::Q8_0;
}

const char* type_name(TensorType t) {
  switch (t) {
    case TensorType::F32: return "F32";
    case TensorType::F16: return "F16";
    case TensorType::BF16: return "BF16";
    case TensorType::Q4_0: return "Q4_0";
    case TensorType::Q4_1: return "Q4_1";
    case TensorType::Q8_0: return "Q8_0";
    default: return "?";
  }
}

ThreadPool& pool_of(int n) {
  static std::unique_ptr<ThreadPool> pools[4];
  if (!pools[n]) pools[n] = std::make_unique<ThreadPool>(n);
  return *pools[n];
}

// Pointer `offset` bytes past a 64-byte boundary inside `buf` (which has >= 128 bytes of slack).
template <typename T>
T* at_offset(std::vector<T>& buf, size_t offset_bytes) {
  auto p = reinterpret_cast<uintptr_t>(buf.data());
  p = (p + 63) & ~uintptr_t{63};
  return reinterpret_cast<T*>(p + offset_bytes);
}

// Weight matrix in file format at a chosen misalignment. [rows, row_bytes]
struct Weights {
  std::vector<uint8_t> storage;
  MatrixView view;
};

// Fixed-seed random weights: uniform in [-1, 1], scaled per row and per block by powers of two so
// block scales span several exponents, with the odd all-zero block (d = 0 path).
Weights make_weights(TensorType type, int64_t rows, int64_t cols, uint32_t seed, size_t offset) {
  const auto info = tensor_type_info(static_cast<uint32_t>(type));
  const uint64_t row_bytes = static_cast<uint64_t>(cols / info->block_elems) * info->block_bytes;
  Weights w;
  w.storage.assign(rows * row_bytes + 128, 0xcd);
  uint8_t* base = at_offset(w.storage, offset);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(cols));
  std::vector<uint8_t> enc(row_bytes);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int e = static_cast<int>(r % 7) - 3 + static_cast<int>((c / 32) % 5) - 2;
      v[c] = std::ldexp(u(rng), e);
    }
    if (cols >= 128 && r % 5 == 2) std::fill(v.begin() + 64, v.begin() + 96, 0.0f);
    switch (type) {
      case TensorType::F32: std::memcpy(enc.data(), v.data(), row_bytes); break;
      case TensorType::F16:
        for (int64_t c = 0; c < cols; ++c) {
          const uint16_t h = fp32_to_fp16(v[c]);
          std::memcpy(enc.data() + 2 * c, &h, 2);
        }
        break;
      case TensorType::BF16:
        for (int64_t c = 0; c < cols; ++c) {
          const uint16_t h = fp32_to_bf16(v[c]);
          std::memcpy(enc.data() + 2 * c, &h, 2);
        }
        break;
      case TensorType::Q4_0: {
        std::vector<BlockQ4_0> b(cols / kBlockElems);
        quantize_row_q4_0_ref(v.data(), b.data(), cols);
        std::memcpy(enc.data(), b.data(), row_bytes);
        break;
      }
      case TensorType::Q4_1: {
        std::vector<BlockQ4_1> b(cols / kBlockElems);
        quantize_row_q4_1_ref(v.data(), b.data(), cols);
        std::memcpy(enc.data(), b.data(), row_bytes);
        break;
      }
      case TensorType::Q8_0: {
        std::vector<BlockQ8_0> b(cols / kBlockElems);
        quantize_row_q8_0_ref(v.data(), b.data(), cols);
        std::memcpy(enc.data(), b.data(), row_bytes);
        break;
      }
      default: break;
    }
    std::memcpy(base + r * row_bytes, enc.data(), row_bytes);
  }
  w.view = make_matrix_view(static_cast<uint32_t>(type), base, rows, cols);
  return w;
}

// Activations [n_tokens, cols]: uniform in [-1, 1], per-block scales 2^-4 .. 2^4, and outliers
// (x30) like the channels real residual streams have. `scale` multiplies everything.
struct Activations {
  std::vector<float> storage;
  float* x;
};

Activations make_activations(int64_t n_tokens, int64_t cols, uint32_t seed, size_t float_offset,
                             float scale = 1.0f) {
  Activations a;
  a.storage.assign(static_cast<size_t>(n_tokens * cols) + 64, 0.0f);
  a.x = at_offset(a.storage, float_offset * sizeof(float));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> e(-4, 4), pick(0, 99);
  for (int64_t i = 0; i < n_tokens * cols; i += kBlockElems) {
    const int be = e(rng);
    for (int64_t j = i; j < std::min(i + kBlockElems, n_tokens * cols); ++j) {
      a.x[j] = scale * std::ldexp(u(rng), be) * (pick(rng) == 0 ? 30.0f : 1.0f);
    }
  }
  return a;
}

// Per-output tolerance [n_tokens, rows] of matmul vs matmul_ref; see the file comment.
std::vector<double> tolerance(const MatrixView& w, const float* x, int64_t n_tokens, ActivationMode mode) {
  const auto type = static_cast<TensorType>(w.type_id);
  const int64_t cols = w.cols, nb = cols / kBlockElems;
  std::vector<double> tol(static_cast<size_t>(n_tokens * w.rows));
  std::vector<float> wrow(static_cast<size_t>(cols));
  if (!is_quantized(type) || mode == ActivationMode::kFloat) {
    const double accumulators = is_quantized(type) ? 1.0 : 2.0;
    const double g =
        gamma_k(static_cast<double>(cols) / (accumulators * min_float_lanes()) + 24.0) + 2.0 * kU;
    for (int64_t r = 0; r < w.rows; ++r) {
      dequantize_row(w, r, wrow.data());
      for (int64_t t = 0; t < n_tokens; ++t) {
        double s = 0.0;
        for (int64_t c = 0; c < cols; ++c) s += std::fabs(static_cast<double>(wrow[c]) * x[t * cols + c]);
        tol[t * w.rows + r] = g * s;
      }
    }
    return tol;
  }
  QuantizedActivations act;
  act.quantize(x, n_tokens, cols);
  const double g = gamma_k(static_cast<double>(nb) + 8.0);
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize_row(w, r, wrow.data());
    const uint8_t* row = w.data + r * w.row_bytes;
    for (int64_t t = 0; t < n_tokens; ++t) {
      const QuantizedRowView a = act.row(t);
      double S = 0.0, Sw = 0.0, E = 0.0;
      for (int64_t b = 0; b < nb; ++b) {
        const double da = a.d[b];
        const double isum = std::fabs(static_cast<double>(a.isum[b]));
        const int8_t* qa = a.qs + b * kBlockElems;
        double dot = 0.0;
        if (type == TensorType::Q8_0) {
          BlockQ8_0 blk;
          std::memcpy(&blk, row + b * sizeof(blk), sizeof(blk));
          for (int j = 0; j < kBlockElems; ++j) dot += std::abs(blk.qs[j] * qa[j]);
          S += std::fabs(fp16_to_fp32(blk.d) * da) * dot;
        } else if (type == TensorType::Q4_0) {
          BlockQ4_0 blk;
          std::memcpy(&blk, row + b * sizeof(blk), sizeof(blk));
          for (int j = 0; j < 16; ++j) {
            dot += (blk.qs[j] & 0x0f) * std::abs(qa[j]) + (blk.qs[j] >> 4) * std::abs(qa[j + 16]);
          }
          S += std::fabs(fp16_to_fp32(blk.d) * da) * (dot + 8.0 * isum);
        } else {
          BlockQ4_1 blk;
          std::memcpy(&blk, row + b * sizeof(blk), sizeof(blk));
          for (int j = 0; j < 16; ++j) {
            dot += (blk.qs[j] & 0x0f) * std::abs(qa[j]) + (blk.qs[j] >> 4) * std::abs(qa[j + 16]);
          }
          const double m = std::fabs(fp16_to_fp32(blk.m));
          // Upper bound of the unrounded activation scale behind dh (and of |s| / |sum qa|).
          const double dmax = da * (1.0 + 0x1p-10) + 0x1p-24;
          S += std::fabs(fp16_to_fp32(blk.d) * da) * dot + m * dmax * isum * (1.0 + 0x1p-10);
          E += m * (0x1p-10 * dmax * isum + 0x1p-25 * (1.0 + isum));
        }
        for (int j = 0; j < kBlockElems; ++j) {
          Sw += std::fabs(static_cast<double>(wrow[b * kBlockElems + j]) * da * qa[j]);
        }
      }
      tol[t * w.rows + r] = g * S + 2.0 * kU * Sw + E;
    }
  }
  return tol;
}

struct Case {
  TensorType type;
  int64_t rows, cols, n_tokens;
  int threads = 1;
  size_t w_offset = 0;  // bytes past a 64-byte boundary
  size_t x_offset = 0;  // floats past a 64-byte boundary
  uint32_t seed = 1;
  float x_scale = 1.0f;
  ActivationMode mode = ActivationMode::kInt8;
  bool planar = false;  // run the kernels on repack_planar(weights) (Q4_0, Q4_1, Q8_0)

  std::string describe() const {
    std::ostringstream s;
    s << type_name(type) << " rows=" << rows << " cols=" << cols << " n_tokens=" << n_tokens
      << " threads=" << threads << " w_offset=" << w_offset << " x_offset=" << x_offset
      << " seed=" << seed << " x_scale=" << x_scale << " target=" << matmul_target_name()
      << (mode == ActivationMode::kFloat ? " mode=kFloat" : " mode=kInt8") << (planar ? " planar" : "");
    return s.str();
  }
};

constexpr uint32_t kSentinel = 0x7fa5a5a5u;  // a NaN: an unwritten output also fails the finite check
constexpr int64_t kGuard = 37;

// The planar repack of w (same misalignment as w), or w's own view when c.planar is false.
struct KernelWeights {
  std::vector<uint8_t> storage;
  MatrixView view;
};

KernelWeights kernel_weights(const Case& c, const Weights& w) {
  KernelWeights k;
  k.view = w.view;
  if (!c.planar) return k;
  k.storage.assign(w.view.rows * w.view.row_bytes + 128, 0xcd);
  k.view = repack_planar(w.view, at_offset(k.storage, c.w_offset));
  return k;
}

::testing::AssertionResult check_against_ref(const Case& c, const Weights& w, const Activations& a,
                                             MatmulScratch& scratch) {
  const int64_t n_out = c.n_tokens * c.rows;
  std::vector<float> ybuf(static_cast<size_t>(n_out + 2 * kGuard), std::bit_cast<float>(kSentinel));
  float* y = ybuf.data() + kGuard;  // [n_tokens, rows]
  const KernelWeights kw = kernel_weights(c, w);
  matmul(kw.view, a.x, c.n_tokens, y, pool_of(c.threads), scratch, c.mode);
  for (int64_t i = 0; i < kGuard; ++i) {
    if (std::bit_cast<uint32_t>(ybuf[i]) != kSentinel ||
        std::bit_cast<uint32_t>(ybuf[kGuard + n_out + i]) != kSentinel) {
      return ::testing::AssertionFailure() << c.describe() << ": write outside y";
    }
  }
  std::vector<float> ref(static_cast<size_t>(n_out));
  matmul_ref(w.view, a.x, c.n_tokens, ref.data(), /*quantize_activations=*/c.mode == ActivationMode::kInt8);
  const std::vector<double> tol = tolerance(w.view, a.x, c.n_tokens, c.mode);
  for (int64_t t = 0; t < c.n_tokens; ++t) {
    for (int64_t r = 0; r < c.rows; ++r) {
      const int64_t i = t * c.rows + r;
      if (!std::isfinite(y[i]) || !std::isfinite(ref[i])) {
        return ::testing::AssertionFailure() << c.describe() << ": non-finite output at t=" << t
                                             << " r=" << r << " got " << y[i] << " ref " << ref[i];
      }
      const double err = std::fabs(static_cast<double>(y[i]) - ref[i]);
      if (!(err <= tol[i])) {
        return ::testing::AssertionFailure()
               << c.describe() << ": t=" << t << " r=" << r << " got " << y[i] << " expected "
               << ref[i] << " |diff| " << err << " > tol " << tol[i];
      }
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult run_case(const Case& c, MatmulScratch& scratch) {
  const Weights w = make_weights(c.type, c.rows, c.cols, c.seed, c.w_offset);
  const Activations a = make_activations(c.n_tokens, c.cols, c.seed * 7919u + 1u, c.x_offset, c.x_scale);
  return check_against_ref(c, w, a, scratch);
}

// Runs cases until a handful failed (one failure usually explains the rest).
class CaseRunner {
 public:
  void operator()(const Case& c) {
    if (failures_ >= 5) return;
    const auto result = run_case(c, scratch_);
    if (!result) ++failures_;
    EXPECT_TRUE(result);
    ++cases_;
  }
  int cases() const { return cases_; }

 private:
  MatmulScratch scratch_;  // reused across shapes on purpose: it grows and shrinks
  int failures_ = 0;
  int cases_ = 0;
};

TEST(Matmul, ShapesMatchReference) {
  // Every type x rows x cols; the token count, thread count and misalignments rotate.
  // (Three threads on this 2-core machine class oversubscribe it, so they come up less often;
  // TokenTilesTaskChunksAndThreads covers them fully.)
  const int64_t tokens[] = {1, 2, 3, 4, 5, 8};
  CaseRunner run;
  uint32_t i = 0;
  for (TensorType type : kAllTypes) {
    for (int64_t cols : all_cols()) {
      for (int64_t rows : kRows) {
        Case c{type, rows, cols, tokens[i % 6]};
        c.threads = i % 5 == 4 ? 3 : 1 + static_cast<int>(i % 2);
        c.w_offset = i % 8;
        c.x_offset = (i / 8) % 8;
        c.seed = 100 + i;
        run(c);
        ++i;
      }
    }
  }
  EXPECT_EQ(run.cases(), 6 * 33 * 10);
}

TEST(Matmul, TokenTilesTaskChunksAndThreads) {
  // n_tokens around the tile (4) and task-chunk (64) boundaries, with 1, 2 and 3 threads; row
  // counts around the task row chunks (8..32 rows).
  const struct { int64_t rows, cols; } shapes[] = {{33, 64}, {9, 576}, {100, 32}};
  CaseRunner run;
  uint32_t i = 0;
  for (TensorType type : kAllTypes) {
    for (const auto& s : shapes) {
      for (int64_t n_tokens : kTokens) {
        for (int threads = 1; threads <= 3; ++threads) {
          Case c{type, s.rows, s.cols, n_tokens};
          c.threads = threads;
          c.w_offset = i % 3;
          c.x_offset = i % 5;
          c.seed = 5000 + i++;
          run(c);
        }
      }
    }
  }
}

TEST(Matmul, MisalignedWeightsAndActivations) {
  // Weights 0..7 bytes past a 64-byte boundary (the kernels must use unaligned loads for block
  // payloads and scales), activations 0..7 floats past it (misaligned for 16/32/64-byte vectors;
  // a float* that is not 4-byte aligned would be undefined behaviour before any kernel runs).
  CaseRunner run;
  uint32_t i = 0;
  for (TensorType type : kAllTypes) {
    for (size_t wo = 0; wo < 8; ++wo) {
      for (size_t xo = 0; xo < 8; ++xo) {
        Case c{type, 7, 96, 5};
        c.threads = 1 + static_cast<int>(i % 2);
        c.w_offset = wo;
        c.x_offset = xo;
        c.seed = 9000 + i++;
        run(c);
      }
    }
  }
}

TEST(Matmul, FloatWeightsAnyLength) {
  // Float weights accept any column count: covers the vector remainder and scalar tail.
  CaseRunner run;
  for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::BF16}) {
    for (int64_t cols = 1; cols <= 70; ++cols) {
      Case c{type, 3, cols, 2};
      c.w_offset = static_cast<size_t>(cols % 8);
      c.x_offset = static_cast<size_t>(cols % 5);
      c.seed = 300 + static_cast<uint32_t>(cols);
      run(c);
    }
  }
}

TEST(Matmul, EveryCompiledSimdTarget) {
  // The dispatcher picks the best target of this CPU; force each one in turn so that every
  // compiled code path (e.g. AVX2 maddubs and AVX-512 VNNI int8 dots, the portable integer loop
  // of the SSE targets, FMA and non-FMA float paths) is compared with the reference.
  struct Reset {
    ~Reset() { hwy::SetSupportedTargetsForTest(0); }
  } reset;
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  const int64_t cols_list[] = {32, 64, 96, 160, 576, 1536};
  const int64_t rows_list[] = {1, 8, 33};
  const int64_t tokens_list[] = {1, 4, 5, 9};
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    ASSERT_STREQ(matmul_target_name(), hwy::TargetName(target));
    CaseRunner run;
    uint32_t i = 0;
    for (TensorType type : kAllTypes) {
      for (int64_t cols : cols_list) {
        for (int64_t rows : rows_list) {
          for (int64_t n_tokens : tokens_list) {
            Case c{type, rows, cols, n_tokens};
            c.threads = 1 + static_cast<int>(i % 2);
            c.w_offset = i % 8;
            c.x_offset = (i / 3) % 8;
            c.seed = 20000 + i++;
            run(c);
          }
        }
      }
    }
  }
  // Later tests in this process must get the normal (best) target back.
  hwy::SetSupportedTargetsForTest(0);
  EXPECT_STREQ(matmul_target_name(), hwy::TargetName(targets.front()));
}

TEST(Matmul, FloatActivationModeMatchesReference) {
  // ActivationMode::kFloat: quantized weights decoded per block, fp32 activations, on every
  // compiled target; compared with matmul_ref(..., quantize_activations = false).
  struct Reset {
    ~Reset() { hwy::SetSupportedTargetsForTest(0); }
  } reset;
  const int64_t cols_list[] = {32, 64, 96, 576, 1536};
  const int64_t rows_list[] = {1, 9, 33};
  const int64_t tokens_list[] = {1, 5, 65};
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    CaseRunner run;
    uint32_t i = 0;
    for (TensorType type : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0, TensorType::F16}) {
      for (int64_t cols : cols_list) {
        for (int64_t rows : rows_list) {
          Case c{type, rows, cols, tokens_list[i % 3]};
          c.mode = ActivationMode::kFloat;
          c.planar = type != TensorType::F16 && i % 2 == 1;  // planar rows decode through dequantize_row
          c.threads = 1 + static_cast<int>(i % 3);
          c.w_offset = i % 8;
          c.x_offset = (i / 2) % 8;
          c.seed = 40000 + i++;
          run(c);
        }
      }
    }
  }
}

TEST(Matmul, RawRandomBlocksCoverFullCodeRange) {
  // The reference quantizers never emit Q8_0 code -128, and their nibbles follow the data; blocks
  // from other writers may hold any byte. Fill payloads with random bytes (scales kept sane).
  struct Reset {
    ~Reset() { hwy::SetSupportedTargetsForTest(0); }
  } reset;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    MatmulScratch scratch;
    uint32_t seed = 1;
    for (TensorType type : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0}) {
      for (int64_t n_tokens : {1, 6}) {
        Case c{type, 17, 256, n_tokens};
        c.seed = seed++;
        Weights w = make_weights(type, c.rows, c.cols, c.seed, 3);
        std::mt19937 rng(c.seed);
        std::uniform_real_distribution<float> scale(-0.05f, 0.05f), minimum(-1.0f, 1.0f);
        uint8_t* data = const_cast<uint8_t*>(w.view.data);
        const size_t bsize = tensor_type_info(static_cast<uint32_t>(type))->block_bytes;
        for (size_t off = 0; off < w.view.rows * w.view.row_bytes; off += bsize) {
          for (size_t k = 0; k < bsize; ++k) data[off + k] = static_cast<uint8_t>(rng());
          const uint16_t d = fp32_to_fp16(scale(rng)), m = fp32_to_fp16(minimum(rng));
          std::memcpy(data + off, &d, 2);
          if (type == TensorType::Q4_1) std::memcpy(data + off + 2, &m, 2);
        }
        if (type == TensorType::Q8_0) {  // make sure -128 and 127 occur
          data[2] = 0x80;
          data[3] = 0x7f;
        }
        const Activations a = make_activations(n_tokens, c.cols, seed * 31u, 1);
        EXPECT_TRUE(check_against_ref(c, w, a, scratch));
      }
    }
  }
}

TEST(Matmul, LargeActivationsStayFinite) {
  // Finite activations must give finite outputs. The scales used keep the int8 activation scale
  // d = amax/127 well inside fp16 (d <= 65504 needs amax <= 8.3e6; beyond that ggml's format
  // overflows too). With Q4_1 weights this also exercises s = fp16(d * sum(q)), which overflows
  // to inf once d * sum(q) > 65504, i.e. for a block whose values sum to more than ~65504.
  CaseRunner run;
  uint32_t i = 0;
  for (TensorType type : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0, TensorType::F16}) {
    for (float scale : {1.0e2f, 3.0e3f, 1.0e4f}) {  // amax <= 1e4 * 2^4 * 30 = 4.8e6
      for (bool planar : {false, true}) {
        if (planar && type == TensorType::F16) continue;
        Case c{type, 9, 128, 3};
        c.x_scale = scale;
        c.planar = planar;
        c.seed = 700 + i++;
        run(c);
      }
    }
  }
}

TEST(Matmul, Q4_1ConstantLargeActivationBlockStaysFinite) {
  // Minimal case for the overflow described above: one row of Q4_1 weights (m != 0) and one
  // token whose 32 activations are all 3000. d = 3000/127 = 23.6, sum(q) = 32 * 127 = 4064, so
  // d * sum(q) = 96000 > 65504 (fp16 max): s rounds to inf. The exact product is finite.
  std::vector<float> wv(32);
  for (int j = 0; j < 32; ++j) wv[j] = 0.5f + 0.01f * j;  // m = 0.5
  BlockQ4_1 blk;
  quantize_row_q4_1_ref(wv.data(), &blk, 32);
  const MatrixView view =
      make_matrix_view(static_cast<uint32_t>(TensorType::Q4_1), reinterpret_cast<const uint8_t*>(&blk), 1, 32);
  std::vector<float> x(32, 3000.0f);
  float y = 0.0f, ref = 0.0f;
  MatmulScratch scratch;
  matmul(view, x.data(), 1, &y, pool_of(1), scratch);
  matmul_ref(view, x.data(), 1, &ref, true);
  EXPECT_TRUE(std::isfinite(ref)) << ref;
  EXPECT_TRUE(std::isfinite(y)) << "matmul Q4_1 gave " << y << " for a finite input; reference " << ref;
  EXPECT_NEAR(y, ref, 1e-3 * std::fabs(ref));
}

TEST(Matmul, PlanarRowsMatchReference) {
  // Planar (repacked) Q4_0/Q4_1/Q8_0 rows: column counts of 1..32 blocks cover every tail of the
  // chunk layout (nb % 16 = 0 .. 15: none, narrow tails of 1..8 blocks with 4, 2 or 1 lanes per
  // block, wide tails of 9..15), rows around the 16-row reduction batches and the 4/2-row tiles,
  // token counts around the 8- and 4-token tiles (8 + 4 + 1 ...) and the 64-token task chunks.
  const int64_t rows_list[] = {1, 3, 4, 5, 15, 16, 17, 33};
  const int64_t tokens_list[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 15, 16, 17, 64, 65, 130};
  CaseRunner run;
  uint32_t i = 0;
  for (TensorType type : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0}) {
    for (int64_t nb = 1; nb <= 32; ++nb) {
      for (int64_t rows : rows_list) {
        Case c{type, rows, nb * 32, tokens_list[i % 16]};
        c.planar = true;
        c.threads = 1 + static_cast<int>(i % 2);
        c.w_offset = i % 8;
        c.x_offset = (i / 8) % 8;
        c.seed = 60000 + i++;
        run(c);
      }
    }
  }
  for (TensorType type : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0}) {
    for (int64_t cols : {576, 960, 1536, 2048}) {  // SmolLM2 135M / 360M / 1.7B inputs
      for (int64_t n_tokens : {1, 4, 7, 67}) {
        Case c{type, 48, cols, n_tokens};
        c.planar = true;
        c.threads = 1 + static_cast<int>(i % 3);
        c.w_offset = i % 5;
        c.seed = 60000 + i++;
        run(c);
      }
    }
  }
  EXPECT_EQ(run.cases(), 3 * 32 * 8 + 3 * 4 * 4);
}

TEST(Matmul, PlanarEveryCompiledSimdTarget) {
  struct Reset {
    ~Reset() { hwy::SetSupportedTargetsForTest(0); }
  } reset;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    CaseRunner run;
    uint32_t i = 0;
    for (TensorType type : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0}) {
      for (int64_t nb : {1, 2, 3, 4, 5, 8, 9, 15, 16, 17, 18, 30, 48}) {
        for (int64_t n_tokens : {1, 5, 9}) {
          Case c{type, i % 2 ? 17 : 32, nb * 32, n_tokens};
          c.planar = true;
          c.threads = 1 + static_cast<int>(i % 2);
          c.w_offset = i % 8;
          c.x_offset = (i / 3) % 8;
          c.seed = 70000 + i++;
          run(c);
        }
      }
    }
  }
}

TEST(Matmul, PlanarRawRandomBlocks) {
  // Any code byte (Q8_0: -128 included, which the bias q + 128 maps to 0) through the planar path.
  struct Reset {
    ~Reset() { hwy::SetSupportedTargetsForTest(0); }
  } reset;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    MatmulScratch scratch;
    uint32_t seed = 1;
    for (TensorType type : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0}) {
      for (int64_t cols : {256, 576}) {
        Case c{type, 17, cols, cols == 256 ? 1 : 6};
        c.planar = true;
        c.seed = seed++;
        Weights w = make_weights(type, c.rows, c.cols, c.seed, 0);
        std::mt19937 rng(c.seed);
        std::uniform_real_distribution<float> scale(-0.05f, 0.05f), minimum(-1.0f, 1.0f);
        uint8_t* data = const_cast<uint8_t*>(w.view.data);
        const size_t bsize = tensor_type_info(static_cast<uint32_t>(type))->block_bytes;
        for (size_t off = 0; off < w.view.rows * w.view.row_bytes; off += bsize) {
          for (size_t k = 0; k < bsize; ++k) data[off + k] = static_cast<uint8_t>(rng());
          const uint16_t d = fp32_to_fp16(scale(rng)), m = fp32_to_fp16(minimum(rng));
          std::memcpy(data + off, &d, 2);
          if (type == TensorType::Q4_1) std::memcpy(data + off + 2, &m, 2);
        }
        if (type == TensorType::Q8_0) {
          data[2] = 0x80;
          data[3] = 0x7f;
        }
        const Activations a = make_activations(c.n_tokens, c.cols, seed * 31u, 1);
        EXPECT_TRUE(check_against_ref(c, w, a, scratch));
      }
    }
  }
}

TEST(Matmul, PlanarRepackRoundTrips) {
  // repack_planar keeps every bit: the rebuilt file blocks equal the originals, and
  // dequantize_row reads both layouts identically.
  for (TensorType type : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0}) {
    for (int64_t nb = 1; nb <= 40; ++nb) {
      const Weights w = make_weights(type, 3, nb * 32, 500 + static_cast<uint32_t>(nb), 0);
      std::vector<uint8_t> buf(w.view.rows * w.view.row_bytes);
      const MatrixView p = repack_planar(w.view, buf.data());
      ASSERT_TRUE(p.planar);
      ASSERT_EQ(p.row_bytes, w.view.row_bytes);
      std::vector<uint8_t> blocks(p.row_bytes);
      std::vector<float> a(nb * 32), b(nb * 32);
      for (int64_t r = 0; r < p.rows; ++r) {
        planar_row_to_blocks(p, r, blocks.data());
        ASSERT_EQ(0, std::memcmp(blocks.data(), w.view.data + r * w.view.row_bytes, p.row_bytes))
            << type_name(type) << " nb=" << nb << " r=" << r;
        dequantize_row(w.view, r, a.data());
        dequantize_row(p, r, b.data());
        ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << type_name(type) << " nb=" << nb;
      }
      if (type == TensorType::Q4_1) {
        // The minimums stay where the planar layout has always kept them: [codes][d][m].
        for (int64_t b2 = 0; b2 < nb; ++b2) {
          ASSERT_EQ(0, std::memcmp(p.data + nb * 18 + 2 * b2, w.view.data + b2 * sizeof(BlockQ4_1) + offsetof(BlockQ4_1, m), 2));
        }
      }
    }
  }
}

TEST(Matmul, ArrangedActivationsFollowPlanarLayout) {
  // QuantizedActivations' arranged copy, checked element by element against planar_position.
  for (int64_t nb : {1, 2, 3, 5, 8, 9, 16, 18, 31, 48}) {
    const int64_t cols = nb * 32, n_tokens = 3;
    const Activations x = make_activations(n_tokens, cols, 99 + static_cast<uint32_t>(nb), 0);
    QuantizedActivations act;
    act.quantize(x.x, n_tokens, cols);
    const PlanarGeometry g(nb);
    for (int64_t t = 0; t < n_tokens; ++t) {
      const QuantizedRowView a = act.row(t);
      ASSERT_EQ(reinterpret_cast<uintptr_t>(a.qt) % 64, 0u);
      std::vector<int> seen(static_cast<size_t>(g.n_chunks() * 512), 0);
      for (int64_t b = 0; b < nb; ++b) {
        for (int e = 0; e < 32; ++e) {
          const PlanarPos p = planar_position(g, b, e);
          const PlanarChunk k = g.chunk(p.chunk);
          const int64_t at = 512 * p.chunk + 4 * k.lanes * p.step + 4 * p.lane + p.byte;
          ASSERT_EQ(a.qt[at], a.qs[b * 32 + e]) << "nb=" << nb << " b=" << b << " e=" << e;
          ++seen[static_cast<size_t>(at)];
          const int64_t l = 16 * p.chunk + p.lane;
          ASSERT_EQ(a.lane_d[l], a.d[b]);
          const bool first = p.lane % k.parts == 0;
          ASSERT_EQ(a.lane_ds[l], first ? a.ds[b] : 0.0f);
          ASSERT_EQ(a.lane_neg8[l], first ? -8 * a.isum[b] : 0);
          if (e % (32 / k.parts) == 0) {  // once per lane: the sum of the lane's own elements
            int32_t sum = 0;
            for (int j = e; j < e + 32 / k.parts; ++j) sum += a.qs[b * 32 + j];
            ASSERT_EQ(a.lane_neg128[l], -128 * sum) << "nb=" << nb << " b=" << b << " e=" << e;
          }
        }
      }
      for (int64_t c = 0; c < g.n_chunks(); ++c) {  // padding lanes carry nothing
        for (int l = g.chunk(c).valid_lanes; l < 16; ++l) {
          ASSERT_EQ(a.lane_d[16 * c + l], 0.0f);
          ASSERT_EQ(a.lane_ds[16 * c + l], 0.0f);
          ASSERT_EQ(a.lane_neg8[16 * c + l], 0);
          ASSERT_EQ(a.lane_neg128[16 * c + l], 0);
        }
      }
      for (size_t i = 0; i < seen.size(); ++i) {  // each element once; padding stays zero
        ASSERT_LE(seen[i], 1);
        if (seen[i] == 0) ASSERT_EQ(a.qt[i], 0) << "nb=" << nb << " padding byte " << i;
      }
    }
  }
}

TEST(Matmul, ResultsDoNotDependOnTokenCountOrThreads) {
  // Each output is computed with the same operations whatever the token count, tile and thread
  // split, so decode (1 token), chunked prefill and one big prefill agree bit for bit (the forward
  // tests rely on it for quantized weights). Every compiled target, planar and file layouts.
  struct Reset {
    ~Reset() { hwy::SetSupportedTargetsForTest(0); }
  } reset;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    MatmulScratch scratch;
    for (TensorType type : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0, TensorType::F16}) {
      for (bool planar : {true, false}) {
        if (planar && !can_repack_planar(static_cast<uint32_t>(type))) continue;
        for (int64_t cols : {64, 576, 1536}) {
          const int64_t rows = 37, n_tokens = 70;
          Case c{type, rows, cols, n_tokens};
          c.planar = planar;
          const Weights w = make_weights(type, rows, cols, 3000 + static_cast<uint32_t>(cols), 0);
          const KernelWeights kw = kernel_weights(c, w);
          const Activations a = make_activations(n_tokens, cols, 3001, 0);
          std::vector<float> all(rows * n_tokens), one(rows), part(rows * n_tokens);
          matmul(kw.view, a.x, n_tokens, all.data(), pool_of(2), scratch);
          for (int64_t t = 0; t < n_tokens; ++t) {
            matmul(kw.view, a.x + t * cols, 1, one.data(), pool_of(1), scratch);
            ASSERT_EQ(0, std::memcmp(one.data(), &all[t * rows], rows * sizeof(float)))
                << c.describe() << " target=" << hwy::TargetName(target) << " token " << t << " alone";
          }
          for (int64_t t = 0; t < n_tokens;) {  // chunks of 3, 7, 1, 25, ...
            const int64_t n = std::min<int64_t>(n_tokens - t, 1 + (t * 7) % 26);
            matmul(kw.view, a.x + t * cols, n, &part[t * rows], pool_of(1 + static_cast<int>(t % 2)), scratch);
            t += n;
          }
          ASSERT_EQ(0, std::memcmp(part.data(), all.data(), all.size() * sizeof(float)))
              << c.describe() << " target=" << hwy::TargetName(target) << " chunked";
        }
      }
    }
  }
}

TEST(Matmul, ActivationQuantizationMatchesScalarReference) {
  // QuantizedActivations::quantize (vectorized per target) against quantize_activation_blocks_ref,
  // bit for bit: random blocks over many exponents, exact .5 ties of x * 127 / amax, zeros,
  // subnormals, NaN and Inf, values whose scale rounds to an fp16 subnormal or overflows fp16.
  struct Reset {
    ~Reset() { hwy::SetSupportedTargetsForTest(0); }
  } reset;
  const int64_t nb = 64;
  std::vector<float> x(nb * 32);
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t b = 0; b < nb; ++b) {
    float* xb = &x[b * 32];
    for (int j = 0; j < 32; ++j) xb[j] = std::ldexp(u(rng), static_cast<int>(b % 40) - 20);
    switch (b % 8) {
      case 1: for (int j = 0; j < 32; ++j) xb[j] = 0.0f; break;
      case 2: xb[3] = std::numeric_limits<float>::quiet_NaN(); break;
      case 3: xb[5] = std::numeric_limits<float>::infinity(); xb[6] = -1.0f; break;
      case 4:  // amax = 127: x * 127 / amax = x, ties at k + 0.5 round to even
        xb[0] = 127.0f;
        for (int j = 1; j < 32; ++j) xb[j] = static_cast<float>(j % 9) - 4.5f;
        break;
      case 5: for (int j = 0; j < 32; ++j) xb[j] = std::ldexp(u(rng), -140); break;  // subnormal
      case 6: xb[7] = 1.0e7f; break;  // d = 78740 > 65504: fp16 inf
      case 7: xb[2] = -0.0f; xb[9] = std::ldexp(1.0f, -30); break;
      default: break;
    }
  }
  std::vector<int8_t> qs(x.size());
  std::vector<float> d(nb), ds(nb);
  std::vector<int32_t> isum(nb);
  quantize_activation_blocks_ref(x.data(), nb, qs.data(), d.data(), isum.data(), ds.data());
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    QuantizedActivations act;
    act.quantize(x.data(), 4, 16 * 32);  // 4 tokens of 16 blocks
    for (int64_t t = 0; t < 4; ++t) {
      const QuantizedRowView a = act.row(t);
      for (int64_t b = 0; b < 16; ++b) {
        const int64_t i = t * 16 + b;
        ASSERT_EQ(0, std::memcmp(a.qs + b * 32, &qs[i * 32], 32)) << hwy::TargetName(target) << " block " << i;
        ASSERT_EQ(std::bit_cast<uint32_t>(a.d[b]), std::bit_cast<uint32_t>(d[i])) << hwy::TargetName(target) << " block " << i;
        ASSERT_EQ(a.isum[b], isum[i]) << hwy::TargetName(target) << " block " << i;
        ASSERT_EQ(std::bit_cast<uint32_t>(a.ds[b]), std::bit_cast<uint32_t>(ds[i])) << hwy::TargetName(target) << " block " << i;
      }
    }
  }
}

// --- the reference itself --------------------------------------------------------------------

TEST(MatmulRef, MatchesDoubleDotOfDequantizedWeights) {
  // Without activation quantization matmul_ref is sum_c w_c x_c in double, rounded once.
  for (TensorType type : kAllTypes) {
    const int64_t rows = 5, cols = 160, n_tokens = 3;
    const Weights w = make_weights(type, rows, cols, 77, 0);
    const Activations a = make_activations(n_tokens, cols, 78, 0);
    std::vector<float> ref(rows * n_tokens);
    matmul_ref(w.view, a.x, n_tokens, ref.data(), false);
    for (int64_t r = 0; r < rows; ++r) {
      // Decode the row independently of dequantize_row.
      std::vector<float> wr(cols);
      const uint8_t* row = w.view.data + r * w.view.row_bytes;
      for (int64_t c = 0; c < cols; ++c) {
        uint16_t h;
        switch (type) {
          case TensorType::F32: std::memcpy(&wr[c], row + 4 * c, 4); break;
          case TensorType::F16: std::memcpy(&h, row + 2 * c, 2); wr[c] = fp16_to_fp32(h); break;
          case TensorType::BF16: std::memcpy(&h, row + 2 * c, 2); wr[c] = bf16_to_fp32(h); break;
          default: break;
        }
      }
      if (type == TensorType::Q4_0) {
        std::vector<BlockQ4_0> b(cols / 32);
        std::memcpy(b.data(), row, w.view.row_bytes);
        dequantize_row_q4_0_ref(b.data(), wr.data(), cols);
      } else if (type == TensorType::Q4_1) {
        std::vector<BlockQ4_1> b(cols / 32);
        std::memcpy(b.data(), row, w.view.row_bytes);
        dequantize_row_q4_1_ref(b.data(), wr.data(), cols);
      } else if (type == TensorType::Q8_0) {
        std::vector<BlockQ8_0> b(cols / 32);
        std::memcpy(b.data(), row, w.view.row_bytes);
        dequantize_row_q8_0_ref(b.data(), wr.data(), cols);
      }
      for (int64_t t = 0; t < n_tokens; ++t) {
        double dot = 0.0, mag = 0.0;
        for (int64_t c = 0; c < cols; ++c) {
          dot += static_cast<double>(wr[c]) * a.x[t * cols + c];
          mag += std::fabs(static_cast<double>(wr[c]) * a.x[t * cols + c]);
        }
        // Final rounding to fp32 (u |y|) plus double summation (cols * 2^-53, << u).
        EXPECT_LE(std::fabs(ref[t * rows + r] - dot), 2.0 * kU * mag) << type_name(type);
      }
    }
  }
}

TEST(MatmulRef, ActivationQuantizationErrorIsBoundedPerBlock) {
  // quantize_activations = true replaces x by dh * q with q = round(x / d), d = amax/127 of the
  // block, dh = fp16(d): |x - dh q| <= d/2 + 127 |dh - d| (+ ~2u amax for fp32 x * (127/amax)).
  // So |ref(true) - ref(false)| <= sum_c |w_c| e_c plus one fp32 rounding of each output.
  // Float weights never quantize activations: both modes agree exactly.
  for (TensorType type : kAllTypes) {
    for (int64_t cols : {32, 576, 1536}) {
      const int64_t rows = 4, n_tokens = 3;
      const Weights w = make_weights(type, rows, cols, 90 + static_cast<uint32_t>(cols), 0);
      const Activations a = make_activations(n_tokens, cols, 91, 0);
      std::vector<float> yq(rows * n_tokens), yf(rows * n_tokens);
      matmul_ref(w.view, a.x, n_tokens, yq.data(), true);
      matmul_ref(w.view, a.x, n_tokens, yf.data(), false);
      if (!is_quantized(type)) {
        EXPECT_EQ(yq, yf) << type_name(type);
        continue;
      }
      QuantizedActivations act;
      act.quantize(a.x, n_tokens, cols);
      std::vector<float> wr(cols);
      for (int64_t r = 0; r < rows; ++r) {
        dequantize_row(w.view, r, wr.data());
        for (int64_t t = 0; t < n_tokens; ++t) {
          const float* xt = a.x + t * cols;
          const QuantizedRowView q = act.row(t);
          double bound = 0.0, mag = 0.0;
          for (int64_t b = 0; b < cols / kBlockElems; ++b) {
            double amax = 0.0;
            for (int j = 0; j < kBlockElems; ++j) amax = std::max(amax, std::fabs(static_cast<double>(xt[b * 32 + j])));
            const double d = amax / 127.0, dh = q.d[b];
            const double e = d / 2.0 + 127.0 * std::fabs(dh - d) + 4.0 * kU * amax;
            for (int j = 0; j < kBlockElems; ++j) {
              const int64_t c = b * kBlockElems + j;
              // The quantized value itself must satisfy the per-element bound.
              ASSERT_LE(std::fabs(xt[c] - dh * q.qs[c]), e) << type_name(type) << " c=" << c;
              bound += std::fabs(static_cast<double>(wr[c])) * e;
              mag += std::fabs(static_cast<double>(wr[c])) * (std::fabs(xt[c]) + e);
            }
          }
          bound += 2.0 * kU * mag;
          EXPECT_LE(std::fabs(static_cast<double>(yq[t * rows + r]) - yf[t * rows + r]), bound)
              << type_name(type) << " cols=" << cols << " r=" << r << " t=" << t;
        }
      }
    }
  }
}

TEST(Matmul, MakeMatrixViewRejectsBadShapesAndTypes) {
  const uint8_t dummy[64] = {};
  EXPECT_THROW(make_matrix_view(static_cast<uint32_t>(TensorType::Q4_1), dummy, 1, 48), Error);
  EXPECT_THROW(make_matrix_view(static_cast<uint32_t>(TensorType::Q8_0), dummy, 0, 32), Error);
  EXPECT_THROW(make_matrix_view(static_cast<uint32_t>(TensorType::Q4_K), dummy, 1, 256), Error);
  EXPECT_THROW(make_matrix_view(static_cast<uint32_t>(TensorType::F32), dummy, 1, 0), Error);
  const MatrixView v = make_matrix_view(static_cast<uint32_t>(TensorType::Q4_0), dummy, 2, 64);
  EXPECT_EQ(v.row_bytes, 2u * sizeof(BlockQ4_0));
}

}  // namespace
}  // namespace kvbits
