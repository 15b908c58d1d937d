#pragma once
// Byte layout of one KV page: the contract between the store that writes it (kv/kv_store.h) and
// the attention kernels that read it (ops/attention.h).
//
// A page holds `page_tokens` token slots of one layer for all KV heads, with K rows at one width
// and V rows at one width (a "class", e.g. K 4 bits / V 2 bits). Slots are filled in order; which
// position sits in which slot does not matter to attention (RoPE is already in K).
//
//   page  = for h in [0, n_kv_heads): [K block of head h][V block of head h]
//   block = [codes of page_tokens / 16 tiles][scales: groups x page_tokens][minimums: groups x
//           page_tokens]   (metadata fp16 for 8-bit rows, one E5M2 byte for 2/4-bit rows
//           (ops/kv_codec.h); 16-bit blocks have codes only)
//
// Codes of one 16-token tile (b = bits; e = dimension, t = token within the tile):
//  * K, b < 16, "lanes = tokens": 64-byte chunks; 32-bit lane t of chunk c holds token t's codes
//    for dims [c D, (c+1) D), D = 32 / b: dim e = c D + j sits in byte 4 t + (j mod 4) at bit
//    shift (j / 4) b. A VNNI dot product of a chunk with 4 broadcast query bytes yields 16 tokens'
//    partial scores in 16 lanes, with no horizontal sums.
//  * K, 16 bits: transposed, [head_dim][16 tokens] fp16: one load = one dim of 16 tokens.
//  * V, b < 16, "lanes = dims": per 16-dim block k (dims 16 k + l, l < 16) b/2 chunks of 64
//    bytes; in chunk z at bit shift j b (plane j < 8 / b), lane l byte i holds the code of token
//    4 (z (8 / b) + j) + i. A VNNI dot product with 4 broadcast weight bytes adds 4 tokens' weighted
//    codes to 16 dims.
//  * V, 16 bits: row-major [16 tokens][head_dim] fp16.
// Unused slots of a page are zero (scale 0, minimum 0): they decode to finite zeros.
#include <cstddef>
#include <cstdint>

#include "ops/kv_codec.h"

namespace kvbits {

inline constexpr int kKvTile = 16;  // tokens per tile: one 512-bit vector of fp32 / int32 lanes

class KvPageLayout {
 public:
  KvPageLayout() = default;
  // Throws Error unless both widths are valid, head_dim and page_tokens are multiples of 16, and
  // the group (a multiple of 16) divides head_dim.
  KvPageLayout(KvRowFormat k, KvRowFormat v, int page_tokens, int n_kv_heads);

  const KvRowFormat& format(bool is_v) const { return is_v ? v_ : k_; }
  int page_tokens() const { return page_tokens_; }
  int n_kv_heads() const { return n_kv_heads_; }
  size_t page_bytes() const { return head_bytes() * static_cast<size_t>(n_kv_heads_); }
  // Bytes one token occupies when its slot is used: codes + metadata, K and V, all heads.
  size_t token_bytes() const;

  // Offsets (bytes from the page start) of head h's K or V codes, scales and minimums.
  size_t codes(bool is_v, int h) const { return h * head_bytes_ + block(is_v).codes; }
  size_t scales(bool is_v, int h) const { return h * head_bytes_ + block(is_v).scales; }
  size_t minimums(bool is_v, int h) const { return h * head_bytes_ + block(is_v).minimums; }
  size_t tile_bytes(bool is_v) const { return block(is_v).tile_bytes; }
  // format(is_v).groups(), kept here so that the attention kernels, which resolve a page's blocks
  // for every page and head, do not divide (docs/benchmarks.md, session 35).
  int groups(bool is_v) const { return block(is_v).groups; }
  // Bytes of one head's K and V blocks, which are contiguous from codes(false, h).
  size_t head_bytes() const { return head_bytes_; }

 private:
  // A head's K or V block, computed once by the constructor.
  struct Block {
    size_t codes = 0, scales = 0, minimums = 0;  // offsets from the head's K block
    size_t tile_bytes = 0;                        // code bytes of one 16-token tile
    int groups = 0;
  };
  const Block& block(bool is_v) const { return is_v ? v_block_ : k_block_; }

  KvRowFormat k_, v_;
  int page_tokens_ = 0;
  int n_kv_heads_ = 0;
  Block k_block_, v_block_;
  size_t head_bytes_ = 0;
};

// Writes one head's row into `slot`. For b < 16: codes[head_dim] (one per byte, from
// kv_quantize), scale/minimum[groups]; for 16 bits: row[head_dim] fp16 bits (scale/min unused).
void kv_page_write_codes(const KvPageLayout& layout, uint8_t* page, bool is_v, int h, int slot,
                         const uint8_t* codes, const uint16_t* scale, const uint16_t* minimum);
void kv_page_write_fp16(const KvPageLayout& layout, uint8_t* page, bool is_v, int h, int slot,
                        const uint16_t* row);
// Reads one head's row back as floats (s * c + m, or the fp16 values): the row as stored, so a
// centred K row (kv_page_key_centred) still lacks its mean and a rotated one is still rotated.
void kv_page_read_row(const KvPageLayout& layout, const uint8_t* page, bool is_v, int h, int slot, float* out);
// Reads one quantized (b < 16) row's codes[head_dim] and fp16 scale/minimum[groups]; scales keep
// their kKvCentredFlag bit (ops/kv_codec.h).
void kv_page_read_codes(const KvPageLayout& layout, const uint8_t* page, bool is_v, int h, int slot, uint8_t* codes,
                        uint16_t* scale, uint16_t* minimum);
// True if the K row of head h in `slot` is stored centred (k - key_mean; ops/kv_codec.h
// kKvCentredFlag). False for 16-bit rows.
bool kv_page_key_centred(const KvPageLayout& layout, const uint8_t* page, int h, int slot);

}  // namespace kvbits
