#pragma once
// The mixed-precision KV store: every token's K and V rows, per layer, at their own width.
//
// Per layer, tokens live in two places:
//  * the FP16 window: the most recent, not yet committed tokens, in position order. A forward pass
//    appends its chunk here (so tokens of one chunk see each other at full precision), and up to
//    `residual` (R) tokens stay here after it so the policy can look at attention they receive.
//  * pages: committed tokens. A page holds `page_tokens` slots of one class (K width, V width) in
//    the layout of ops/kv_page.h; each class fills its open page and starts a new one when it is
//    full, so the cache grows page by page and nothing is ever re-copied.
// The engine decides when tokens leave the window (commit) and at which precision (a
// PrecisionPolicy); the store only encodes and accounts. Attention reads pages and window through
// layer_view().
//
// Byte accounting follows ../shared/PROTOCOLS.md: kv_bytes counts every byte held for the cached
// tokens (codes, fp16 scales and minimums, window rows at fp16, and, for mixed policies, the
// per-token record: the 16-bit page id of each token in each layer). Static policies store one
// class, so their record is implicit and costs nothing: fp16 is exactly 16.00 effective bits.
// kv_bytes_allocated adds page slack, the window buffer and record capacity.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/thread_pool.h"
#include "model/llama_config.h"
#include "ops/attention.h"
#include "ops/kv_page.h"

namespace kvbits {

class PageRegion;

// The widths of one token's K and V rows in one layer.
struct KvPrecision {
  uint8_t k_bits = 16;
  uint8_t v_bits = 16;
  bool operator==(const KvPrecision&) const = default;
};
// "k4/v2" style, for logs and errors.
std::string to_string(KvPrecision p);
// 0..15: index of a (k_bits, v_bits) class, e.g. for per-class counters.
int kv_class_index(KvPrecision p);
KvPrecision kv_class_from_index(int index);

// Where the quantized (b < 16) rows are rotated by the Walsh-Hadamard transform (ops/kv_codec.h).
enum class KvRotation { kNone, kKeys, kKeysAndValues };

struct KvStoreOptions {
  int64_t capacity = 0;       // tokens the store can hold (the context size)
  int64_t residual = 0;       // R: most recent tokens kept in the FP16 window after each commit
  int64_t max_chunk = 256;    // most tokens one forward call appends (sizes the window buffer)
  int group = 64;             // elements per scale/minimum pair; clamped to head_dim
  int page_tokens = 64;       // slots per page, a multiple of 16
  KvRotation rotation = KvRotation::kKeysAndValues;
  // Key centering: per layer, the mean key row [n_layers, n_kv_heads * head_dim] (empty: none).
  // A quantized K row stores (k - mean) where that has the smaller quantization error, else k,
  // and says which in its scales' sign bits (ops/kv_codec.h kKvCentredFlag); attention adds
  // q . mean back to the centred rows' scores. Most keys share a large channel-wise offset, so
  // centring shrinks their range; sink-like tokens lie far from the mean and stay uncentred. It
  // is measured once per model (engine/key_means.h), model data like the weights, not bytes of
  // the cached tokens.
  std::vector<float> key_mean;
  // Key channel weights: per layer [n_layers, n_kv_heads * head_dim], each > 0 (empty: none).
  // Quantized K rows are stored as H (w * k) or H (w * (k - mean)) and queries meet them as
  // H (q / w) (ops/kv_codec.h): the scores are unchanged, the code's error lands where the
  // queries look least. Measured once per model with the mean (engine/key_means.h).
  std::vector<float> key_weight;
  // Memory budget on kv_bytes_allocated (0: none). When a new page would exceed it, the store
  // demotes whole pages to the next lower width (16 -> 8 -> 4 -> 2, K and V) if allow_demotion,
  // and otherwise refuses with an Error.
  uint64_t budget_bytes = 0;
  bool allow_demotion = false;
  // The narrowest class the store can end up with (the policy's, or k2/v2 with demotion): used to
  // refuse at construction a budget that cannot hold `capacity` tokens.
  KvPrecision floor{2, 2};
  // Keep the per-token record (page id per token and layer). Required for demotion; on for mixed
  // policies, off for static ones.
  bool per_token_record = false;
};

struct KvStats {
  int64_t tokens = 0;              // cached tokens (committed + window)
  int64_t window_tokens = 0;       // of which uncommitted, at fp16
  uint64_t kv_bytes = 0;           // PROTOCOLS.md kv_bytes
  uint64_t kv_bytes_allocated = 0;
  double effective_bits = 0.0;     // 8 kv_bytes / (tokens layers 2 kv_heads head_dim); 0 if empty
  int64_t demoted_pages = 0;       // pages re-encoded at a lower width to meet the budget
  // Token-layer rows committed at each class (kv_class_index), summed over layers.
  std::array<int64_t, 16> rows_per_class{};
  // Mean bits of committed codes+metadata alone, per element: K and V separately (0 if none).
  double committed_k_bits = 0.0, committed_v_bits = 0.0;
};

class KvStore {
 public:
  // Throws Error on invalid options, a head dimension the layout cannot hold, or a budget that
  // cannot hold `capacity` tokens at the floor class plus the window.
  KvStore(const LlamaConfig& config, const KvStoreOptions& options);
  ~KvStore();
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  const KvStoreOptions& options() const { return options_; }
  int64_t capacity() const { return options_.capacity; }
  int64_t size() const { return size_; }                  // tokens cached
  int64_t committed() const { return window_first_; }     // tokens in pages: positions [0, committed)
  int64_t window_tokens() const { return size_ - window_first_; }

