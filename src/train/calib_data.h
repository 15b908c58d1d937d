#pragma once
// Calibration text for training the learned controller (`kvbits train --calib FILES`).
//
// Files, by content:
//  * ARC jsonl (train/dev splits): each item becomes "Question: STEM\nAnswer: CORRECT_CHOICE",
//    i.e. the evaluation context followed by the right answer, as the model reads it at test time;
//  * generic multiple-choice jsonl {"query", "choices", "gold"}: "QUERY GOLD_CHOICE";
//  * anything else: plain UTF-8 text, one item per non-empty line.
// Fitting is allowed on train/dev splits only (../shared/PROTOCOLS.md): a file whose name says
// it is a test split (e.g. arc_easy_test.jsonl) or the WikiText-2 / HellaSwag / OpenBookQA
// evaluation files is refused. Items are tokenized and packed whole into sequences of about
// `target_tokens` (the tokenizer's BOS first if it adds one, items joined by "\n\n").
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace kvbits::train {

struct CalibItems {
  std::vector<std::string> texts;            // in file order, files in the order given
  std::vector<std::string> sources;          // per file: "FILE: N items"
};

// Reads and checks every file before anything else runs. Throws Error for a missing or
// unreadable file, a test split, a file with no usable text, or no files.
CalibItems load_calibration(const std::vector<std::filesystem::path>& files);

struct PackOptions {
  int64_t target_tokens = 192;  // a sequence is closed once it reaches this many tokens
  int64_t max_tokens = 256;     // items that would push it past this start a new sequence
  int64_t min_tokens = 32;      // shorter leftovers are dropped
};

// Token sequences from the items (deterministic; items longer than max_tokens are cut).
std::vector<std::vector<int32_t>> pack_sequences(const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                                                 const PackOptions& options);

}  // namespace kvbits::train
