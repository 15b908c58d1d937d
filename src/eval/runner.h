#pragma once
// Runs one evaluation task through a Session under the quantized-KV protocol of
// docs/protocols.md (../shared/PROTOCOLS.md):
//  * multiple choice: the context is prefilled (full precision inside its chunk) and committed
//    through the session's policy; then all choices are scored side by side, each attending the
//    compressed context and, at full precision, its own earlier tokens. The compressed context is
//    computed once per item and shared by its choices. Tokenization follows lm-evaluation-harness:
//    whole = encode(context + " " + choice), context = encode(context), continuation = the tokens
//    of whole after len(context); ll = sum of log p(continuation token | everything before).
//  * perplexity: the text is tokenized as one stream and split into non-overlapping windows of W
//    tokens; each window starts from an empty cache and is fed in chunks of C tokens, each chunk
//    attending the compressed cache of the window so far plus itself at full precision, then
//    committed. Every token but the window's first is scored (the first chunk too).
#include <cstdint>
#include <functional>

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

// Number of perplexity windows a tokenized text of n tokens yields (the last partial window is
// kept if it has at least 2 tokens).
int64_t ppl_window_count(int64_t n_tokens, int64_t window);

// Evaluates the shard's items, appending records to result.items / result.windows and KV
// statistics (of each item's compressed context, or each window at its end) to result.kv.
// Sets result.n_total. Polls interrupt_requested() between items: on Ctrl-C it returns with
// result.complete = false and the records done so far. `on_progress(done, total, metric)` is
// called after every item.
void run_task(Session& session, const Tokenizer& tokenizer, const TaskData& data, const RunnerOptions& options,
              RunResult& result, const std::function<void(int64_t, int64_t, const std::string&)>& on_progress);

// Decode speed of the session's policy: prefills `depth` tokens of `text` (cycled) and times
// `n_tokens` greedy decode steps; returns ms/token. Resets the session before and after.
double measure_decode_ms(Session& session, const std::vector<int32_t>& text, int64_t depth, int64_t n_tokens);

}  // namespace kvbits::eval
