// `kvbits synth`: writes a random-weight Llama model of a named shape (tests, benchmarks, fuzz
// seeds) and prints a one-line summary.
#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include "cli/commands.h"
#include "cli/common.h"
#include "io/gguf.h"
#include "io/tensor_type.h"
#include "model/synthetic_model.h"
#include "util/error.h"

namespace kvbits::cli {

namespace {

// Weight types the synthetic writer can encode, by their lower-case CLI names.
const std::map<std::string, TensorType>& weight_types() {
  static const std::map<std::string, TensorType> kTypes = {
      {"f32", TensorType::F32},   {"f16", TensorType::F16},   {"bf16", TensorType::BF16},
      {"q8_0", TensorType::Q8_0}, {"q4_0", TensorType::Q4_0}, {"q4_1", TensorType::Q4_1},
  };
  return kTypes;
}

struct SynthFlags {
  std::string shape = "tiny";
  std::string type = "q4_1";
  std::string embd_type = "q8_0";
  uint64_t seed = 1;
  std::string tokenizer_from;
  std::string out_path;
  std::string arch;  // hidden: overrides general.architecture (to test loaders' rejection)
};

int synth(const SynthFlags& f) {
  SyntheticModelOptions o;
  o.shape = f.shape;
  o.weight_type = static_cast<uint32_t>(weight_types().at(f.type));
  o.embedding_type = static_cast<uint32_t>(weight_types().at(f.embd_type));
  o.seed = f.seed;
  o.tokenizer_from = f.tokenizer_from;
  const auto t0 = std::chrono::steady_clock::now();
  GgufWriter writer = make_synthetic_model(o);
  if (!f.arch.empty()) writer.set_string("general.architecture", f.arch);
  writer.write(f.out_path);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const GgufFile file = GgufFile::open(f.out_path);
  uint64_t params = 0;
  for (const GgufTensor& t : file.tensors()) params += t.n_elements;
  std::printf("wrote %s: shape %s, weights %s, embeddings %s, %.1fM params, %s, %zu tensors (%.1f s)\n",
              f.out_path.c_str(), f.shape.c_str(), tensor_type_name(o.weight_type).c_str(),
              tensor_type_name(o.embedding_type).c_str(), static_cast<double>(params) / 1e6,
              format_bytes(file.file_size()).c_str(), file.tensors().size(), seconds);
  return 0;
}

}  // namespace

Runner add_synth_command(CLI::App& cmd) {
  auto f = std::make_shared<SynthFlags>();
  std::vector<std::string> type_names;
  for (const auto& [name, type] : weight_types()) type_names.push_back(name);
  cmd.add_option("--shape", f->shape, "model shape")
      ->check(CLI::IsMember({"tiny", "135m", "360m", "1.7b"}))
      ->capture_default_str();
  cmd.add_option("--type", f->type, "type of the layer matrices")
      ->transform(CLI::IsMember(type_names, CLI::ignore_case))
      ->capture_default_str();
  cmd.add_option("--embd-type", f->embd_type, "type of token_embd.weight (the tied output head)")
      ->transform(CLI::IsMember(type_names, CLI::ignore_case))
      ->capture_default_str();
  cmd.add_option("--seed", f->seed, "RNG seed of the weights")->capture_default_str();
  cmd.add_option("--tokenizer-from", f->tokenizer_from,
                 "copy tokenizer.* metadata from this GGUF (its vocabulary must match the shape)");
  cmd.add_option("-o,--output", f->out_path, "output GGUF path")->required();
  cmd.add_option("--arch", f->arch, "override general.architecture (tests)")->group("");
  return [f] { return synth(*f); };
}

}  // namespace kvbits::cli
