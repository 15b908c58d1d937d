// GGUF file parser. Layout (little-endian):
//   "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count x  (string key | u32 value_type | value)
//   tensor_count x  (string name | u32 n_dims | n_dims x u64 ne | u32 type | u64 offset)
//   padding to `general.alignment` | tensor data (offsets relative to this point)
// where a string is u64 length + bytes. Values: see GgufValueDecoder (gguf_value.cc).
#include "io/gguf.h"

#include <unordered_map>
#include <utility>

#include "io/byte_reader.h"
#include "io/gguf_value_decoder.h"
#include "io/mapped_file.h"

namespace kvbits {

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;
// Smallest possible encodings, used to reject counts that cannot fit before reserving memory:
// a KV is key length (8) + type (4) + a 1-byte value; a tensor info is name length (8) + n_dims
// (4) + one dim (8) + type (4) + offset (8).
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;

std::string quoted(std::string_view name) { return "'" + printable_name(name) + "'"; }

}  // namespace

struct GgufFile::Impl {
  std::string name;                // display name for errors
  MappedFile map;                  // owns the bytes for open(); empty for parse()
  std::span<const uint8_t> bytes;  // the whole file image
  uint32_t version = 0;
  uint64_t alignment = kDefaultAlignment;
  uint64_t data_offset = 0;

  std::vector<std::string_view> keys;  // views into `bytes`, file order
  std::vector<GgufValue> values;       // parallel to keys
  std::unordered_map<std::string_view, size_t> key_index;
  std::vector<GgufTensor> tensors;                            // file order
  std::unordered_map<std::string_view, size_t> tensor_index;  // keys view into `bytes`

  [[noreturn]] void fail(const std::string& problem) const { throw Error(name + ": " + problem); }
  void parse();
  void parse_tensor_info(ByteReader& r);
  void check_tensor_data(GgufTensor& t);
  const GgufValue& require(std::string_view key) const;
  [[noreturn]] void wrong_type(std::string_view key, const GgufValue& v,
                               const char* expected) const;
};

void GgufFile::Impl::parse() {
  ByteReader r(bytes, name);
  if (bytes.size() < 4 || r.u32("magic") != kGgufMagic) fail("not a GGUF file (bad magic)");
  version = r.u32("version");
  if (version != 2 && version != 3) {
    std::string hint;
    if (version == 1) hint = " (GGUF v1 is obsolete; re-convert the model)";
    if (version > 3 && (version & 0xffff) == 0) hint = " (big-endian file?)";
    fail("unsupported GGUF version " + std::to_string(version) + hint +
         "; kvbits reads versions 2 and 3");
  }
  const uint64_t tensor_count = r.u64("tensor count");
  const uint64_t kv_count = r.u64("metadata count");
  r.require_items(kv_count, kMinKvBytes, "metadata");
  r.require_items(tensor_count, kMinTensorInfoBytes, "tensor");

  keys.reserve(kv_count);
  values.reserve(kv_count);
  key_index.reserve(kv_count);
  for (uint64_t i = 0; i < kv_count; ++i) {
    const std::string_view key = r.str("metadata key");
    const std::string ctx = "metadata key " + quoted(key);
    const uint32_t type = r.u32(ctx);
    if (!GgufValueDecoder::valid_type(type)) {
      fail(ctx + " has unknown value type " + std::to_string(type));
    }
    GgufValue v = GgufValueDecoder::read(r, static_cast<GgufValueType>(type), ctx);
    if (!key_index.emplace(key, keys.size()).second) fail("duplicate " + ctx);
    keys.push_back(key);
    values.push_back(v);
  }

  if (const auto it = key_index.find("general.alignment"); it != key_index.end()) {
    const GgufValue& v = values[it->second];
    if (v.type() != GgufValueType::UINT32) wrong_type("general.alignment", v, "UINT32");
    alignment = *v.to_uint();
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
      fail("general.alignment " + std::to_string(alignment) + " is not a power of two");
    }
  }

  r.require_items(tensor_count, kMinTensorInfoBytes, "tensor");
  tensors.reserve(tensor_count);
  tensor_index.reserve(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) parse_tensor_info(r);

  // Data section: header end rounded up to the alignment (alignment <= 2^31, no overflow).
  data_offset = (r.pos() + alignment - 1) / alignment * alignment;
  for (GgufTensor& t : tensors) check_tensor_data(t);
}

