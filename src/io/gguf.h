#pragma once
// GGUF (v2, v3) reader: memory-maps a model file and exposes its metadata and tensor table.
//
// Every offset, count and size read from the file is bounds-checked against the file size before
// use; a malformed or truncated file raises kvbits::Error with one line naming the file and the
// problem. Nothing here trusts the file.
//
// Ownership: GgufFile owns the mapping. Strings, arrays and tensor data returned by it are views
// into the mapping and stay valid as long as the GgufFile lives (it is move-only).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/tensor_type.h"

namespace kvbits {

enum class GgufValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

std::string_view gguf_value_type_name(GgufValueType t);

// Size in bytes of one encoded value of a fixed-size type (1..8); 0 for STRING and ARRAY, whose
// encodings have variable length. Throws nothing; unknown ids also give 0.
uint64_t gguf_scalar_size(GgufValueType t);

// One metadata value: a small copyable view into the file image (valid while its GgufFile lives).
// It keeps the value's type and its encoded bytes; scalars, strings and arrays are decoded on
// demand. Arrays keep their element type and count; nested arrays are allowed. Values obtained
// from a parsed GgufFile have been fully validated, so decoding them cannot fail.
class GgufValue {
 public:
  GgufValue() = default;

  GgufValueType type() const { return type_; }
  // For ARRAY: element type and count. For other types array_type() returns type() and
  // array_size() returns 0.
  GgufValueType array_type() const { return type_ == GgufValueType::ARRAY ? elem_type_ : type_; }
  uint64_t array_size() const { return type_ == GgufValueType::ARRAY ? count_ : 0; }

  bool is_integer() const;  // UINT8..INT64 (not BOOL)
  bool is_float() const;    // FLOAT32 or FLOAT64
  bool is_array() const { return type_ == GgufValueType::ARRAY; }

  // Checked scalar conversions, std::nullopt when the type does not match or the value does not
  // fit: to_uint/to_int accept any integer type whose value fits; to_float accepts FLOAT32 and
  // FLOAT64; to_bool only BOOL (any nonzero byte is true); to_string only STRING (raw bytes, not
  // necessarily UTF-8). GgufFile's get_* wrap these with error messages naming file and key.
  std::optional<uint64_t> to_uint() const;
  std::optional<int64_t> to_int() const;
  std::optional<double> to_float() const;
  std::optional<bool> to_bool() const;
  std::optional<std::string_view> to_string() const;

  // ARRAY: the decoded elements in order (empty for non-arrays). O(array_size()) and allocates;
  // for big fixed-size arrays prefer array_data().
  std::vector<GgufValue> elements() const;
  // ARRAY of a fixed-size type: the packed little-endian elements (array_size() * element size
  // bytes). Empty for other values.
  std::span<const uint8_t> array_data() const;

  // The value's encoding as stored in the file, without its u32 type tag: a scalar's bytes, a
  // string's u64 length + bytes, an array's u32 element type + u64 count + elements. Lets a writer
  // copy a value verbatim (see GgufWriter::set_raw).
  std::span<const uint8_t> encoded() const { return encoded_; }

  // Short type description for messages: "UINT32", "STRING", "ARRAY[INT32]".
  std::string type_description() const;

 private:
  friend struct GgufValueDecoder;
  GgufValueType type_ = GgufValueType::UINT8;
  GgufValueType elem_type_ = GgufValueType::UINT8;  // ARRAY only
  uint64_t count_ = 0;                              // ARRAY only
  std::span<const uint8_t> encoded_;                // view into the file image
};

// Renders a value for humans (`kvbits inspect`): numbers plainly, bools as true/false, strings
// quoted with C escapes and cut after max_string_bytes ("..." appended), arrays as
// "[a, b, ... (N items)]" showing at most max_items elements.
std::string format_gguf_value(const GgufValue& v, size_t max_items = 8,
                              size_t max_string_bytes = 80);

struct GgufTensor {
  std::string name;
  uint32_t type_id = 0;  // ggml type id (see TensorType); may be one kvbits lacks kernels for
  std::vector<uint64_t> shape;  // ne[0] first: ne[0] is the contiguous row length
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;           // size of the data in the file
  uint64_t offset = 0;            // absolute byte offset of the data in the file
  const uint8_t* data = nullptr;  // view into the mapping
  uint64_t rows() const;          // product of shape[1..], 1 for vectors
  std::span<const uint8_t> bytes() const { return {data, static_cast<size_t>(n_bytes)}; }
};

class GgufFile {
 public:
  // Opens and maps `path`. Throws Error("<path>: <problem>") on any malformed input.
  static GgufFile open(const std::string& path);
  // Parses an in-memory image (for fuzzing and tests). `bytes` must outlive the result.
  static GgufFile parse(std::span<const uint8_t> bytes, std::string display_name);

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
  ~GgufFile();

  uint32_t version() const;
  const std::string& path() const;  // display name used in errors
  uint64_t file_size() const;
  uint64_t alignment() const;    // general.alignment or 32
  uint64_t data_offset() const;  // start of the tensor data section

  // Metadata, in file order.
  size_t metadata_count() const;
  std::string_view metadata_key(size_t i) const;
  const GgufValue& metadata_value(size_t i) const;
  const GgufValue* find(std::string_view key) const;  // nullptr if absent
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed getters. Missing key or wrong type -> Error naming file and key.
  // Integer getters accept any integer type whose value fits.
  uint64_t get_uint(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;  // FLOAT32 or FLOAT64
  bool get_bool(std::string_view key) const;
  std::string_view get_string(std::string_view key) const;
  std::vector<std::string_view> get_string_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;
  std::vector<double> get_float_array(std::string_view key) const;
  // Same, with a default when the key is absent (wrong type still throws).
  uint64_t get_uint_or(std::string_view key, uint64_t fallback) const;
  double get_float_or(std::string_view key, double fallback) const;
  bool get_bool_or(std::string_view key, bool fallback) const;
  std::optional<std::string_view> get_string_opt(std::string_view key) const;

  // Tensors, in file order.
  const std::vector<GgufTensor>& tensors() const;
  const GgufTensor* find_tensor(std::string_view name) const;  // nullptr if absent
  const GgufTensor& tensor(std::string_view name) const;       // Error if absent

  // Human-readable rendering of a value for `kvbits inspect` (arrays truncated to max_items).
  // Same as format_gguf_value(v, max_items).
  std::string format_value(const GgufValue& v, size_t max_items = 8) const;

 private:
  struct Impl;
  explicit GgufFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvbits
