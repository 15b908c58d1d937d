#pragma once
// Flags and helpers shared by the generation frontends (run, chat, bench).
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "engine/sampler.h"
#include "engine/session.h"
#include "model/llama_model.h"
#include "tokenizer/tokenizer.h"

namespace kvbits::cli {

struct ModelFlags {
  std::string model_path;
  int threads = 2;
  int64_t context = 0;  // tokens; 0 = the model's full context (memory is touched as used)
};

void add_model_flags(CLI::App& cmd, ModelFlags& flags);
void add_sampler_flags(CLI::App& cmd, SamplerOptions& options);

struct LoadedModel {
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<Tokenizer> tokenizer;
};
LoadedModel load_model(const ModelFlags& flags);

// "12.3 MiB" style.
std::string format_bytes(uint64_t bytes);

}  // namespace kvbits::cli
