#include "ops/kv_page.h"

#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "util/error.h"
#include "util/half.h"

namespace kvbits {

namespace {

// Position of dim e of token t (within its tile) in the tile's code bytes, for b < 16.
struct CodeSlot {
  size_t byte;
  int shift;
};

CodeSlot k_code_slot(int bits, int e, int t) {
  const int per_chunk = 32 / bits;  // dims per 64-byte chunk
  const int c = e / per_chunk, j = e % per_chunk;
  return {static_cast<size_t>(c) * 64 + 4 * t + (j % 4), (j / 4) * bits};
}

CodeSlot v_code_slot(int bits, int e, int t) {
  const int planes = 8 / bits;
  const int k = e / 16, lane = e % 16;
  const int quad = t / 4, i = t % 4;
  const int z = quad / planes, j = quad % planes;
  return {static_cast<size_t>(k) * 32 * bits + z * 64 + lane * 4 + i, j * bits};
}

// Scale/minimum element `at` of an array of fp16 (size 2) or E5M2 high bytes (size 1).
void write_meta(uint8_t* base, size_t at, int size, uint16_t fp16_bits) {
  if (size == 1) {
    base[at] = static_cast<uint8_t>(fp16_bits >> 8);  // low byte is zero (kv_meta_round)
  } else {
    std::memcpy(base + 2 * at, &fp16_bits, 2);
  }
}

uint16_t read_meta(const uint8_t* base, size_t at, int size) {
  if (size == 1) return static_cast<uint16_t>(base[at] << 8);
  uint16_t v;
  std::memcpy(&v, base + 2 * at, 2);
  return v;
}

}  // namespace

KvPageLayout::KvPageLayout(KvRowFormat k, KvRowFormat v, int page_tokens, int n_kv_heads)
    : k_(k), v_(v), page_tokens_(page_tokens), n_kv_heads_(n_kv_heads) {
  for (const KvRowFormat& f : {k, v}) {
    if (!valid_kv_bits(f.bits)) throw Error("KV width " + std::to_string(f.bits) + " bits is not one of 2, 4, 8, 16");
    if (f.head_dim <= 0 || f.head_dim % 16 != 0 || f.head_dim > 1024) {
      throw Error("head dimension " + std::to_string(f.head_dim) +
                  " is not supported by the KV store (a multiple of 16, at most 1024, is required)");
    }
    if (f.bits != 16 && (f.group <= 0 || f.group % 16 != 0 || f.head_dim % f.group != 0)) {
      throw Error("KV group size " + std::to_string(f.group) + " must be a multiple of 16 that divides the head dimension " +
                  std::to_string(f.head_dim));
    }
  }
  if (page_tokens <= 0 || page_tokens % kKvTile != 0) {
    throw Error("KV page size " + std::to_string(page_tokens) + " must be a positive multiple of 16 tokens");
  }
  if (n_kv_heads <= 0) throw Error("KV store needs at least one KV head");
  size_t at = 0;  // [K codes][K scales][K minimums][V codes][V scales][V minimums]
  for (auto [f, b] : {std::pair{&k_, &k_block_}, std::pair{&v_, &v_block_}}) {
    const size_t meta = static_cast<size_t>(f->meta_size()) * f->groups() * page_tokens;  // bytes
    b->codes = at;
    b->scales = b->codes + static_cast<size_t>(f->code_bytes()) * page_tokens;
    b->minimums = b->scales + meta;
    b->tile_bytes = static_cast<size_t>(f->code_bytes()) * kKvTile;
    b->groups = f->groups();
    at += static_cast<size_t>(f->row_bytes()) * page_tokens;
  }
  head_bytes_ = at;
}

size_t KvPageLayout::token_bytes() const {
  return static_cast<size_t>(k_.row_bytes() + v_.row_bytes()) * n_kv_heads_;
}

void kv_page_write_codes(const KvPageLayout& layout, uint8_t* page, bool is_v, int h, int slot,
                         const uint8_t* codes, const uint16_t* scale, const uint16_t* minimum) {
  const KvRowFormat& f = layout.format(is_v);
  uint8_t* tile = page + layout.codes(is_v, h) + (slot / kKvTile) * layout.tile_bytes(is_v);
  const int t = slot % kKvTile;
  const uint8_t mask = static_cast<uint8_t>((1 << f.bits) - 1);
  for (int e = 0; e < f.head_dim; ++e) {
    const CodeSlot cs = is_v ? v_code_slot(f.bits, e, t) : k_code_slot(f.bits, e, t);
    uint8_t& b = tile[cs.byte];
    b = static_cast<uint8_t>((b & ~(mask << cs.shift)) | ((codes[e] & mask) << cs.shift));
  }
  for (int g = 0; g < f.groups(); ++g) {
    const size_t at = static_cast<size_t>(g) * layout.page_tokens() + slot;
    write_meta(page + layout.scales(is_v, h), at, f.meta_size(), scale[g]);
    write_meta(page + layout.minimums(is_v, h), at, f.meta_size(), minimum[g]);
  }
}

void kv_page_write_fp16(const KvPageLayout& layout, uint8_t* page, bool is_v, int h, int slot,
                        const uint16_t* row) {
  const int hd = layout.format(is_v).head_dim;
  uint16_t* tile = reinterpret_cast<uint16_t*>(page + layout.codes(is_v, h) + (slot / kKvTile) * layout.tile_bytes(is_v));
  const int t = slot % kKvTile;
  if (is_v) {
    std::memcpy(tile + t * hd, row, sizeof(uint16_t) * hd);
  } else {
    for (int e = 0; e < hd; ++e) tile[e * kKvTile + t] = row[e];
  }
}

void kv_page_read_codes(const KvPageLayout& layout, const uint8_t* page, bool is_v, int h, int slot, uint8_t* codes,
                        uint16_t* scale, uint16_t* minimum) {
  const KvRowFormat& f = layout.format(is_v);
  const uint8_t* tile = page + layout.codes(is_v, h) + (slot / kKvTile) * layout.tile_bytes(is_v);
  const int t = slot % kKvTile;
  const int mask = (1 << f.bits) - 1;
  for (int e = 0; e < f.head_dim; ++e) {
    const CodeSlot cs = is_v ? v_code_slot(f.bits, e, t) : k_code_slot(f.bits, e, t);
    codes[e] = static_cast<uint8_t>((tile[cs.byte] >> cs.shift) & mask);
  }
  for (int g = 0; g < f.groups(); ++g) {
    const size_t at = static_cast<size_t>(g) * layout.page_tokens() + slot;
    scale[g] = read_meta(page + layout.scales(is_v, h), at, f.meta_size());
    minimum[g] = read_meta(page + layout.minimums(is_v, h), at, f.meta_size());
  }
}

bool kv_page_key_centred(const KvPageLayout& layout, const uint8_t* page, int h, int slot) {
  const KvRowFormat& f = layout.format(false);
  if (f.bits == 16) return false;
  return (read_meta(page + layout.scales(false, h), static_cast<size_t>(slot), f.meta_size()) & kKvCentredFlag) != 0;
}

void kv_page_read_row(const KvPageLayout& layout, const uint8_t* page, bool is_v, int h, int slot, float* out) {
  const KvRowFormat& f = layout.format(is_v);
  if (f.bits == 16) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(page + layout.codes(is_v, h) + (slot / kKvTile) * layout.tile_bytes(is_v));
    const int t = slot % kKvTile;
    for (int e = 0; e < f.head_dim; ++e) out[e] = fp16_to_fp32(is_v ? p[t * f.head_dim + e] : p[e * kKvTile + t]);
    return;
  }
  uint8_t codes[1024];
  uint16_t scale[64], minimum[64];
  kv_page_read_codes(layout, page, is_v, h, slot, codes, scale, minimum);
  kv_dequantize_ref(codes, f.head_dim, f.group, scale, minimum, out);
}

}  // namespace kvbits