  // --- forward pass (model) ---
  // Makes room in the window for n more tokens at positions size() .. size()+n-1 (n <= max_chunk)
  // and returns size(). Throws Error("context overflow ...") if they do not fit the capacity.
  int64_t begin_append(int64_t n);
  // Writes rows of layer l for positions [pos, pos + n) (within the range begun): k, v:
  // [n, n_kv_heads * head_dim] fp32, RoPE applied to k. Stored as fp16.
  void write_window(int layer, int64_t pos, int64_t n, const float* k, const float* v);
  // The n tokens begun are complete in every layer: size() grows by n.
  void end_append(int64_t n);
  // What attention reads for layer l: committed pages and window rows (index 0 = position
  // committed()); rows of a chunk being appended are readable as soon as they are written.
  KvLayerView layer_view(int layer) const;

  // Window rows of an uncommitted position in layer l: k, v [n_kv_heads * head_dim] fp16 bits.
  // (The damage probe swaps one token's rows for their quantized image and back.)
  void get_window_row(int layer, int64_t pos, uint16_t* k, uint16_t* v) const;
  // Bit l set if window position pos has a sink-like K row (ops/kv_codec.h kv_key_row_sink_like,
  // any KV head) in layer l; 0 without a key mean. Throws Error for a position outside the
  // window or a model of more than 64 layers.
  uint64_t key_sink_like_layers(int64_t pos) const;
  void set_window_row(int layer, int64_t pos, const uint16_t* k, const uint16_t* v);

  // --- policy side (engine) ---
  // Moves the oldest n window tokens (positions committed() .. committed()+n-1) into pages at the
  // given precisions: precision[i * n_layers + l] for token i, layer l. Demotes or throws per the
  // budget rules above.
  void commit(int64_t n, std::span<const KvPrecision> precision, ThreadPool& pool);
  // Drops uncommitted tokens so that size() == n; committed() <= n <= size().
  void truncate(int64_t n);
  void clear();

  // The precision the token at `pos` is stored at in layer l (the window is 16/16).
  KvPrecision precision_at(int layer, int64_t pos) const;
  KvStats stats() const;
  // Share of the shared page region's written bytes that lie on transparent huge pages now, in
  // [0, 1] (io/mapped_file.h huge_page_bytes; the written bytes rounded up to whole 2 MiB pages).
  // nullopt without a huge-page region (THP off, AddressSanitizer: a region per layer on 4 KiB
  // pages), before any page is written, or where /proc/self/smaps cannot be read. Reads smaps:
  // for reports, not for a decode loop.
  std::optional<double> huge_page_share() const;

 private:
  struct Layer;
  int class_slot(KvPrecision p);
  // Encodes one token's rows ([n_kv_heads][head_dim] floats, unrotated; rotated in place when its
  // width is quantized) into the next slot of page `id` of `layer` and records it at `pos`.
  // Touches only that layer (commit runs layers in parallel).
  void encode_token(Layer& layer, int id, std::span<float> k_rows, std::span<float> v_rows, int64_t pos);
  int new_page(Layer& layer, int cls);   // allocates a zeroed page (reusing a free id)
  int open_page(Layer& layer, int cls);  // the page class cls fills next
  void free_page(Layer& layer, int id);
  // Re-encodes the fullest page of the widest demotable class at the next lower widths; false if
  // every page is already k2/v2.
  bool demote_one_page();
  uint64_t window_buffer_bytes() const;
  uint64_t page_bytes_allocated() const;

  int n_layers_, n_kv_heads_, head_dim_;
  KvStoreOptions options_;
  // Layouts of the classes in use, index = kv_class_index (nullptr until first used). Stable
  // addresses: views point at them.
  std::array<std::unique_ptr<KvPageLayout>, 16> layouts_;
  // The layers' page memory when shared (kv/page_arena.h; nullptr: a region per layer). Declared
  // before layers_, whose arenas use it, so that it is destroyed after them.
  std::unique_ptr<PageRegion> region_;
  std::vector<std::unique_ptr<Layer>> layers_;
  int64_t size_ = 0;
  int64_t window_first_ = 0;  // first uncommitted position
  int64_t window_base_ = 0;   // position stored in window buffer row 0 (<= window_first_)
  int64_t window_rows_ = 0;   // buffer rows per head
  int64_t demoted_pages_ = 0;
};

}  // namespace kvbits