void GgufFile::Impl::parse_tensor_info(ByteReader& r) {
  GgufTensor t;
  const std::string_view tname = r.str("tensor name");
  const std::string ctx = "tensor " + quoted(tname);
  if (!tensor_index.emplace(tname, tensors.size()).second) fail("duplicate " + ctx);
  t.name = std::string(tname);
  const uint32_t n_dims = r.u32(ctx);
  if (n_dims == 0 || n_dims > kMaxDims) {
    fail(ctx + " has " + std::to_string(n_dims) + " dimensions (expected 1 to 4)");
  }
  t.shape.resize(n_dims);
  t.n_elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t ne = r.u64(ctx);
    if (ne == 0) fail(ctx + " has a zero dimension (ne[" + std::to_string(d) + "] = 0)");
    // ggml indexes with int64: keep every count below 2^63.
    if (ne > static_cast<uint64_t>(INT64_MAX) / t.n_elements) {
      fail(ctx + " element count overflows");
    }
    t.shape[d] = ne;
    t.n_elements *= ne;
  }
  t.type_id = r.u32(ctx);
  const uint64_t rel_offset = r.u64(ctx);

  const auto info = tensor_type_info(t.type_id);
  if (!info) fail(ctx + " has unknown type id " + std::to_string(t.type_id));
  if (t.shape[0] % info->block_elems != 0) {
    fail(ctx + " row length " + std::to_string(t.shape[0]) + " is not a multiple of the " +
         std::string(info->name) + " block size " + std::to_string(info->block_elems));
  }
  if (__builtin_mul_overflow(t.n_elements / info->block_elems, uint64_t{info->block_bytes},
                             &t.n_bytes)) {
    fail(ctx + " byte size overflows");
  }
  if (rel_offset % alignment != 0) {
    fail(ctx + " offset " + std::to_string(rel_offset) + " is not a multiple of the alignment " +
         std::to_string(alignment));
  }
  t.offset = rel_offset;  // made absolute in check_tensor_data once data_offset is known
  tensors.push_back(std::move(t));
}

void GgufFile::Impl::check_tensor_data(GgufTensor& t) {
  const uint64_t size = bytes.size();
  uint64_t abs = 0, end = 0;
  if (__builtin_add_overflow(data_offset, t.offset, &abs) ||
      __builtin_add_overflow(abs, t.n_bytes, &end) || end > size) {
    fail("tensor " + quoted(t.name) + " data runs past end of file (offset " +
         std::to_string(t.offset) + " in data section at " + std::to_string(data_offset) +
         ", size " + std::to_string(t.n_bytes) + ", file size " + std::to_string(size) + ")");
  }
  t.offset = abs;
  t.data = bytes.data() + abs;
}

const GgufValue& GgufFile::Impl::require(std::string_view key) const {
  const auto it = key_index.find(key);
  if (it == key_index.end()) fail("metadata key " + quoted(key) + " is missing");
  return values[it->second];
}

void GgufFile::Impl::wrong_type(std::string_view key, const GgufValue& v,
                                const char* expected) const {
  fail("metadata key " + quoted(key) + " has type " + v.type_description() + ", expected " +
       expected);
}

uint64_t GgufTensor::rows() const {
  uint64_t r = 1;
  for (size_t i = 1; i < shape.size(); ++i) r *= shape[i];
  return r;
}

// ---- GgufFile --------------------------------------------------------------------------------

GgufFile::GgufFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

GgufFile GgufFile::open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->name = path;
  impl->map = MappedFile::open(path);
  impl->bytes = impl->map.bytes();
  impl->parse();
  return GgufFile(std::move(impl));
}

GgufFile GgufFile::parse(std::span<const uint8_t> bytes, std::string display_name) {
  auto impl = std::make_unique<Impl>();
  impl->name = std::move(display_name);
  impl->bytes = bytes;
  impl->parse();
  return GgufFile(std::move(impl));
}

uint32_t GgufFile::version() const { return impl_->version; }
const std::string& GgufFile::path() const { return impl_->name; }
uint64_t GgufFile::file_size() const { return impl_->bytes.size(); }
uint64_t GgufFile::alignment() const { return impl_->alignment; }
uint64_t GgufFile::data_offset() const { return impl_->data_offset; }

