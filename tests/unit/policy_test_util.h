#pragma once
// A session on the tiny synthetic model (2 layers) prefilled with a fixed 100-token prompt under a
// policy: the KV statistics policy tests check (layer_policy_test, sink_policy_test).
#include <memory>
#include <string>
#include <vector>

#include "engine/session.h"
#include "gguf_test_util.h"
#include "model/llama_model.h"
#include "model/synthetic_model.h"

namespace kvbits::testing {

class TinyPolicySession {
 public:
  TinyPolicySession() {
    write_synthetic_model(SyntheticModelOptions{}, path_);
    model_ = LlamaModel::load(path_);
    for (int i = 0; i < 100; ++i) prompt_.push_back(3 + (i * 37) % 250);
  }
  const LlamaModel& model() const { return *model_; }
  // The store's statistics after prefilling the prompt under `policy` (1 thread).
  KvStats stats(std::shared_ptr<PrecisionPolicy> policy) const {
    SessionOptions so;
    so.threads = 1;
    so.policy = std::move(policy);
    Session session(*model_, so);
    session.prefill(prompt_);
    return session.kv().stats();
  }

 private:
  TempDir dir_;
  std::string path_ = dir_.file("tiny.gguf");
  std::unique_ptr<LlamaModel> model_;
  std::vector<int32_t> prompt_;
};

}  // namespace kvbits::testing
