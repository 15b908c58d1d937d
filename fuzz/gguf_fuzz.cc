// libFuzzer target: the GGUF parser on arbitrary bytes. Only kvbits::Error may escape parse();
// a parsed file's every metadata value and tensor must then be usable without faults.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "io/gguf.h"
#include "util/error.h"

namespace {

// Exercises the accessors of one value; returns something derived so nothing is optimised out.
size_t touch(const kvbits::GgufFile& f, std::string_view key, const kvbits::GgufValue& v) {
  size_t sink = f.format_value(v, 4).size();
  sink += v.to_uint().value_or(0) + static_cast<size_t>(v.to_int().value_or(0));
  sink += v.to_string().value_or("").size() + v.to_bool().value_or(false);
  sink += static_cast<size_t>(v.to_float().value_or(0.0) != 0.0);
  if (v.is_array()) {
    sink += v.array_data().size();
    // elements() allocates one GgufValue per element; bounded by the input size anyway.
    for (const kvbits::GgufValue& e : v.elements()) sink += f.format_value(e, 2).size();
  }
  // The typed getters must either succeed or throw Error.
  try {
    sink += f.get_uint(key);
  } catch (const kvbits::Error&) {
  }
  try {
    sink += f.get_string(key).size();
  } catch (const kvbits::Error&) {
  }
  try {
    sink += f.get_string_array(key).size();
  } catch (const kvbits::Error&) {
  }
  try {
    sink += f.get_int_array(key).size();
  } catch (const kvbits::Error&) {
  }
  try {
    sink += f.get_float_array(key).size();
  } catch (const kvbits::Error&) {
  }
  return sink;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const kvbits::GgufFile f =
        kvbits::GgufFile::parse(std::span<const uint8_t>(data, size), "fuzz");
    volatile size_t sink = 0;
    for (size_t i = 0; i < f.metadata_count(); ++i) {
      sink = sink + touch(f, f.metadata_key(i), f.metadata_value(i));
    }
    for (const kvbits::GgufTensor& t : f.tensors()) {
      // The parser promised the data lies inside the input; check it, then read both ends so
      // ASan would flag any lie.
      if (t.data < data || t.offset + t.n_bytes > size || t.data != data + t.offset)
        __builtin_trap();
      if (f.find_tensor(t.name) != &t) __builtin_trap();
      sink = sink + t.rows() + t.data[0] + t.data[t.n_bytes - 1];
    }
  } catch (const kvbits::Error&) {
    // Malformed input, reported properly.
  }
  return 0;
}