size_t GgufFile::metadata_count() const { return impl_->keys.size(); }
std::string_view GgufFile::metadata_key(size_t i) const { return impl_->keys.at(i); }
const GgufValue& GgufFile::metadata_value(size_t i) const { return impl_->values.at(i); }

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = impl_->key_index.find(key);
  return it == impl_->key_index.end() ? nullptr : &impl_->values[it->second];
}

uint64_t GgufFile::get_uint(std::string_view key) const {
  const GgufValue& v = impl_->require(key);
  if (!v.is_integer()) impl_->wrong_type(key, v, "an integer");
  const auto x = v.to_uint();
  if (!x) impl_->fail("metadata key " + quoted(key) + " is negative, expected an unsigned integer");
  return *x;
}

int64_t GgufFile::get_int(std::string_view key) const {
  const GgufValue& v = impl_->require(key);
  if (!v.is_integer()) impl_->wrong_type(key, v, "an integer");
  const auto x = v.to_int();
  if (!x) impl_->fail("metadata key " + quoted(key) + " does not fit a signed 64-bit integer");
  return *x;
}

double GgufFile::get_float(std::string_view key) const {
  const GgufValue& v = impl_->require(key);
  if (!v.is_float()) impl_->wrong_type(key, v, "a float");
  return *v.to_float();
}

bool GgufFile::get_bool(std::string_view key) const {
  const GgufValue& v = impl_->require(key);
  if (v.type() != GgufValueType::BOOL) impl_->wrong_type(key, v, "a bool");
  return *v.to_bool();
}

std::string_view GgufFile::get_string(std::string_view key) const {
  const GgufValue& v = impl_->require(key);
  if (v.type() != GgufValueType::STRING) impl_->wrong_type(key, v, "a string");
  return *v.to_string();
}

std::vector<std::string_view> GgufFile::get_string_array(std::string_view key) const {
  const GgufValue& v = impl_->require(key);
  if (!v.is_array() || v.array_type() != GgufValueType::STRING) {
    impl_->wrong_type(key, v, "an array of strings");
  }
  // Walk the validated encoding directly: no GgufValue per element (vocabularies are ~50k).
  std::vector<std::string_view> out;
  out.reserve(v.array_size());
  ByteReader r(v.encoded().subspan(12), impl_->name);
  for (uint64_t i = 0; i < v.array_size(); ++i) out.push_back(r.str("string array element"));
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue& v = impl_->require(key);
  if (!v.is_array()) impl_->wrong_type(key, v, "an array of integers");
  std::vector<int64_t> out;
  out.reserve(v.array_size());
  for (const GgufValue& e : v.elements()) {
    if (!e.is_integer()) impl_->wrong_type(key, v, "an array of integers");
    const auto x = e.to_int();
    if (!x) impl_->fail("metadata key " + quoted(key) + " has an element above 2^63-1");
    out.push_back(*x);
  }
  return out;
}

std::vector<double> GgufFile::get_float_array(std::string_view key) const {
  const GgufValue& v = impl_->require(key);
  if (!v.is_array() ||
      (v.array_type() != GgufValueType::FLOAT32 && v.array_type() != GgufValueType::FLOAT64)) {
    impl_->wrong_type(key, v, "an array of floats");
  }
  std::vector<double> out;
  out.reserve(v.array_size());
  for (const GgufValue& e : v.elements()) out.push_back(*e.to_float());
  return out;
}

uint64_t GgufFile::get_uint_or(std::string_view key, uint64_t fallback) const {
  return has(key) ? get_uint(key) : fallback;
}

double GgufFile::get_float_or(std::string_view key, double fallback) const {
  return has(key) ? get_float(key) : fallback;
}

bool GgufFile::get_bool_or(std::string_view key, bool fallback) const {
  return has(key) ? get_bool(key) : fallback;
}

std::optional<std::string_view> GgufFile::get_string_opt(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_string(key);
}

const std::vector<GgufTensor>& GgufFile::tensors() const { return impl_->tensors; }

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  const auto it = impl_->tensor_index.find(name);
  return it == impl_->tensor_index.end() ? nullptr : &impl_->tensors[it->second];
}

const GgufTensor& GgufFile::tensor(std::string_view name) const {
  const GgufTensor* t = find_tensor(name);
  if (t == nullptr) impl_->fail("tensor " + quoted(name) + " is missing");
  return *t;
}

std::string GgufFile::format_value(const GgufValue& v, size_t max_items) const {
  return format_gguf_value(v, max_items);
}

}  // namespace kvbits
