// GgufValue decoding and formatting (the file-level parser is in gguf.cc).
#include <charconv>
#include <cstring>
#include <limits>
#include <string>

#include "io/gguf.h"
#include "io/gguf_value_decoder.h"

namespace kvbits {
namespace {

template <typename T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Shortest round-trip text for a float/double ("0.02", "1e-05", "100000").
template <typename T>
std::string float_text(T x) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  return std::string(buf, res.ptr);
}

void append_escaped(std::string& out, std::string_view s, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t n = s.size() < max_bytes ? s.size() : max_bytes;
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        // Bytes >= 0x80 are kept so UTF-8 text stays readable; other control bytes are escaped.
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  if (s.size() > max_bytes) out += "...";
}

}  // namespace

std::string_view gguf_value_type_name(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: return "UINT8";
    case GgufValueType::INT8: return "INT8";
    case GgufValueType::UINT16: return "UINT16";
    case GgufValueType::INT16: return "INT16";
    case GgufValueType::UINT32: return "UINT32";
    case GgufValueType::INT32: return "INT32";
    case GgufValueType::FLOAT32: return "FLOAT32";
    case GgufValueType::BOOL: return "BOOL";
    case GgufValueType::STRING: return "STRING";
    case GgufValueType::ARRAY: return "ARRAY";
    case GgufValueType::UINT64: return "UINT64";
    case GgufValueType::INT64: return "INT64";
    case GgufValueType::FLOAT64: return "FLOAT64";
  }
  return "UNKNOWN";
}

uint64_t gguf_scalar_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8:
    case GgufValueType::INT8:
    case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16:
    case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32:
    case GgufValueType::INT32:
    case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64:
    case GgufValueType::INT64:
    case GgufValueType::FLOAT64: return 8;
    case GgufValueType::STRING:
    case GgufValueType::ARRAY: return 0;
  }
  return 0;
}

std::string printable_name(std::string_view s, size_t max_bytes) {
  std::string out;
  append_escaped(out, s, max_bytes);
  return out;
}

GgufValue GgufValueDecoder::read(ByteReader& r, GgufValueType type, std::string_view ctx,
                                 int depth) {
  GgufValue v;
  v.type_ = type;
  const uint64_t start = r.pos();
  if (type == GgufValueType::STRING) {
    r.str(ctx);
  } else if (type == GgufValueType::ARRAY) {
    if (depth >= kMaxArrayDepth) {
      throw Error(r.name() + ": " + std::string(ctx) + " nests arrays deeper than " +
                  std::to_string(kMaxArrayDepth) + " levels");
    }
    const uint32_t elem = r.u32(ctx);
    if (!valid_type(elem)) {
      throw Error(r.name() + ": " + std::string(ctx) + " has unknown array element type " +
                  std::to_string(elem));
    }
    v.elem_type_ = static_cast<GgufValueType>(elem);
    v.count_ = r.u64(ctx);
    const uint64_t size = gguf_scalar_size(v.elem_type_);
    if (size != 0) {
      r.require_items(v.count_, size, std::string(ctx) + " array");
      r.skip(v.count_ * size, ctx);
    } else {
      // Smallest encodings: a string is its u64 length, an array its u32 type + u64 count.
      const uint64_t min_size = v.elem_type_ == GgufValueType::STRING ? 8 : 12;
      r.require_items(v.count_, min_size, std::string(ctx) + " array");
      for (uint64_t i = 0; i < v.count_; ++i) read(r, v.elem_type_, ctx, depth + 1);
    }
  } else if (valid_type(static_cast<uint32_t>(type))) {
    r.skip(gguf_scalar_size(type), ctx);
  } else {
    throw Error(r.name() + ": " + std::string(ctx) + " has unknown value type " +
                std::to_string(static_cast<uint32_t>(type)));
  }
  v.encoded_ = r.all().subspan(start, r.pos() - start);
  return v;
}

bool GgufValue::is_integer() const {
  switch (type_) {
    case GgufValueType::UINT8:
    case GgufValueType::INT8:
    case GgufValueType::UINT16:
    case GgufValueType::INT16:
    case GgufValueType::UINT32:
    case GgufValueType::INT32:
    case GgufValueType::UINT64:
    case GgufValueType::INT64: return true;
    default: return false;
  }
}

bool GgufValue::is_float() const {
  return type_ == GgufValueType::FLOAT32 || type_ == GgufValueType::FLOAT64;
}

std::optional<uint64_t> GgufValue::to_uint() const {
  if (!is_integer() || encoded_.size() < gguf_scalar_size(type_)) return std::nullopt;
  const uint8_t* p = encoded_.data();
  int64_t s = 0;  // signed value, for the signed types
  switch (type_) {
    case GgufValueType::UINT8: return p[0];
    case GgufValueType::UINT16: return load_le<uint16_t>(p);
    case GgufValueType::UINT32: return load_le<uint32_t>(p);
    case GgufValueType::UINT64: return load_le<uint64_t>(p);
    case GgufValueType::INT8: s = load_le<int8_t>(p); break;
    case GgufValueType::INT16: s = load_le<int16_t>(p); break;
    case GgufValueType::INT32: s = load_le<int32_t>(p); break;
    case GgufValueType::INT64: s = load_le<int64_t>(p); break;
    default: return std::nullopt;
  }
  if (s < 0) return std::nullopt;
  return static_cast<uint64_t>(s);
}

