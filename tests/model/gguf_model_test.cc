// GGUF reader against the real SmolLM2-135M file ($KVBITS_MODEL or the default models/ path;
// skipped when absent).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "io/gguf.h"
#include "model/synthetic_model.h"
#include "model_test_util.h"

namespace kvbits {
namespace {

using kvbits::testing::model_available;
using kvbits::testing::model_path;

TEST(GgufModel, OpensRealFileWithConsistentOffsets) {
  if (!model_available()) GTEST_SKIP() << "no model at " << model_path() << " (set KVBITS_MODEL)";
  const std::string path = model_path();
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata_count(), 33u);
  ASSERT_EQ(f.tensors().size(), 272u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_uint("llama.block_count"), 30u);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 49152u);
  EXPECT_EQ(f.get_int_array("tokenizer.ggml.token_type").size(), 49152u);
  for (size_t i = 0; i < f.metadata_count(); ++i) {
    EXPECT_FALSE(f.format_value(f.metadata_value(i)).empty());
  }

  // Tensors tile the data section: in offset order each starts at the previous end rounded up
  // to the alignment, and the last ends within the file.
  std::vector<const GgufTensor*> by_offset;
  for (const GgufTensor& t : f.tensors()) {
    EXPECT_TRUE(tensor_type_info(t.type_id)->supported) << t.name;
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  uint64_t expected = f.data_offset();
  for (const GgufTensor* t : by_offset) {
    EXPECT_EQ(t->offset, expected) << t->name;
    expected = (t->offset + t->n_bytes + f.alignment() - 1) / f.alignment() * f.alignment();
  }
  EXPECT_LE(by_offset.back()->offset + by_offset.back()->n_bytes, f.file_size());
}

// The synthetic 135m model has exactly the real file's tensor names, shapes and (for the
// default types) tensor types, and can copy its tokenizer.
TEST(GgufModel, Synthetic135mMatchesRealLayout) {
  if (!model_available()) GTEST_SKIP() << "no model at " << model_path() << " (set KVBITS_MODEL)";
  const std::string path = model_path();
  const GgufFile real = GgufFile::open(path);
  const auto out = std::filesystem::temp_directory_path() /
                   ("kvbits-synthetic-135m-" + std::to_string(::getpid()) + ".gguf");
  SyntheticModelOptions o;
  o.shape = "135m";
  o.tokenizer_from = path;
  write_synthetic_model(o, out.string());
  {
    const GgufFile syn = GgufFile::open(out.string());
    EXPECT_EQ(syn.tensors().size(), real.tensors().size());
    for (const GgufTensor& t : real.tensors()) {
      const GgufTensor* s = syn.find_tensor(t.name);
      ASSERT_NE(s, nullptr) << t.name;
      EXPECT_EQ(s->shape, t.shape) << t.name;
      EXPECT_EQ(s->type_id, t.type_id) << t.name;
    }
    for (size_t i = 0; i < real.metadata_count(); ++i) {
      const std::string_view key = real.metadata_key(i);
      if (!key.starts_with("llama.") && !key.starts_with("tokenizer.")) continue;
      const GgufValue* v = syn.find(key);
      ASSERT_NE(v, nullptr) << key;
      const auto a = real.metadata_value(i).encoded(), b = v->encoded();
      EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << key;
    }
  }
  std::filesystem::remove(out);
}

}  // namespace
}  // namespace kvbits
