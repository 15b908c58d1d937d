// GGUF reader/writer round trips: every value type, tensors and alignment, getters, formatting.
// Malformed-input tests are in gguf_malformed_test.cc.
#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "gguf_test_util.h"
#include "io/gguf_writer.h"
#include "util/error.h"

namespace kvbits {
namespace {

using kvbits::testing::put;
using kvbits::testing::put_str;
using kvbits::testing::TempDir;

// Encoded array of arrays of u32: [[1, 2], [], [3]] (GgufValue::encoded() layout).
std::vector<uint8_t> nested_u32_array() {
  std::vector<uint8_t> e;
  put<uint32_t>(e, static_cast<uint32_t>(GgufValueType::ARRAY));
  put<uint64_t>(e, 3);
  const std::vector<std::vector<uint32_t>> rows = {{1, 2}, {}, {3}};
  for (const auto& row : rows) {
    put<uint32_t>(e, static_cast<uint32_t>(GgufValueType::UINT32));
    put<uint64_t>(e, row.size());
    for (uint32_t x : row) put<uint32_t>(e, x);
  }
  return e;
}

GgufWriter all_types_writer() {
  GgufWriter w;
  w.set_u8("t.u8", 255);
  w.set_i8("t.i8", -128);
  w.set_u16("t.u16", 65535);
  w.set_i16("t.i16", -32768);
  w.set_u32("t.u32", 4000000000u);
  w.set_i32("t.i32", -2000000000);
  w.set_u64("t.u64", std::numeric_limits<uint64_t>::max());
  w.set_i64("t.i64", std::numeric_limits<int64_t>::min());
  w.set_f32("t.f32", 1e-5f);
  w.set_f64("t.f64", 0.1);
  w.set_bool("t.bool", true);
  w.set_bool("t.false", false);
  w.set_string("t.str", std::string("h\xffi\0\"\n", 6));  // not UTF-8, embedded NUL
  w.set_string("t.empty", "");
  w.set_array<uint8_t>("a.u8", std::vector<uint8_t>{0, 1, 255});
  w.set_array<int8_t>("a.i8", std::vector<int8_t>{-1, 2});
  w.set_array<uint16_t>("a.u16", std::vector<uint16_t>{7});
  w.set_array<int16_t>("a.i16", std::vector<int16_t>{-7, 7});
  w.set_array<uint32_t>("a.u32", std::vector<uint32_t>{1, 2, 3});
  w.set_array<int32_t>("a.i32", std::vector<int32_t>{-3, 0, 3});
  w.set_array<uint64_t>("a.u64", std::vector<uint64_t>{1ull << 40});
  w.set_array<int64_t>("a.i64", std::vector<int64_t>{-(1ll << 40)});
  w.set_array<float>("a.f32", std::vector<float>{0.5f, -1.25f});
  w.set_array<double>("a.f64", std::vector<double>{3.5});
  w.set_bool_array("a.bool", {true, false, true});
  w.set_string_array("a.str", std::vector<std::string>{"a", "", "ccc"});
  w.set_array<uint32_t>("a.empty", std::vector<uint32_t>{});
  const auto nested = nested_u32_array();
  w.set_raw("a.nested", GgufValueType::ARRAY, nested);
  return w;
}

TEST(GgufRoundTrip, EveryValueType) {
  const std::vector<uint8_t> image = all_types_writer().to_bytes();
  const GgufFile f = GgufFile::parse(image, "mem.gguf");
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata_count(), 28u);
  EXPECT_EQ(f.metadata_key(0), "t.u8");
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset() % 32, 0u);
  EXPECT_TRUE(f.tensors().empty());