std::optional<int64_t> GgufValue::to_int() const {
  if (!is_integer() || encoded_.size() < gguf_scalar_size(type_)) return std::nullopt;
  const uint8_t* p = encoded_.data();
  switch (type_) {
    case GgufValueType::INT8: return load_le<int8_t>(p);
    case GgufValueType::INT16: return load_le<int16_t>(p);
    case GgufValueType::INT32: return load_le<int32_t>(p);
    case GgufValueType::INT64: return load_le<int64_t>(p);
    default: break;
  }
  const uint64_t u = *to_uint();
  if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return static_cast<int64_t>(u);
}

std::optional<double> GgufValue::to_float() const {
  if (encoded_.size() < gguf_scalar_size(type_)) return std::nullopt;
  if (type_ == GgufValueType::FLOAT32) return load_le<float>(encoded_.data());
  if (type_ == GgufValueType::FLOAT64) return load_le<double>(encoded_.data());
  return std::nullopt;
}

std::optional<bool> GgufValue::to_bool() const {
  if (type_ != GgufValueType::BOOL || encoded_.empty()) return std::nullopt;
  return encoded_[0] != 0;
}

std::optional<std::string_view> GgufValue::to_string() const {
  if (type_ != GgufValueType::STRING || encoded_.size() < 8) return std::nullopt;
  // encoded_ = u64 length + bytes, validated when the value was read.
  return std::string_view(reinterpret_cast<const char*>(encoded_.data()) + 8, encoded_.size() - 8);
}

std::vector<GgufValue> GgufValue::elements() const {
  std::vector<GgufValue> out;
  if (type_ != GgufValueType::ARRAY || encoded_.size() < 12) return out;
  // Re-walk the (already validated) encoding after the 12-byte array header.
  const std::string name = "<array>";
  ByteReader r(encoded_.subspan(12), name);
  out.reserve(count_);
  for (uint64_t i = 0; i < count_; ++i)
    out.push_back(GgufValueDecoder::read(r, elem_type_, "array element", 1));
  return out;
}

std::span<const uint8_t> GgufValue::array_data() const {
  if (type_ != GgufValueType::ARRAY || encoded_.size() < 12 || gguf_scalar_size(elem_type_) == 0) {
    return {};
  }
  return encoded_.subspan(12);
}

std::string GgufValue::type_description() const {
  std::string s(gguf_value_type_name(type_));
  if (type_ == GgufValueType::ARRAY) {
    s += "[";
    s += gguf_value_type_name(elem_type_);
    s += "]";
  }
  return s;
}

std::string format_gguf_value(const GgufValue& v, size_t max_items, size_t max_string_bytes) {
  // A default-constructed GgufValue has no bytes; everything from a parsed file does.
  const uint64_t min_size = v.type() == GgufValueType::ARRAY    ? 12
                            : v.type() == GgufValueType::STRING ? 8
                                                                : gguf_scalar_size(v.type());
  if (v.encoded().size() < min_size || min_size == 0) return "?";
  switch (v.type()) {
    case GgufValueType::BOOL: return *v.to_bool() ? "true" : "false";
    case GgufValueType::FLOAT32: return float_text(static_cast<float>(*v.to_float()));
    case GgufValueType::FLOAT64: return float_text(*v.to_float());
    case GgufValueType::STRING: {
      std::string out = "\"";
      append_escaped(out, *v.to_string(), max_string_bytes);
      out += "\"";
      return out;
    }
    case GgufValueType::ARRAY: {
      // Decode only the shown prefix: big arrays (49152 tokens) stay cheap to print.
      std::string out = "[";
      const std::string name = "<array>";
      ByteReader r(v.encoded().subspan(12), name);
      const uint64_t n = v.array_size();
      const uint64_t shown = n < max_items ? n : max_items;
      for (uint64_t i = 0; i < shown; ++i) {
        if (i) out += ", ";
        // Nested arrays and their strings are shown shorter so one line stays readable.
        const GgufValue e = GgufValueDecoder::read(r, v.array_type(), "array element", 1);
        out += format_gguf_value(e, max_items > 2 ? max_items / 2 : 1,
                                 max_string_bytes > 32 ? 32 : max_string_bytes);
      }
      if (shown < n) out += (shown ? ", ... (" : "... (") + std::to_string(n) + " items)";
      out += "]";
      return out;
    }
    default: break;
  }
  if (v.type() == GgufValueType::INT8 || v.type() == GgufValueType::INT16 ||
      v.type() == GgufValueType::INT32 || v.type() == GgufValueType::INT64) {
    return std::to_string(*v.to_int());
  }
  return std::to_string(*v.to_uint());
}

}  // namespace kvbits
