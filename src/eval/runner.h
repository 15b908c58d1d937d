#pragma once
// Runs one evaluation task through a Session under the quantized-KV protocol of
// docs/protocols.md (../shared/PROTOCOLS.md):
//  * multiple choice: the context is prefilled (full precision inside its chunk) and committed
//    through the session's policy; then all choices are scored side by side, each attending the
//    compressed context and, at full precision, its own earlier tokens. The compressed context is
//    computed once per item and shared by its choices. Tokenization follows lm-evaluation-harness
//    (tokenize_item below); ll = sum of log p(continuation token | everything before).
//  * perplexity: the text is tokenized as one stream and split into non-overlapping windows of W
//    tokens; each window starts from an empty cache and is fed in chunks of C tokens, each chunk
//    attending the compressed cache of the window so far plus itself at full precision, then
//    committed. Every token but the window's first is scored (the first chunk too).
// Items (windows) are independent: every one starts from an empty cache. With several workers
// (sessions), worker w of J takes the shard's items w, w + J, w + 2J, ... on its own std::thread;
// the records are merged in ascending index, so a result depends on J (through each worker's
// policy state, e.g. the learned policy's running budget surplus, and its threads' summation
// order) but not on scheduling.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "engine/session.h"
#include "eval/result_file.h"
#include "eval/task.h"
#include "tokenizer/tokenizer.h"

namespace kvbits::eval {

struct RunnerOptions {
  int64_t limit = 0;        // --limit: first N items (windows), 0 = all
  ShardSpec shard;          // --shard i/n
  int64_t ppl_window = 512;  // W
  int64_t ppl_chunk = 32;    // C
};

// One evaluation worker. The sessions are the worker's own (with their own policy instance and
// thread pool); they may share the model.
struct RunnerWorker {
  Session* session = nullptr;
  // Perplexity only (nullptr: off): a session with the FP16 cache fed the same chunks; each window
  // then also records sum KL(p_reference || p_session) over its scored tokens.
  Session* reference = nullptr;
};

// An item's tokens as lm-evaluation-harness's TemplateLM._encode_pair(context, " " + choice) makes
// them: whitespace at the end of the context (Python's str.isspace) moves to the front of each
// continuation; whole = encode(context + continuation), context = encode(context) (BOS first if
// the tokenizer adds one), continuation = the tokens of whole after context.size(). A context
// that is whitespace only is kept whole. Throws Error if a choice adds no token.
struct McTokens {
  std::vector<int32_t> context;
  std::vector<std::vector<int32_t>> continuations;  // one per choice
};
McTokens tokenize_item(const Tokenizer& tokenizer, const McItem& item);

// Number of perplexity windows a tokenized text of n tokens yields (the last partial window is
// kept if it has at least 2 tokens).
int64_t ppl_window_count(int64_t n_tokens, int64_t window);

// Evaluates the shard's items, appending records (ascending index) to result.items /
// result.windows and KV statistics (of each item's compressed context, or each window at its end)
// to result.kv. Sets result.n_total. Polls interrupt_requested() between items: on Ctrl-C it
// returns with result.complete = false and the records done so far. `on_progress(done, total,
// metric)` is called after every item, from one worker at a time (metric: the running accuracy
// or perplexity of the items done). An error in any worker stops the others at their next item
// and is rethrown here.
using ProgressFn = std::function<void(int64_t, int64_t, const std::string&)>;
void run_task(std::span<const RunnerWorker> workers, const Tokenizer& tokenizer, const TaskData& data,
              const RunnerOptions& options, RunResult& result, const ProgressFn& on_progress);
// One worker, no reference session.
void run_task(Session& session, const Tokenizer& tokenizer, const TaskData& data, const RunnerOptions& options,
              RunResult& result, const ProgressFn& on_progress);

// Decode speed of the session's policy: prefills `depth` tokens of `text` (cycled) and times
// `n_tokens` greedy decode steps; returns ms/token. Resets the session before and after.
double measure_decode_ms(Session& session, const std::vector<int32_t>& text, int64_t depth, int64_t n_tokens);

}  // namespace kvbits::eval
