// Writes a small seed corpus for gguf_fuzz into the directory given as argv[1]: a file with every
// metadata value type, files with tensors at several alignments, a v2 header and the tiny
// synthetic model. Generated at fuzz time so no binaries are committed.
#include <cstdio>
#include <string>
#include <vector>

#include "io/gguf_writer.h"
#include "model/synthetic_model.h"
#include "util/error.h"

namespace {

using kvbits::GgufValueType;
using kvbits::GgufWriter;
using kvbits::TensorType;

GgufWriter all_types() {
  GgufWriter w;
  w.set_u8("u8", 1);
  w.set_i8("i8", -1);
  w.set_u16("u16", 2);
  w.set_i16("i16", -2);
  w.set_u32("u32", 3);
  w.set_i32("i32", -3);
  w.set_u64("u64", 4);
  w.set_i64("i64", -4);
  w.set_f32("f32", 0.5f);
  w.set_f64("f64", 0.25);
  w.set_bool("bool", true);
  w.set_string("str", "llama");
  w.set_array<int32_t>("a.i32", std::vector<int32_t>{1, 2, 3});
  w.set_array<float>("a.f32", std::vector<float>{1.5f});
  w.set_bool_array("a.bool", {true, false});
  w.set_string_array("a.str", std::vector<std::string>{"a", "bc"});
  // [[7], []]: an array of arrays.
  const std::vector<uint8_t> nested = {9, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,  // ARRAY x2
                                       4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0,
                                       0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  w.set_raw("a.nested", GgufValueType::ARRAY, nested);
  return w;
}

GgufWriter with_tensors(uint32_t alignment) {
  GgufWriter w;
  w.set_alignment(alignment);
  w.set_string("general.architecture", "llama");
  w.add_tensor("a.weight", static_cast<uint32_t>(TensorType::F32), {4, 2},
               std::vector<uint8_t>(32, 1));
  w.add_tensor("b.weight", static_cast<uint32_t>(TensorType::Q8_0), {32, 2},
               std::vector<uint8_t>(68, 2));
  w.add_tensor("c.weight", static_cast<uint32_t>(TensorType::Q4_1), {32},
               std::vector<uint8_t>(20, 3));
  w.add_tensor("d.weight", static_cast<uint32_t>(TensorType::F16), {2, 1, 1, 3},
               std::vector<uint8_t>(12, 4));
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  try {
    all_types().write(dir + "/seed-all-types.gguf");
    with_tensors(32).write(dir + "/seed-tensors-32.gguf");
    with_tensors(8).write(dir + "/seed-tensors-8.gguf");
    with_tensors(64).write(dir + "/seed-tensors-64.gguf");
    GgufWriter empty;
    empty.write(dir + "/seed-empty.gguf");
    auto v2 = with_tensors(32).to_bytes();
    v2[4] = 2;  // same layout, version 2
    if (std::FILE* f = std::fopen((dir + "/seed-v2.gguf").c_str(), "wb")) {
      std::fwrite(v2.data(), 1, v2.size(), f);
      std::fclose(f);
    }
    kvbits::write_synthetic_model(kvbits::SyntheticModelOptions{}, dir + "/seed-tiny-model.gguf");
  } catch (const kvbits::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
