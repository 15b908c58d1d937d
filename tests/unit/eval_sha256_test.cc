#include "eval/sha256.h"

#include <gtest/gtest.h>

#include "eval_test_util.h"

namespace kvbits::eval {
namespace {

TEST(EvalSha256, NistVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(EvalSha256, ChunkingDoesNotMatter) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 7 + 3);
  const std::string whole = sha256_hex(data);
  for (size_t step : {1, 3, 55, 56, 63, 64, 65, 200}) {
    Sha256 h;
    for (size_t i = 0; i < data.size(); i += step) h.update(data.data() + i, std::min(step, data.size() - i));
    const auto d = h.finish();
    std::string hex;
    for (uint8_t b : d) hex += "0123456789abcdef"[b >> 4], hex += "0123456789abcdef"[b & 15];
    EXPECT_EQ(hex, whole) << step;
  }
}

TEST(EvalSha256, Files) {
  testing::TempDir dir;
  EXPECT_EQ(sha256_file(testing::write_file(dir / "abc", "abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_THROW(sha256_file(dir / "missing"), Error);
  EXPECT_THROW(sha256_file(dir.path()), Error);
  // A real multi-megabyte file against its published checksum (../shared/data/SHA256SUMS).
  const auto hs = testing::shared_data_dir() / "hellaswag_val_full.txt";
  if (std::filesystem::exists(hs)) {
    EXPECT_EQ(sha256_file(hs), "d572539320eb2050e858ca34b495bbe2103e3b3f1391a9c3bcdf215b0bb93bd1");
  }
}

}  // namespace
}  // namespace kvbits::eval
