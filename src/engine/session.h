#pragma once
// A generation session: one model, one mixed-precision KV store, one precision policy, one thread
// pool. Prefill runs the prompt in chunks (matrix-matrix kernels); decode runs one token at a
// time. After every forward call the tokens that leave the FP16 window (all but the policy's R most
// recent) are committed to the store at the widths the policy picks. Not thread-safe.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "backend/thread_pool.h"
#include "kv/kv_store.h"
#include "model/llama_model.h"
#include "policy/precision_policy.h"

namespace kvbits {

struct SessionOptions {
  int64_t context = 0;          // tokens the cache can hold; 0 = the model's context_length
  int threads = 2;
  int64_t prefill_chunk = 256;  // tokens per forward call during prefill
  int64_t max_batch = 256;      // most tokens of side-by-side continuations per forward call
  ActivationMode activations = ActivationMode::kInt8;  // kFloat: slower, no activation rounding
  // Permit a context longer than the model was trained for (speed benchmarks at depth 8192 need
  // 8192 + generated tokens; output quality past the trained length is not guaranteed).
  bool allow_beyond_trained_context = false;
  // The precision policy (nullptr: fp16) and the store's layout options; the session fills in
  // capacity, residual, max_chunk, floor, demotion and record from itself and the policy.
  std::shared_ptr<PrecisionPolicy> policy;
  KvStoreOptions kv;
  // Key centering, chosen per row (KvStoreOptions::key_mean, engine/key_means.h): the mean is
  // measured at construction when the policy quantizes and kv.key_mean is empty (one forward of
  // ~300 tokens: +0.4 s at session start on 2 threads). On by default: it cuts the KL of 2-bit keys by 29-45 % on WikiText-2
  // (docs/kv_quality.md).
  bool center_keys = true;
  // Key channel weights (KvStoreOptions::key_weight, engine/key_means.h), measured by the same
  // forward as the mean when kv.key_weight is empty.
  bool weight_keys = true;
  // Run on this pool (owned by the caller, outliving the session) instead of starting `threads`
  // threads of its own: sessions used in turn (bench --baseline) then share one set of threads,
  // with no idle pool spinning beside the one at work.
  ThreadPool* pool = nullptr;
};

class Session {
 public:
  // `model` must outlive the session. Throws Error on invalid options (e.g. context larger than
  // the model supports, a budget that cannot hold it).
  Session(const LlamaModel& model, const SessionOptions& options);

  // Appends tokens to the context; returns the logits [vocab] after the last one.
  // Throws Error("context overflow ...") if they do not fit.
  std::span<float> prefill(std::span<const int32_t> tokens);
  // Appends one token; returns the next-token logits [vocab].
  std::span<float> decode(int32_t token);
  // Appends tokens (in chunks of prefill_chunk, each committed before the next) and returns the
  // logits of every one: [n, vocab] (perplexity, scoring).
  std::span<float> prefill_all_logits(std::span<const int32_t> tokens);
  // Scores continuations of the current context side by side, each attending the context and its
  // own earlier tokens, and leaves the context unchanged. Returns logits [sum of lengths, vocab];
  // continuation j's rows start at offsets[j]. Each continuation must fit max_batch tokens.
  // prefix >= 0 makes the continuations follow position committed() + prefix instead, attending
  // only the first `prefix` window rows (the damage probe scores from inside the window).
  std::span<float> score_continuations(std::span<const std::vector<int32_t>> continuations,
                                       std::vector<int64_t>& offsets, int64_t prefix = -1);

  // The features of the token at `pos` as computed so far (what the policy sees at commit).
  const TokenInfo& features(int64_t pos) const { return features_[static_cast<size_t>(pos)]; }
  KvStore& mutable_kv() { return *store_; }

  void reset();
  // Wall seconds spent since construction computing the policy's token features (logit
  // statistics, attention-row statistics) and in the policy's decisions: the controller's own
  // cost, not counting the tap's extra work inside the final layer's attention. Benchmarks take
  // differences of it around the steps they time.
  double policy_seconds() const { return policy_seconds_; }
  // Wall seconds spent since construction inside the model's attention (all layers, prefill and
  // decode); benchmarks take differences around the steps they time.
  double attention_seconds() const { return scratch_.attention_seconds; }
  int64_t n_past() const { return store_->size(); }
  int64_t context() const { return store_->capacity(); }
  const KvStore& kv() const { return *store_; }
  const PrecisionPolicy& policy() const { return *policy_; }
  const LlamaModel& model() const { return model_; }
  ThreadPool& pool() { return *pool_; }

 private:
  void forward(const ForwardInput& input, LogitsFor which);
  // Appends `tokens` (just run through the model, logits per `which`) to the history and computes
  // the features the policy needs.
  void record(std::span<const int32_t> tokens, LogitsFor which);
  void commit_ready();  // commits window tokens beyond the policy's R

  const LlamaModel& model_;
  SessionOptions options_;
  std::shared_ptr<PrecisionPolicy> policy_;
  std::unique_ptr<ThreadPool> own_pool_;  // null when options.pool is given
  ThreadPool* pool_;                       // options.pool or own_pool_
  std::unique_ptr<KvStore> store_;
  ForwardScratch scratch_;
  std::vector<float> logits_, all_logits_;
  std::vector<int32_t> history_;  // token id at every cached position
  PolicyNeeds needs_;
  std::vector<TokenInfo> features_;  // per cached position
  AttentionTap tap_;
  double last_lse_ = 0.0;            // log-sum-exp of the last logits row (surprisal of the next token)
  bool have_last_ = false;
  std::vector<float> last_row_;      // logits row predicting the next token (needs_.logits)
  std::vector<KvPrecision> precisions_;
  double policy_seconds_ = 0.0;      // see policy_seconds()
};

}  // namespace kvbits
