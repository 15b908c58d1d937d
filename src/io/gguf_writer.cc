#include "io/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <type_traits>
#include <utility>

#include "io/tensor_type.h"
#include "util/error.h"

namespace kvbits {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kGgufVersion = 3;

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  static_assert(std::is_trivially_copyable_v<T>);
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.insert(out.end(), b, b + sizeof(T));
}

void put_str(std::vector<uint8_t>& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

// GGUF element type for a C++ scalar type.
template <typename T>
constexpr GgufValueType value_type_of() {
  if constexpr (std::is_same_v<T, uint8_t>) return GgufValueType::UINT8;
  if constexpr (std::is_same_v<T, int8_t>) return GgufValueType::INT8;
  if constexpr (std::is_same_v<T, uint16_t>) return GgufValueType::UINT16;
  if constexpr (std::is_same_v<T, int16_t>) return GgufValueType::INT16;
  if constexpr (std::is_same_v<T, uint32_t>) return GgufValueType::UINT32;
  if constexpr (std::is_same_v<T, int32_t>) return GgufValueType::INT32;
  if constexpr (std::is_same_v<T, uint64_t>) return GgufValueType::UINT64;
  if constexpr (std::is_same_v<T, int64_t>) return GgufValueType::INT64;
  if constexpr (std::is_same_v<T, float>) return GgufValueType::FLOAT32;
  if constexpr (std::is_same_v<T, double>) return GgufValueType::FLOAT64;
}

template <typename T>
std::vector<uint8_t> scalar_bytes(T v) {
  std::vector<uint8_t> out;
  put(out, v);
  return out;
}

std::vector<uint8_t> array_header(GgufValueType elem, uint64_t count) {
  std::vector<uint8_t> out;
  put<uint32_t>(out, static_cast<uint32_t>(elem));
  put<uint64_t>(out, count);
  return out;
}

uint64_t pad_to(uint64_t n, uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

[[noreturn]] void writer_fail(const std::string& problem) { throw Error("GgufWriter: " + problem); }

// Closes a FILE* on scope exit (write() closes it explicitly to check for errors).
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

void GgufWriter::set_alignment(uint32_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    writer_fail("alignment " + std::to_string(alignment) + " is not a power of two");
  }
  alignment_ = alignment;
  if (alignment != 32) {
    set_u32("general.alignment", alignment);
  } else {
    remove("general.alignment");
  }
}

void GgufWriter::set_encoded(std::string_view key, GgufValueType type,
                             std::vector<uint8_t> encoded) {
  for (Kv& kv : kvs_) {
    if (kv.key == key) {
      kv.type = type;
      kv.encoded = std::move(encoded);
      return;
    }
  }
  kvs_.push_back(Kv{std::string(key), type, std::move(encoded)});
}

void GgufWriter::set_u8(std::string_view k, uint8_t v) {
  set_encoded(k, GgufValueType::UINT8, scalar_bytes(v));
}
void GgufWriter::set_i8(std::string_view k, int8_t v) {
  set_encoded(k, GgufValueType::INT8, scalar_bytes(v));
}
void GgufWriter::set_u16(std::string_view k, uint16_t v) {
  set_encoded(k, GgufValueType::UINT16, scalar_bytes(v));
}
void GgufWriter::set_i16(std::string_view k, int16_t v) {
  set_encoded(k, GgufValueType::INT16, scalar_bytes(v));
}
void GgufWriter::set_u32(std::string_view k, uint32_t v) {
  set_encoded(k, GgufValueType::UINT32, scalar_bytes(v));
}
void GgufWriter::set_i32(std::string_view k, int32_t v) {
  set_encoded(k, GgufValueType::INT32, scalar_bytes(v));
}
void GgufWriter::set_u64(std::string_view k, uint64_t v) {
  set_encoded(k, GgufValueType::UINT64, scalar_bytes(v));
}
void GgufWriter::set_i64(std::string_view k, int64_t v) {
  set_encoded(k, GgufValueType::INT64, scalar_bytes(v));
}
void GgufWriter::set_f32(std::string_view k, float v) {
  set_encoded(k, GgufValueType::FLOAT32, scalar_bytes(v));
}
void GgufWriter::set_f64(std::string_view k, double v) {
  set_encoded(k, GgufValueType::FLOAT64, scalar_bytes(v));
}
void GgufWriter::set_bool(std::string_view k, bool v) {
  set_encoded(k, GgufValueType::BOOL, scalar_bytes<uint8_t>(v ? 1 : 0));
}
void GgufWriter::set_string(std::string_view k, std::string_view v) {
  std::vector<uint8_t> out;
  put_str(out, v);
  set_encoded(k, GgufValueType::STRING, std::move(out));
}

template <typename T>
void GgufWriter::set_array(std::string_view key, std::span<const T> values) {
  std::vector<uint8_t> out = array_header(value_type_of<T>(), values.size());
  out.reserve(out.size() + values.size_bytes());
  for (const T& v : values) put(out, v);
  set_encoded(key, GgufValueType::ARRAY, std::move(out));
}

template void GgufWriter::set_array<uint8_t>(std::string_view, std::span<const uint8_t>);
template void GgufWriter::set_array<int8_t>(std::string_view, std::span<const int8_t>);
template void GgufWriter::set_array<uint16_t>(std::string_view, std::span<const uint16_t>);
template void GgufWriter::set_array<int16_t>(std::string_view, std::span<const int16_t>);
template void GgufWriter::set_array<uint32_t>(std::string_view, std::span<const uint32_t>);
template void GgufWriter::set_array<int32_t>(std::string_view, std::span<const int32_t>);
template void GgufWriter::set_array<uint64_t>(std::string_view, std::span<const uint64_t>);
template void GgufWriter::set_array<int64_t>(std::string_view, std::span<const int64_t>);
template void GgufWriter::set_array<float>(std::string_view, std::span<const float>);
template void GgufWriter::set_array<double>(std::string_view, std::span<const double>);

void GgufWriter::set_bool_array(std::string_view key, const std::vector<bool>& values) {
  std::vector<uint8_t> out = array_header(GgufValueType::BOOL, values.size());
  for (bool b : values) out.push_back(b ? 1 : 0);
  set_encoded(key, GgufValueType::ARRAY, std::move(out));
}

void GgufWriter::set_string_array(std::string_view key, std::span<const std::string> values) {
  std::vector<uint8_t> out = array_header(GgufValueType::STRING, values.size());
  for (const std::string& s : values) put_str(out, s);
  set_encoded(key, GgufValueType::ARRAY, std::move(out));
}

void GgufWriter::set_string_array(std::string_view key, std::span<const std::string_view> values) {
  std::vector<uint8_t> out = array_header(GgufValueType::STRING, values.size());
  for (std::string_view s : values) put_str(out, s);
  set_encoded(key, GgufValueType::ARRAY, std::move(out));
}

void GgufWriter::set_raw(std::string_view key, GgufValueType type,
                         std::span<const uint8_t> encoded) {
  set_encoded(key, type, std::vector<uint8_t>(encoded.begin(), encoded.end()));
}

bool GgufWriter::has(std::string_view key) const {
  for (const Kv& kv : kvs_) {
    if (kv.key == key) return true;
  }
  return false;
}

void GgufWriter::remove(std::string_view key) {
  std::erase_if(kvs_, [&](const Kv& kv) { return kv.key == key; });
}

GgufWriter::Tensor& GgufWriter::new_tensor(std::string_view name, uint32_t type_id,
                                           std::vector<uint64_t> shape) {
  const std::string ctx = "tensor '" + std::string(name) + "'";
  for (const Tensor& t : tensors_) {
    if (t.name == name) writer_fail("duplicate " + ctx);
  }
  const auto info = tensor_type_info(type_id);
  if (!info) writer_fail(ctx + " has unknown type id " + std::to_string(type_id));
  if (shape.empty() || shape.size() > 4) writer_fail(ctx + " needs 1 to 4 dimensions");
  uint64_t n = 1;
  for (uint64_t ne : shape) {
    if (ne == 0 || ne > static_cast<uint64_t>(INT64_MAX) / n) writer_fail(ctx + " has a bad shape");
    n *= ne;
  }
  if (shape[0] % info->block_elems != 0) {
    writer_fail(ctx + " row length is not a multiple of the " + std::string(info->name) +
                " block size");
  }
  tensors_.push_back(Tensor{std::string(name),
                            type_id,
                            std::move(shape),
                            n / info->block_elems * info->block_bytes,
                            {},
                            {}});
  return tensors_.back();
}

void GgufWriter::add_tensor(std::string_view name, uint32_t type_id, std::vector<uint64_t> shape,
                            std::span<const uint8_t> data) {
  Tensor& t = new_tensor(name, type_id, std::move(shape));
  if (data.size() != t.n_bytes) {
    const std::string msg = "tensor '" + t.name + "' needs " + std::to_string(t.n_bytes) +
                            " bytes, got " + std::to_string(data.size());
    tensors_.pop_back();
    writer_fail(msg);
  }
  t.data.assign(data.begin(), data.end());
}

void GgufWriter::add_tensor(std::string_view name, uint32_t type_id, std::vector<uint64_t> shape,
                            Filler fill) {
  if (!fill) writer_fail("tensor '" + std::string(name) + "' has no fill function");
  new_tensor(name, type_id, std::move(shape)).fill = std::move(fill);
}

std::vector<uint8_t> GgufWriter::header_bytes() const {
  std::vector<uint8_t> out;
  put<uint32_t>(out, kGgufMagic);
  put<uint32_t>(out, kGgufVersion);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, kvs_.size());
  for (const Kv& kv : kvs_) {
    put_str(out, kv.key);
    put<uint32_t>(out, static_cast<uint32_t>(kv.type));
    out.insert(out.end(), kv.encoded.begin(), kv.encoded.end());
  }
  uint64_t offset = 0;  // relative to the data section
  for (const Tensor& t : tensors_) {
    put_str(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.shape.size()));
    for (uint64_t ne : t.shape) put<uint64_t>(out, ne);
    put<uint32_t>(out, t.type_id);
    put<uint64_t>(out, offset);
    offset += pad_to(t.n_bytes, alignment_);
  }
  out.resize(pad_to(out.size(), alignment_), 0);
  return out;
}