  EXPECT_EQ(f.get_uint("t.u8"), 255u);
  EXPECT_EQ(f.get_int("t.i8"), -128);
  EXPECT_EQ(f.get_uint("t.u16"), 65535u);
  EXPECT_EQ(f.get_int("t.i16"), -32768);
  EXPECT_EQ(f.get_uint("t.u32"), 4000000000u);
  EXPECT_EQ(f.get_int("t.u32"), 4000000000);
  EXPECT_EQ(f.get_int("t.i32"), -2000000000);
  EXPECT_EQ(f.get_uint("t.u64"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f.get_int("t.i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f.get_float("t.f32"), static_cast<double>(1e-5f));
  EXPECT_EQ(f.get_float("t.f64"), 0.1);
  EXPECT_TRUE(f.get_bool("t.bool"));
  EXPECT_FALSE(f.get_bool("t.false"));
  EXPECT_EQ(f.get_string("t.str"), std::string_view("h\xffi\0\"\n", 6));
  EXPECT_EQ(f.get_string("t.empty"), "");

  EXPECT_EQ(f.get_int_array("a.u8"), (std::vector<int64_t>{0, 1, 255}));
  EXPECT_EQ(f.get_int_array("a.i8"), (std::vector<int64_t>{-1, 2}));
  EXPECT_EQ(f.get_int_array("a.u16"), (std::vector<int64_t>{7}));
  EXPECT_EQ(f.get_int_array("a.i16"), (std::vector<int64_t>{-7, 7}));
  EXPECT_EQ(f.get_int_array("a.u32"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(f.get_int_array("a.i32"), (std::vector<int64_t>{-3, 0, 3}));
  EXPECT_EQ(f.get_int_array("a.u64"), (std::vector<int64_t>{1ll << 40}));
  EXPECT_EQ(f.get_int_array("a.i64"), (std::vector<int64_t>{-(1ll << 40)}));
  EXPECT_EQ(f.get_float_array("a.f32"), (std::vector<double>{0.5, -1.25}));
  EXPECT_EQ(f.get_float_array("a.f64"), (std::vector<double>{3.5}));
  EXPECT_EQ(f.get_string_array("a.str"), (std::vector<std::string_view>{"a", "", "ccc"}));
  EXPECT_TRUE(f.get_int_array("a.empty").empty());

  const GgufValue& b = *f.find("a.bool");
  ASSERT_EQ(b.type(), GgufValueType::ARRAY);
  EXPECT_EQ(b.array_type(), GgufValueType::BOOL);
  ASSERT_EQ(b.array_size(), 3u);
  EXPECT_EQ(b.array_data().size(), 3u);
  EXPECT_TRUE(*b.elements()[0].to_bool());
  EXPECT_FALSE(*b.elements()[1].to_bool());

  const GgufValue& f32s = *f.find("a.f32");
  EXPECT_EQ(f32s.array_data().size(), 8u);
  EXPECT_EQ(f32s.type_description(), "ARRAY[FLOAT32]");

  const GgufValue& nested = *f.find("a.nested");
  EXPECT_EQ(nested.array_type(), GgufValueType::ARRAY);
  EXPECT_TRUE(nested.array_data().empty());
  const auto rows = nested.elements();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].array_size(), 2u);
  EXPECT_EQ(rows[1].array_size(), 0u);
  EXPECT_EQ(*rows[2].elements()[0].to_uint(), 3u);
  EXPECT_EQ(f.format_value(nested), "[[1, 2], [], [3]]");

  // encoded() round-trips: copying every value into a new writer gives the same image.
  GgufWriter copy;
  for (size_t i = 0; i < f.metadata_count(); ++i) {
    copy.copy_value(f.metadata_key(i), f.metadata_value(i));
  }
  EXPECT_EQ(copy.to_bytes(), image);
}

TEST(GgufRoundTrip, ConversionsAndGetterErrors) {
  const std::vector<uint8_t> image = all_types_writer().to_bytes();
  const GgufFile f = GgufFile::parse(image, "model.gguf");
  EXPECT_FALSE(f.find("t.i8")->to_uint().has_value());  // negative
  EXPECT_FALSE(f.find("t.u64")->to_int().has_value());  // above INT64_MAX
  EXPECT_FALSE(f.find("t.str")->to_uint().has_value());
  EXPECT_FALSE(f.find("t.u8")->to_float().has_value());
  EXPECT_EQ(f.find("missing"), nullptr);
  EXPECT_FALSE(f.has("missing"));

  auto message = [](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(message([&] { f.get_uint("llama.block_count"); }),
            "model.gguf: metadata key 'llama.block_count' is missing");
  EXPECT_EQ(message([&] { f.get_uint("t.str"); }),
            "model.gguf: metadata key 't.str' has type STRING, expected an integer");
  EXPECT_EQ(message([&] { f.get_string("a.str"); }),
            "model.gguf: metadata key 'a.str' has type ARRAY[STRING], expected a string");
  EXPECT_NE(message([&] { f.get_uint("t.i8"); }).find("negative"), std::string::npos);
  EXPECT_THROW(f.get_int("t.u64"), Error);
  EXPECT_THROW(f.get_float("t.u32"), Error);
  EXPECT_THROW(f.get_bool("t.u8"), Error);
  EXPECT_THROW(f.get_string_array("a.u32"), Error);
  EXPECT_THROW(f.get_int_array("a.f32"), Error);
  EXPECT_THROW(f.get_int_array("t.u32"), Error);
  EXPECT_THROW(f.get_float_array("a.i32"), Error);
  EXPECT_THROW(f.get_int_array("a.nested"), Error);
  EXPECT_THROW(f.tensor("nope"), Error);

  EXPECT_EQ(f.get_uint_or("missing", 7), 7u);
  EXPECT_EQ(f.get_uint_or("t.u16", 7), 65535u);
  EXPECT_EQ(f.get_float_or("missing", 2.5), 2.5);
  EXPECT_TRUE(f.get_bool_or("missing", true));
  EXPECT_FALSE(f.get_string_opt("missing").has_value());
  EXPECT_EQ(*f.get_string_opt("t.empty"), "");
  EXPECT_THROW(f.get_uint_or("t.str", 7), Error);  // present with the wrong type still throws
}

TEST(GgufRoundTrip, FormatValue) {
  GgufWriter w;
  w.set_u32("u", 42);
  w.set_i16("i", -5);
  w.set_f32("f", 1e-5f);
  w.set_f64("d", 130000.0);
  w.set_bool("b", false);
  w.set_string("s", "a\"b\\c\nd\x01");
  w.set_string("long", std::string(200, 'x'));
  std::vector<int32_t> many(100);
  for (int i = 0; i < 100; ++i) many[i] = i;
  w.set_array<int32_t>("many", many);
  w.set_string_array("few", std::vector<std::string>{"x", "y"});
  w.set_array<float>("none", std::vector<float>{});
  const auto image = w.to_bytes();
  const GgufFile f = GgufFile::parse(image, "mem");
  EXPECT_EQ(f.format_value(*f.find("u")), "42");
  EXPECT_EQ(f.format_value(*f.find("i")), "-5");
  EXPECT_EQ(f.format_value(*f.find("f")), "1e-05");
  EXPECT_EQ(f.format_value(*f.find("d")), "130000");
  EXPECT_EQ(f.format_value(*f.find("b")), "false");
  EXPECT_EQ(f.format_value(*f.find("s")), "\"a\\\"b\\\\c\\nd\\x01\"");
  EXPECT_EQ(f.format_value(*f.find("long")), "\"" + std::string(80, 'x') + "...\"");
  EXPECT_EQ(f.format_value(*f.find("many"), 3), "[0, 1, 2, ... (100 items)]");
  EXPECT_EQ(f.format_value(*f.find("many"), 0), "[... (100 items)]");
  EXPECT_EQ(f.format_value(*f.find("few")), "[\"x\", \"y\"]");
  EXPECT_EQ(f.format_value(*f.find("none")), "[]");
  EXPECT_EQ(format_gguf_value(GgufValue()), "?");  // default value: no bytes, no crash
}

TEST(GgufRoundTrip, WriterReplacesAndRemovesKeys) {
  GgufWriter w;
  w.set_u32("a", 1);
  w.set_string("b", "x");
  w.set_u32("a", 2);  // replaces in place, keeps order
  EXPECT_TRUE(w.has("b"));
  w.remove("b");
  EXPECT_FALSE(w.has("b"));
  const auto image = w.to_bytes();
  const GgufFile f = GgufFile::parse(image, "mem");
  ASSERT_EQ(f.metadata_count(), 1u);
  EXPECT_EQ(f.get_uint("a"), 2u);
}

// Bytes 0, 1, 2, ... for a tensor of `n` bytes.
std::vector<uint8_t> pattern(size_t n, uint8_t start) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(start + i);
  return v;
}

void check_tensors(uint32_t alignment) {
  GgufWriter w;
  w.set_alignment(alignment);
  w.set_string("general.architecture", "llama");
  const auto a = pattern(3 * 4, 1);           // F32 [3]
  const auto b = pattern(2 * 3 * 34, 2);      // Q8_0 [64, 3]: 2 blocks per row
  const auto c = pattern(5 * 2, 3);           // F16 [5]
  const auto d = pattern(2 * 2 * 2 * 20, 4);  // Q4_1 [32, 2, 2, 2]
  w.add_tensor("a", static_cast<uint32_t>(TensorType::F32), {3}, a);
  w.add_tensor("b.weight", static_cast<uint32_t>(TensorType::Q8_0), {64, 3}, b);
  w.add_tensor("c", static_cast<uint32_t>(TensorType::F16), {5}, c);
  w.add_tensor("d", static_cast<uint32_t>(TensorType::Q4_1), {32, 2, 2, 2},
               [&](std::span<uint8_t> out) {
                 ASSERT_EQ(out.size(), d.size());
                 std::copy(d.begin(), d.end(), out.begin());
               });
  EXPECT_EQ(w.tensor_count(), 4u);

  TempDir dir;
  const std::string path = dir.file("t.gguf");
  w.write(path);
  GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.alignment(), alignment);
  EXPECT_EQ(f.has("general.alignment"), alignment != 32);
  EXPECT_EQ(f.data_offset() % alignment, 0u);

  const auto image = w.to_bytes();
  EXPECT_EQ(f.file_size(), image.size());
  EXPECT_EQ(image.size() % alignment, 0u);  // every tensor, the last one too, is padded

  ASSERT_EQ(f.tensors().size(), 4u);
  const std::vector<std::vector<uint8_t>> data = {a, b, c, d};
  for (size_t i = 0; i < 4; ++i) {
    const GgufTensor& t = f.tensors()[i];
    EXPECT_EQ(t.offset % alignment, 0u) << t.name;
    EXPECT_GE(t.offset, f.data_offset());
    EXPECT_EQ(t.n_bytes, data[i].size()) << t.name;
    EXPECT_EQ(std::vector<uint8_t>(t.bytes().begin(), t.bytes().end()), data[i]) << t.name;
    EXPECT_EQ(&f.tensor(t.name), &t);
  }
  const GgufTensor& tb = f.tensor("b.weight");
  EXPECT_EQ(tb.type_id, static_cast<uint32_t>(TensorType::Q8_0));
  EXPECT_EQ(tb.shape, (std::vector<uint64_t>{64, 3}));
  EXPECT_EQ(tb.n_elements, 192u);
  EXPECT_EQ(tb.rows(), 3u);
  EXPECT_EQ(f.tensor("a").rows(), 1u);
  EXPECT_EQ(f.tensor("d").rows(), 8u);
  EXPECT_EQ(f.find_tensor("e"), nullptr);

  // Move keeps views valid.
  GgufFile moved = std::move(f);
  EXPECT_EQ(moved.tensor("c").data[0], 3);
}

TEST(GgufTensors, DefaultAlignment) { check_tensors(32); }
TEST(GgufTensors, CustomAlignment) { check_tensors(64); }
TEST(GgufTensors, SmallAlignment) { check_tensors(8); }

TEST(GgufWriterErrors, RejectsBadTensorsAndPaths) {
  GgufWriter w;
  const auto q8 = static_cast<uint32_t>(TensorType::Q8_0);
  EXPECT_THROW(w.set_alignment(0), Error);
  EXPECT_THROW(w.set_alignment(48), Error);
  EXPECT_THROW(w.add_tensor("x", q8, {33}, std::vector<uint8_t>(34)), Error);  // not whole blocks
  EXPECT_THROW(w.add_tensor("x", q8, {32}, std::vector<uint8_t>(33)), Error);  // wrong size
  EXPECT_THROW(w.add_tensor("x", 99, {32}, std::vector<uint8_t>(34)), Error);  // unknown type
  EXPECT_THROW(w.add_tensor("x", q8, {}, std::vector<uint8_t>()), Error);
  EXPECT_THROW(w.add_tensor("x", q8, {32, 1, 1, 1, 1}, std::vector<uint8_t>(34)), Error);
  EXPECT_THROW(w.add_tensor("x", q8, {32, 0}, std::vector<uint8_t>()), Error);
  EXPECT_EQ(w.tensor_count(), 0u);
  w.add_tensor("x", q8, {32}, std::vector<uint8_t>(34));
  EXPECT_THROW(w.add_tensor("x", q8, {32}, std::vector<uint8_t>(34)), Error);  // duplicate
  EXPECT_THROW(w.write("/nonexistent-dir-kvbits/x.gguf"), Error);
  TempDir dir;
  EXPECT_THROW(w.write(dir.file("")), Error);  // a directory
}

TEST(GgufOpen, FileErrors) {
  TempDir dir;
  EXPECT_THROW(GgufFile::open(dir.file("missing.gguf")), Error);
  EXPECT_THROW(GgufFile::open(dir.file("")), Error);  // a directory
  const std::string empty = dir.file("empty.gguf");
  std::ofstream(empty).close();
  try {
    GgufFile::open(empty);
    FAIL() << "empty file accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(empty + ": ", 0), 0u) << e.what();
  }
}

TEST(GgufOpen, ReadsVersion2) {
  auto image = all_types_writer().to_bytes();
  kvbits::testing::patch<uint32_t>(image, 4, 2);
  EXPECT_EQ(GgufFile::parse(image, "v2").version(), 2u);
}

}  // namespace
}  // namespace kvbits
