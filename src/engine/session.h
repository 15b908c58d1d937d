#pragma once
// A generation session: one model, one KV cache, one thread pool. Prefill runs the prompt in
// chunks (matrix-matrix kernels); decode runs one token at a time. Not thread-safe.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "backend/thread_pool.h"
#include "kv/fp16_kv_cache.h"
#include "model/llama_model.h"

namespace kvbits {

struct SessionOptions {
  int64_t context = 0;        // tokens the cache can hold; 0 = the model's context_length
  int threads = 2;
  int64_t prefill_chunk = 256;  // tokens per forward call during prefill
  ActivationMode activations = ActivationMode::kInt8;  // kFloat: slower, no activation rounding
  // Permit a context longer than the model was trained for (speed benchmarks at depth 8192 need
  // 8192 + generated tokens; output quality past the trained length is not guaranteed).
  bool allow_beyond_trained_context = false;
};

class Session {
 public:
  // `model` must outlive the session. Throws Error on invalid options (e.g. context larger than
  // the model supports).
  Session(const LlamaModel& model, const SessionOptions& options);

  // Appends tokens to the context; returns the logits [vocab] after the last one.
  // Throws Error("context overflow ...") if they do not fit.
  std::span<float> prefill(std::span<const int32_t> tokens);
  // Appends one token; returns the next-token logits [vocab].
  std::span<float> decode(int32_t token);
  // Appends tokens and returns the logits of every one: [n, vocab] (for scoring).
  std::span<float> prefill_all_logits(std::span<const int32_t> tokens);

  void reset() { cache_.clear(); }
  int64_t n_past() const { return cache_.size(); }
  int64_t context() const { return cache_.capacity(); }
  const Fp16KvCache& cache() const { return cache_; }
  const LlamaModel& model() const { return model_; }
  ThreadPool& pool() { return pool_; }

 private:
  const LlamaModel& model_;
  SessionOptions options_;
  ThreadPool pool_;
  Fp16KvCache cache_;
  ForwardScratch scratch_;
  std::vector<float> logits_;
};

}  // namespace kvbits
