#pragma once
// GGUF v3 writer: collects metadata and tensors, then writes a complete file with ggml's layout
// (data section and every tensor aligned to `alignment`, zero padding).
//
// Used by tests (to build valid files, then corrupt them), by the fuzz seed generator and by the
// synthetic-model tool. Metadata keys keep the order of their first set_*; setting a key again
// replaces its value in place. Tensors keep the order of add_tensor.
//
// Ownership: the writer copies keys, values and eager tensor data. A streaming tensor's fill
// function is stored and called once per write()/to_bytes(), so it must stay callable and give
// the same bytes each time.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/gguf.h"

namespace kvbits {

class GgufWriter {
 public:
  // Fills `out` (exactly the tensor's byte size) with the tensor's encoded data.
  using Filler = std::function<void(std::span<uint8_t> out)>;

  GgufWriter() = default;

  // Alignment of the data section and of each tensor (a power of two). Values other than the
  // default 32 are recorded as `general.alignment` (UINT32), as readers expect.
  void set_alignment(uint32_t alignment);
  uint32_t alignment() const { return alignment_; }

  // Scalars.
  void set_u8(std::string_view key, uint8_t v);
  void set_i8(std::string_view key, int8_t v);
  void set_u16(std::string_view key, uint16_t v);
  void set_i16(std::string_view key, int16_t v);
  void set_u32(std::string_view key, uint32_t v);
  void set_i32(std::string_view key, int32_t v);
  void set_u64(std::string_view key, uint64_t v);
  void set_i64(std::string_view key, int64_t v);
  void set_f32(std::string_view key, float v);
  void set_f64(std::string_view key, double v);
  void set_bool(std::string_view key, bool v);
  void set_string(std::string_view key, std::string_view v);

  // Arrays of scalars: T is one of uint8_t..int64_t, float, double (element type from T).
  template <typename T>
  void set_array(std::string_view key, std::span<const T> values);
  template <typename T>
  void set_array(std::string_view key, const std::vector<T>& values) {
    set_array(key, std::span<const T>(values));
  }
  void set_bool_array(std::string_view key, const std::vector<bool>& values);
  void set_string_array(std::string_view key, std::span<const std::string> values);
  void set_string_array(std::string_view key, std::span<const std::string_view> values);

  // Any value given by its encoding (GgufValue::encoded() layout: no type tag). No validation:
  // nested arrays and deliberately malformed values for tests go through here.
  void set_raw(std::string_view key, GgufValueType type, std::span<const uint8_t> encoded);
  // Copies a value read from another file verbatim.
  void copy_value(std::string_view key, const GgufValue& v) { set_raw(key, v.type(), v.encoded()); }
  bool has(std::string_view key) const;
  void remove(std::string_view key);

  // Tensors. `shape` is ne[0] first (ne[0] = contiguous row length), 1 to 4 nonzero dims;
  // `type_id` a ggml type known to tensor_type_info; ne[0] a multiple of its block size. Throws
  // Error on a bad shape/type, a duplicate name, or (eager form) a data size that does not match.
  void add_tensor(std::string_view name, uint32_t type_id, std::vector<uint64_t> shape,
                  std::span<const uint8_t> data);
  void add_tensor(std::string_view name, uint32_t type_id, std::vector<uint64_t> shape,
                  Filler fill);
  size_t tensor_count() const { return tensors_.size(); }

  // Writes the file (via "<path>.tmp" + rename, so a failed write leaves no partial file).
  // Throws Error("<path>: <problem>") if it cannot be written.
  void write(const std::string& path) const;
  // The whole file image in memory (tests, fuzz seeds).
  std::vector<uint8_t> to_bytes() const;

 private:
  struct Kv {
    std::string key;
    GgufValueType type;
    std::vector<uint8_t> encoded;  // value bytes without the type tag
  };
  struct Tensor {
    std::string name;
    uint32_t type_id;
    std::vector<uint64_t> shape;
    uint64_t n_bytes;
    std::vector<uint8_t> data;  // eager tensors
    Filler fill;                // streaming tensors (data empty)
  };

  void set_encoded(std::string_view key, GgufValueType type, std::vector<uint8_t> encoded);
  Tensor& new_tensor(std::string_view name, uint32_t type_id, std::vector<uint64_t> shape);
  // Header, metadata, tensor infos and padding up to the data section.
  std::vector<uint8_t> header_bytes() const;
  // Calls sink(bytes) for each piece of the file in order, filling tensors one at a time.
  void emit(const std::function<void(std::span<const uint8_t>)>& sink) const;

  uint32_t alignment_ = 32;
  std::vector<Kv> kvs_;
  std::vector<Tensor> tensors_;
};

}  // namespace kvbits
