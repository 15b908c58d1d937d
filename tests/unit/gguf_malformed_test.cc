// Malformed GGUF inputs: each must raise kvbits::Error with a one-line message (never crash,
// hang, or throw bad_alloc). Files are built valid with GgufWriter and then patched byte-wise.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "gguf_test_util.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "util/error.h"

namespace kvbits {
namespace {

using kvbits::testing::after_gguf_string;
using kvbits::testing::patch;
using kvbits::testing::put;
using kvbits::testing::put_str;

constexpr auto kQ8_0 = static_cast<uint32_t>(TensorType::Q8_0);
constexpr auto kF32 = static_cast<uint32_t>(TensorType::F32);

// A small valid file: a few keys of several types and three tensors.
GgufWriter valid_writer() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("key.aa", 7);
  w.set_u32("key.bb", 8);
  w.set_array<float>("key.floats", std::vector<float>{1, 2, 3});
  w.set_string_array("key.strings", std::vector<std::string>{"x", "yy"});
  w.add_tensor("tensor.a", kF32, {4, 2}, std::vector<uint8_t>(32, 1));
  w.add_tensor("tensor.b", kQ8_0, {64}, std::vector<uint8_t>(68, 2));
  w.add_tensor("tensor.c", kF32, {3}, std::vector<uint8_t>(12, 3));
  return w;
}

std::vector<uint8_t> valid_image() { return valid_writer().to_bytes(); }

// Parses `image` expecting an Error whose message starts with the display name and contains
// `substring`, is one line, and names nothing past the message.
void expect_error(const std::vector<uint8_t>& image, const std::string& substring) {
  try {
    GgufFile::parse(image, "bad.gguf");
    ADD_FAILURE() << "no error; expected '" << substring << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("bad.gguf: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(substring), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(GgufMalformed, ValidBaselineParses) {
  const auto image = valid_image();
  const GgufFile f = GgufFile::parse(image, "ok.gguf");
  EXPECT_EQ(f.tensors().size(), 3u);
}

TEST(GgufMalformed, WrongMagic) {
  auto image = valid_image();
  image[0] = 'X';
  expect_error(image, "bad magic");
  expect_error({}, "bad magic");
  expect_error({'G', 'G'}, "bad magic");
}

TEST(GgufMalformed, UnsupportedVersions) {
  for (uint32_t v : {0u, 1u, 4u, 0x03000000u, 0xffffffffu}) {
    auto image = valid_image();
    patch<uint32_t>(image, 4, v);
    expect_error(image, "unsupported GGUF version " + std::to_string(v));
  }
}

// Every prefix shorter than the end of the last tensor's data must fail; longer prefixes only
// lose padding and stay valid.
TEST(GgufMalformed, TruncatedAtEveryLength) {
  const auto image = valid_image();
  const GgufFile full = GgufFile::parse(image, "full");
  const GgufTensor& last = full.tensors().back();
  const size_t data_end = last.offset + last.n_bytes;
  for (size_t n = 0; n < image.size(); ++n) {
    const std::vector<uint8_t> prefix(image.begin(), image.begin() + n);
    if (n < data_end) {
      EXPECT_THROW(GgufFile::parse(prefix, "cut"), Error) << "prefix " << n;
    } else {
      EXPECT_NO_THROW(GgufFile::parse(prefix, "cut")) << "prefix " << n;
    }
  }
}

TEST(GgufMalformed, HugeCounts) {
  auto image = valid_image();
  patch<uint64_t>(image, 16, uint64_t{1} << 60);  // kv_count
  expect_error(image, "metadata count");
  image = valid_image();
  patch<uint64_t>(image, 8, uint64_t{1} << 60);  // tensor_count
  expect_error(image, "tensor count");
  image = valid_image();
  patch<uint64_t>(image, 8, ~uint64_t{0});
  expect_error(image, "tensor count");
}

TEST(GgufMalformed, HugeStringAndArrayLengths) {
  // Key length: the first key's u64 length is at offset 24.
  auto image = valid_image();
  patch<uint64_t>(image, 24, uint64_t{1} << 62);
  expect_error(image, "truncated file");
  // String value length (general.architecture = "llama"): after the key comes type, then length.
  image = valid_image();
  patch<uint64_t>(image, after_gguf_string(image, "general.architecture") + 4, ~uint64_t{0});
  expect_error(image, "metadata key 'general.architecture'");
  // Float array length: after key, type (4) and element type (4).
  image = valid_image();
  patch<uint64_t>(image, after_gguf_string(image, "key.floats") + 8, uint64_t{1} << 62);
  expect_error(image, "metadata key 'key.floats' array count");
  // String array length.
  image = valid_image();
  patch<uint64_t>(image, after_gguf_string(image, "key.strings") + 8, uint64_t{1} << 62);
  expect_error(image, "metadata key 'key.strings' array count");
  // A string inside the array with a huge length.
  image = valid_image();
  patch<uint64_t>(image, after_gguf_string(image, "key.strings") + 16, uint64_t{1} << 62);
  expect_error(image, "truncated file");
  // Tensor name length.
  image = valid_image();
  patch<uint64_t>(image, after_gguf_string(image, "tensor.b") - 8 - 8, ~uint64_t{0});
  expect_error(image, "truncated file");
}

TEST(GgufMalformed, HugeNestedArray) {
  // Array of 2^62 arrays: rejected from the count alone, before any allocation or loop.
  std::vector<uint8_t> e;
  put<uint32_t>(e, static_cast<uint32_t>(GgufValueType::ARRAY));
  put<uint64_t>(e, uint64_t{1} << 62);
  GgufWriter w;
  w.set_raw("nested", GgufValueType::ARRAY, e);
  expect_error(w.to_bytes(), "array count");
}

TEST(GgufMalformed, TooDeeplyNestedArray) {
  std::vector<uint8_t> e;
  for (int i = 0; i < 100; ++i) {
    put<uint32_t>(e, static_cast<uint32_t>(GgufValueType::ARRAY));
    put<uint64_t>(e, 1);
  }
  put<uint32_t>(e, static_cast<uint32_t>(GgufValueType::UINT8));
  put<uint64_t>(e, 0);
  GgufWriter w;
  w.set_raw("deep", GgufValueType::ARRAY, e);
  expect_error(w.to_bytes(), "nests arrays deeper");
}

TEST(GgufMalformed, UnknownValueTypes) {
  auto image = valid_image();
  patch<uint32_t>(image, after_gguf_string(image, "key.aa"), 13);
  expect_error(image, "metadata key 'key.aa' has unknown value type 13");
  image = valid_image();
  patch<uint32_t>(image, after_gguf_string(image, "key.floats") + 4, 77);
  expect_error(image, "unknown array element type 77");
}

TEST(GgufMalformed, BadAlignment) {
  for (uint32_t a : {0u, 3u, 48u}) {
    GgufWriter w = valid_writer();
    w.set_u32("general.alignment", a);
    expect_error(w.to_bytes(), "is not a power of two");
  }
  GgufWriter w = valid_writer();
  w.set_u64("general.alignment", 32);
  expect_error(w.to_bytes(), "'general.alignment' has type UINT64, expected UINT32");
}

TEST(GgufMalformed, DuplicateKey) {
  auto image = valid_image();
  const size_t at = after_gguf_string(image, "key.bb");
  image[at - 1] = 'a';
  image[at - 2] = 'a';  // "key.bb" -> "key.aa"
  expect_error(image, "duplicate metadata key 'key.aa'");
}

TEST(GgufMalformed, DuplicateTensor) {
  auto image = valid_image();
  image[after_gguf_string(image, "tensor.c") - 1] = 'a';
  expect_error(image, "duplicate tensor 'tensor.a'");
}

TEST(GgufMalformed, BadDimensionCount) {
  for (uint32_t n : {0u, 5u, 1000u}) {
    auto image = valid_image();
    patch<uint32_t>(image, after_gguf_string(image, "tensor.b"), n);
    expect_error(image, "tensor 'tensor.b' has " + std::to_string(n) + " dimensions");
  }
}

TEST(GgufMalformed, ZeroDimension) {
  auto image = valid_image();
  patch<uint64_t>(image, after_gguf_string(image, "tensor.a") + 4 + 8, 0);  // ne[1]
  expect_error(image, "tensor 'tensor.a' has a zero dimension");
}

TEST(GgufMalformed, ElementCountOverflow) {
  auto image = valid_image();
  const size_t dims = after_gguf_string(image, "tensor.a") + 4;
  patch<uint64_t>(image, dims, uint64_t{1} << 32);
  patch<uint64_t>(image, dims + 8, uint64_t{1} << 32);
  expect_error(image, "tensor 'tensor.a' element count overflows");
}

TEST(GgufMalformed, UnknownTensorType) {
  for (uint32_t t : {4u, 17u, 31u, 0xffffffffu}) {
    auto image = valid_image();
    patch<uint32_t>(image, after_gguf_string(image, "tensor.c") + 4 + 8, t);
    expect_error(image, "tensor 'tensor.c' has unknown type id " + std::to_string(t));
  }
}

TEST(GgufMalformed, RowNotWholeBlocks) {
  auto image = valid_image();
  patch<uint64_t>(image, after_gguf_string(image, "tensor.b") + 4, 48);  // Q8_0 needs 32k
  expect_error(image, "tensor 'tensor.b' row length 48 is not a multiple of the Q8_0 block size");
}

TEST(GgufMalformed, TensorOutOfBounds) {
  // Offset past the end.
  auto image = valid_image();
  const size_t c_offset = after_gguf_string(image, "tensor.c") + 4 + 8 + 4;
  patch<uint64_t>(image, c_offset, 1 << 20);
  expect_error(image, "tensor 'tensor.c' data runs past end of file");
  // Offset + size wrapping around 2^64.
  image = valid_image();
  patch<uint64_t>(image, c_offset, ~uint64_t{31});
  expect_error(image, "tensor 'tensor.c' data runs past end of file");
  // A shape too big for the file.
  image = valid_image();
  patch<uint64_t>(image, after_gguf_string(image, "tensor.a") + 4 + 8, 1000);
  expect_error(image, "tensor 'tensor.a' data runs past end of file");
}

TEST(GgufMalformed, MisalignedOffset) {
  auto image = valid_image();
  patch<uint64_t>(image, after_gguf_string(image, "tensor.c") + 4 + 8 + 4, 16);
  expect_error(image, "tensor 'tensor.c' offset 16 is not a multiple of the alignment 32");
}

TEST(GgufMalformed, ControlBytesInNamesStayOneLine) {
  auto image = valid_image();
  const size_t at = after_gguf_string(image, "key.bb");
  image[at - 1] = 0x01;
  patch<uint32_t>(image, at, 200);  // unknown type -> message quotes the key, escaped
  expect_error(image, "metadata key 'key.b\\x01' has unknown value type 200");
}

// Deterministic random corruption: whatever happens, only kvbits::Error may come out.
TEST(GgufMalformed, RandomByteFlips) {
  const auto base = valid_image();
  std::mt19937_64 rng(12345);
  int errors = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    auto image = base;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      // Mostly hit the header and tables, where the structure lives.
      const size_t limit = rng() % 4 == 0 ? image.size() : 200;
      image[rng() % limit] = static_cast<uint8_t>(rng());
    }
    try {
      const GgufFile f = GgufFile::parse(image, "fuzz");
      for (size_t i = 0; i < f.metadata_count(); ++i) f.format_value(f.metadata_value(i));
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 100);
}

}  // namespace
}  // namespace kvbits