void GgufWriter::emit(const std::function<void(std::span<const uint8_t>)>& sink) const {
  sink(header_bytes());
  const std::vector<uint8_t> zeros(alignment_, 0);
  std::vector<uint8_t> buf;  // one streaming tensor at a time
  for (const Tensor& t : tensors_) {
    if (t.fill) {
      buf.assign(t.n_bytes, 0);
      t.fill(buf);
      sink(buf);
    } else {
      sink(t.data);
    }
    const uint64_t pad = pad_to(t.n_bytes, alignment_) - t.n_bytes;
    sink(std::span<const uint8_t>(zeros).first(pad));
  }
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  std::vector<uint8_t> out;
  emit([&](std::span<const uint8_t> b) { out.insert(out.end(), b.begin(), b.end()); });
  return out;
}

void GgufWriter::write(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(tmp.c_str(), "wb"));
  if (!f) throw Error(path + ": cannot write: " + std::strerror(errno));
  int err = 0;  // errno of the first failed write, 0 while all is well
  try {
    emit([&](std::span<const uint8_t> b) {
      if (err == 0 && !b.empty() && std::fwrite(b.data(), 1, b.size(), f.get()) != b.size()) {
        err = errno ? errno : EIO;
      }
    });
  } catch (...) {
    f.reset();
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f.release()) != 0 && err == 0) err = errno ? errno : EIO;
  if (err != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": write failed: " + std::strerror(err));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot write: " + ec.message());
  }
}

}  // namespace kvbits
