#include "kv/kv_store.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "io/mapped_file.h"
#include "kv/page_arena.h"
#include "ops/fp16_rows.h"
#include "ops/kv_codec.h"
#include "util/error.h"
#include "util/half.h"

namespace kvbits {

namespace {

int bits_code(int bits) { return bits == 2 ? 0 : bits == 4 ? 1 : bits == 8 ? 2 : 3; }
constexpr uint8_t kBitsOf[4] = {2, 4, 8, 16};

uint8_t demoted(uint8_t bits) { return bits == 16 ? 8 : bits == 8 ? 4 : 2; }

std::string mib(uint64_t bytes) {
  char buf[32];
  if (bytes < (1u << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  }
  return buf;
}

}  // namespace

std::string to_string(KvPrecision p) { return "k" + std::to_string(p.k_bits) + "/v" + std::to_string(p.v_bits); }

int kv_class_index(KvPrecision p) { return bits_code(p.k_bits) * 4 + bits_code(p.v_bits); }

KvPrecision kv_class_from_index(int index) { return {kBitsOf[index / 4], kBitsOf[index % 4]}; }

struct KvStore::Layer {
  // Pages come from the layer's arena, back to back (kv/page_arena.h), and start on a 64-byte
  // line: the kernels load 64-byte chunks and, with page_tokens a multiple of 64 (the default),
  // every block of a page is a whole number of lines, so no load splits (malloc's 16-byte
  // alignment did for 3 pages in 4: int4 pages in cache were ~8 % slower; docs/benchmarks.md,
  // session 32).
  struct Page {
    uint8_t* data = nullptr;  // owned by `arena`
    int cls = -1;             // kv_class_index; -1: free id
    int used = 0;             // slots filled
  };
  PageArena arena;
  std::unique_ptr<uint16_t[]> wk, wv;  // window: [n_kv_heads, window_rows, head_dim] fp16
  std::vector<Page> pages;             // index = page id
  std::vector<KvPageRef> refs;         // refs[id] mirrors pages[id]; empty pages have n_tokens 0
  std::vector<int> free_ids;
  std::array<int, 16> open;            // page id being filled per class, -1 if none
  std::array<int64_t, 16> rows{};      // committed tokens per class
  std::vector<uint16_t> page_of;       // per committed position: page id (per_token_record)
  const float* key_mean = nullptr;     // [n_kv_heads, head_dim] or nullptr (options.key_mean)
  const float* key_weight = nullptr;   // [n_kv_heads, head_dim] or nullptr (options.key_weight)
  explicit Layer(size_t arena_bytes) : arena(arena_bytes) { open.fill(-1); }
  explicit Layer(PageRegion& region) : arena(region) { open.fill(-1); }
};

KvStore::KvStore(const LlamaConfig& config, const KvStoreOptions& options)
    : n_layers_(config.n_layers), n_kv_heads_(config.n_kv_heads), head_dim_(config.head_dim), options_(options) {
  if (options_.capacity <= 0) throw Error("KV cache capacity must be positive, got " + std::to_string(options_.capacity));
  if (options_.residual < 0) throw Error("the residual window (R) cannot be negative, got " + std::to_string(options_.residual));
  if (options_.max_chunk <= 0) throw Error("KV store: chunk size must be positive");
  options_.group = std::min(options_.group, head_dim_);
  if (options_.allow_demotion) options_.per_token_record = true;
  if (options_.rotation != KvRotation::kNone && !hadamard_supported(head_dim_)) {
    throw Error("the Hadamard rotation needs a power-of-two head dimension, the model has " + std::to_string(head_dim_) +
                " (use --kv-rotate none)");
  }
  if (!options_.key_mean.empty() &&
      options_.key_mean.size() != static_cast<size_t>(n_layers_) * n_kv_heads_ * head_dim_) {
    throw Error("KV store: the key mean must have one row per layer");
  }
  if (!options_.key_weight.empty()) {
    if (options_.key_weight.size() != static_cast<size_t>(n_layers_) * n_kv_heads_ * head_dim_) {
      throw Error("KV store: the key weights must have one row per layer");
    }
    for (const float w : options_.key_weight) {
      if (!(w > 0.0f) || !std::isfinite(w)) throw Error("KV store: key weights must be positive and finite");
    }
  }
  // Validates widths, head_dim and group once, with the floor class.
  const KvPageLayout floor_layout({options_.floor.k_bits, head_dim_, options_.group},
                                  {options_.floor.v_bits, head_dim_, options_.group}, options_.page_tokens, n_kv_heads_);
  // The window never holds more than the context (size_ <= capacity), so a residual R beyond it
  // (everything stays FP16) needs no larger buffer; a short context or a large R would otherwise
  // reserve R rows per head and layer (R = 99999: 2.15 GiB for SmolLM2).
  window_rows_ = std::min(options_.residual + options_.max_chunk + 64, options_.capacity);
  // Address space for each layer's worst case: every token at 16 bits, plus an open page per class.
  // Only written bytes take memory (kv/page_arena.h). Where the kernel gives transparent huge
  // pages, one region on them for all layers, each layer taking chunks of it (and the address
  // space for one more chunk of the widest pages per layer); otherwise a region per layer.
  const KvPageLayout widest({16, head_dim_, options_.group}, {16, head_dim_, options_.group}, options_.page_tokens,
                            n_kv_heads_);
  const size_t arena_bytes =
      static_cast<size_t>((options_.capacity + options_.page_tokens - 1) / options_.page_tokens + 16) *
      widest.page_bytes();
  if (transparent_huge_pages_available()) {
    region_ = std::make_unique<PageRegion>(
        static_cast<size_t>(n_layers_) * (arena_bytes + PageArena::chunk_bytes(widest.page_bytes())),
        /*huge_pages=*/true);
    if (region_->size() == 0) region_.reset();  // not reserved (or AddressSanitizer): per layer
  }
  for (int l = 0; l < n_layers_; ++l) {
    auto layer = region_ ? std::make_unique<Layer>(*region_) : std::make_unique<Layer>(arena_bytes);
    const size_t n = static_cast<size_t>(n_kv_heads_) * window_rows_ * head_dim_;
    layer->wk.reset(new uint16_t[n]);  // untouched until written: the OS maps pages on first use
    layer->wv.reset(new uint16_t[n]);
    if (!options_.key_mean.empty()) layer->key_mean = options_.key_mean.data() + static_cast<size_t>(l) * n_kv_heads_ * head_dim_;
    if (!options_.key_weight.empty()) layer->key_weight = options_.key_weight.data() + static_cast<size_t>(l) * n_kv_heads_ * head_dim_;
    layers_.push_back(std::move(layer));
  }
  if (options_.budget_bytes > 0) {
    const int64_t pages = (options_.capacity + options_.page_tokens - 1) / options_.page_tokens;
    const uint64_t floor_bytes = static_cast<uint64_t>(pages) * n_layers_ * floor_layout.page_bytes() +
                                 (options_.per_token_record ? 2ull * options_.capacity * n_layers_ : 0);
    if (window_buffer_bytes() + floor_bytes > options_.budget_bytes) {
      throw Error("a KV budget of " + mib(options_.budget_bytes) + " cannot hold " + std::to_string(options_.capacity) +
                  " tokens: the FP16 window needs " + mib(window_buffer_bytes()) + " and the tokens need " +
                  mib(floor_bytes) + " at " + to_string(options_.floor) + " (lower -c or R, or raise --kv-mb)");
    }
  }
}

KvStore::~KvStore() = default;

uint64_t KvStore::window_buffer_bytes() const {
  return 2ull * 2 * static_cast<uint64_t>(n_kv_heads_) * window_rows_ * head_dim_ * n_layers_;
}

int64_t KvStore::begin_append(int64_t n) {
  if (n <= 0 || n > options_.max_chunk) {
    throw Error("KV store: cannot append " + std::to_string(n) + " tokens at once (chunk limit " +
                std::to_string(options_.max_chunk) + ")");
  }
  if (size_ + n > options_.capacity) {
    throw Error("context overflow: " + std::to_string(size_ + n) + " tokens exceed the context size of " +
                std::to_string(options_.capacity));
  }
  if (size_ - window_first_ + n > window_rows_) {
    throw Error("KV store: the FP16 window is full (" + std::to_string(size_ - window_first_) +
                " uncommitted tokens); tokens must be committed before more are appended");
  }
  if (size_ - window_base_ + n > window_rows_) {  // compact: move the live rows to the front
    const int64_t live = size_ - window_first_, from = window_first_ - window_base_;
    for (auto& layer : layers_) {
      for (int h = 0; h < n_kv_heads_; ++h) {
        for (uint16_t* w : {layer->wk.get(), layer->wv.get()}) {
          uint16_t* base = w + static_cast<int64_t>(h) * window_rows_ * head_dim_;
          std::memmove(base, base + from * head_dim_, sizeof(uint16_t) * live * head_dim_);
        }
      }
    }
    window_base_ = window_first_;
  }
  return size_;
}

void KvStore::write_window(int layer, int64_t pos, int64_t n, const float* k, const float* v) {
  Layer& L = *layers_[static_cast<size_t>(layer)];
  const int kv_dim = n_kv_heads_ * head_dim_;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = pos + i - window_base_;
    for (int h = 0; h < n_kv_heads_; ++h) {
      uint16_t* kd = L.wk.get() + (static_cast<int64_t>(h) * window_rows_ + row) * head_dim_;
      uint16_t* vd = L.wv.get() + (static_cast<int64_t>(h) * window_rows_ + row) * head_dim_;
      const float* ks = k + i * kv_dim + h * head_dim_;
      const float* vs = v + i * kv_dim + h * head_dim_;
      fp32_to_fp16_row(ks, head_dim_, kd);
      fp32_to_fp16_row(vs, head_dim_, vd);
    }
  }
}

void KvStore::end_append(int64_t n) { size_ += n; }

void KvStore::get_window_row(int layer, int64_t pos, uint16_t* k, uint16_t* v) const {
  if (pos < window_first_ || pos >= size_) throw Error("KV store: position " + std::to_string(pos) + " is not in the window");
  const Layer& L = *layers_[static_cast<size_t>(layer)];
  for (int h = 0; h < n_kv_heads_; ++h) {
    const int64_t off = (static_cast<int64_t>(h) * window_rows_ + pos - window_base_) * head_dim_;
    std::memcpy(k + h * head_dim_, L.wk.get() + off, sizeof(uint16_t) * head_dim_);
    std::memcpy(v + h * head_dim_, L.wv.get() + off, sizeof(uint16_t) * head_dim_);
  }
}

uint64_t KvStore::key_sink_like_layers(int64_t pos) const {
  if (pos < window_first_ || pos >= size_) throw Error("KV store: position " + std::to_string(pos) + " is not in the window");
  if (options_.key_mean.empty()) return 0;
  if (n_layers_ > 64) throw Error("sink-like rows: models of more than 64 layers are not supported");
  const bool rotate = options_.rotation != KvRotation::kNone;
  uint64_t bits = 0;
  float x[1024];
  for (int l = 0; l < n_layers_; ++l) {
    const Layer& L = *layers_[static_cast<size_t>(l)];
    for (int h = 0; h < n_kv_heads_; ++h) {
      const int64_t off = (static_cast<int64_t>(h) * window_rows_ + pos - window_base_) * head_dim_;
      for (int e = 0; e < head_dim_; ++e) x[e] = fp16_to_fp32(L.wk[off + e]);
      const float* w = L.key_weight ? L.key_weight + h * head_dim_ : nullptr;
      if (kv_key_row_sink_like(x, L.key_mean + h * head_dim_, w, head_dim_, options_.group, rotate)) {
        bits |= uint64_t{1} << l;
        break;
      }
    }
  }
  return bits;
}

void KvStore::set_window_row(int layer, int64_t pos, const uint16_t* k, const uint16_t* v) {
  if (pos < window_first_ || pos >= size_) throw Error("KV store: position " + std::to_string(pos) + " is not in the window");
  Layer& L = *layers_[static_cast<size_t>(layer)];
  for (int h = 0; h < n_kv_heads_; ++h) {
    const int64_t off = (static_cast<int64_t>(h) * window_rows_ + pos - window_base_) * head_dim_;
    std::memcpy(L.wk.get() + off, k + h * head_dim_, sizeof(uint16_t) * head_dim_);
    std::memcpy(L.wv.get() + off, v + h * head_dim_, sizeof(uint16_t) * head_dim_);
  }
}

KvLayerView KvStore::layer_view(int layer) const {
  const Layer& L = *layers_[static_cast<size_t>(layer)];
  const int64_t offset = (window_first_ - window_base_) * head_dim_;
  KvLayerView view;
  view.pages = L.refs;
  view.group = options_.group;
  view.rotated_k = options_.rotation != KvRotation::kNone;
  view.rotated_v = options_.rotation == KvRotation::kKeysAndValues;
  view.window_k = L.wk.get() + offset;
  view.window_v = L.wv.get() + offset;
  view.window_stride = window_rows_;
  if (!options_.key_mean.empty()) view.key_mean = options_.key_mean.data() + static_cast<size_t>(layer) * n_kv_heads_ * head_dim_;
  if (!options_.key_weight.empty()) view.key_weight = options_.key_weight.data() + static_cast<size_t>(layer) * n_kv_heads_ * head_dim_;
  return view;
}

int KvStore::class_slot(KvPrecision p) {
  if (!valid_kv_bits(p.k_bits) || !valid_kv_bits(p.v_bits)) {
    throw Error("KV precision " + to_string(p) + " is not made of widths 2, 4, 8, 16");
  }
  const int cls = kv_class_index(p);
  if (!layouts_[cls]) {
    layouts_[cls] = std::make_unique<KvPageLayout>(KvRowFormat{p.k_bits, head_dim_, options_.group},
                                                   KvRowFormat{p.v_bits, head_dim_, options_.group},
                                                   options_.page_tokens, n_kv_heads_);
  }
  return cls;
}

int KvStore::new_page(Layer& L, int cls) {
  int id;
  if (!L.free_ids.empty()) {
    id = L.free_ids.back();
    L.free_ids.pop_back();
  } else {
    if (L.pages.size() >= 65535) throw Error("KV store: too many pages in one layer");
    id = static_cast<int>(L.pages.size());
    L.pages.emplace_back();
    L.refs.emplace_back();
  }
  L.pages[id].data = L.arena.allocate(layouts_[cls]->page_bytes());  // zeroed: unused slots decode to 0
  L.pages[id].cls = cls;
  L.pages[id].used = 0;
  L.refs[id] = {L.pages[id].data, layouts_[cls].get(), 0};
  return id;
}

int KvStore::open_page(Layer& L, int cls) {
  const int id = L.open[cls];
  if (id >= 0 && L.pages[id].used < options_.page_tokens) return id;
  return L.open[cls] = new_page(L, cls);
}

void KvStore::free_page(Layer& L, int id) {
  Layer::Page& page = L.pages[id];
  L.rows[page.cls] -= page.used;
  if (L.open[page.cls] == id) L.open[page.cls] = -1;
  L.arena.release(page.data, layouts_[page.cls]->page_bytes());
  page = Layer::Page{};
  L.refs[id] = KvPageRef{};
  L.free_ids.push_back(id);
}

void KvStore::encode_token(Layer& L, int id, std::span<float> k_rows, std::span<float> v_rows, int64_t pos) {
  Layer::Page& page = L.pages[id];
  const int cls = page.cls;
  const KvPrecision p = kv_class_from_index(cls);
  const KvPageLayout& layout = *layouts_[cls];
  const int slot = page.used;
  uint8_t codes[1024];
  uint16_t scale[64], minimum[64], half[1024];
  for (int h = 0; h < n_kv_heads_; ++h) {
    for (const bool is_v : {false, true}) {
      float* x = (is_v ? v_rows : k_rows).data() + h * head_dim_;
      const int bits = is_v ? p.v_bits : p.k_bits;
      if (bits == 16) {
        fp32_to_fp16_row(x, head_dim_, half);
        kv_page_write_fp16(layout, page.data, is_v, h, slot, half);
        continue;
      }
      const bool rotate = is_v ? options_.rotation == KvRotation::kKeysAndValues : options_.rotation != KvRotation::kNone;
      if (is_v) {
        if (rotate) hadamard(x, head_dim_);
        kv_quantize(x, head_dim_, bits, options_.group, codes, scale, minimum);
      } else {
        const float* mean = L.key_mean ? L.key_mean + h * head_dim_ : nullptr;
        const float* weight = L.key_weight ? L.key_weight + h * head_dim_ : nullptr;
        kv_quantize_key(x, mean, weight, head_dim_, bits, options_.group, rotate, codes, scale, minimum);
      }
      kv_page_write_codes(layout, page.data, is_v, h, slot, codes, scale, minimum);
    }
  }
  ++page.used;
  ++L.refs[id].n_tokens;
  ++L.rows[cls];
  if (options_.per_token_record) {
    if (static_cast<int64_t>(L.page_of.size()) <= pos) L.page_of.resize(static_cast<size_t>(pos) + 1);
    L.page_of[static_cast<size_t>(pos)] = static_cast<uint16_t>(id);
  }
}

void KvStore::commit(int64_t n, std::span<const KvPrecision> precision, ThreadPool& pool) {
  if (n < 0 || n > window_tokens()) {
    throw Error("KV store: cannot commit " + std::to_string(n) + " of " + std::to_string(window_tokens()) +
                " window tokens");
  }
  if (static_cast<int64_t>(precision.size()) != n * n_layers_) {
    throw Error("KV store: one precision per token and layer expected");
  }
  if (n == 0) return;
  for (const KvPrecision& p : precision) class_slot(p);
  if (!options_.per_token_record) {
    // Without a record a layer's tokens must share one class (layers may differ: layers:...).
    for (int l = 0; l < n_layers_; ++l) {
      const KvPrecision first = precision[static_cast<size_t>(l)];
      for (int64_t i = 1; i < n; ++i) {
        const KvPrecision& p = precision[static_cast<size_t>(i * n_layers_ + l)];
        if (!(p == first)) throw Error("KV store: a static store cannot hold " + to_string(p) + " beside " + to_string(first));
      }
      for (int cls = 0; cls < 16; ++cls) {
        if (layers_[l]->rows[cls] > 0 && cls != kv_class_index(first)) {
          throw Error("KV store: a static store cannot hold " + to_string(first) + " beside " +
                      to_string(kv_class_from_index(cls)));
        }
      }
    }
  }
  // Budget: project the pages this commit opens; demote until they fit.
  if (options_.budget_bytes > 0) {
    for (;;) {
      uint64_t need = options_.per_token_record ? 2ull * n * n_layers_ : 0;
      for (int l = 0; l < n_layers_; ++l) {
        const Layer& L = *layers_[static_cast<size_t>(l)];
        std::array<int64_t, 16> count{};
        for (int64_t i = 0; i < n; ++i) ++count[kv_class_index(precision[i * n_layers_ + l])];
        for (int cls = 0; cls < 16; ++cls) {
          if (count[cls] == 0) continue;
          const int id = L.open[cls];
          const int64_t free = id >= 0 ? options_.page_tokens - L.pages[id].used : 0;
          const int64_t pages = (std::max<int64_t>(0, count[cls] - free) + options_.page_tokens - 1) / options_.page_tokens;
          need += static_cast<uint64_t>(pages) * layouts_[cls]->page_bytes();
        }
      }
      if (stats().kv_bytes_allocated + need <= options_.budget_bytes) break;
      if (!options_.allow_demotion) {
        throw Error("KV budget exceeded: " + std::to_string(committed() + n) + " tokens need more than " +
                    mib(options_.budget_bytes) + " with this policy (raise --kv-mb or use a policy that may demote)");
      }
      if (!demote_one_page()) {
        throw Error("KV budget exceeded: " + std::to_string(committed() + n) + " tokens need more than " +
                    mib(options_.budget_bytes) + " even at k2/v2 (raise --kv-mb or lower -c)");
      }
    }
  }
  const int64_t first_row = window_first_ - window_base_;
  const int kv_dim = n_kv_heads_ * head_dim_;
  pool.parallel_for(n_layers_, [&](int64_t l, int) {
    Layer& L = *layers_[static_cast<size_t>(l)];
    std::vector<float> k_rows(static_cast<size_t>(kv_dim)), v_rows(static_cast<size_t>(kv_dim));
    for (int64_t i = 0; i < n; ++i) {
      for (int h = 0; h < n_kv_heads_; ++h) {
        const int64_t src = (static_cast<int64_t>(h) * window_rows_ + first_row + i) * head_dim_;
        for (int e = 0; e < head_dim_; ++e) {
          k_rows[h * head_dim_ + e] = fp16_to_fp32(L.wk[src + e]);
          v_rows[h * head_dim_ + e] = fp16_to_fp32(L.wv[src + e]);
        }
      }
      const int id = open_page(L, kv_class_index(precision[i * n_layers_ + l]));
      encode_token(L, id, k_rows, v_rows, window_first_ + i);
    }
  });
  window_first_ += n;
}

bool KvStore::demote_one_page() {
  // The widest demotable class present anywhere (most bytes per token), then its fullest page.
  int best_layer = -1, best_id = -1;
  size_t best_bytes = 0;
  int best_used = 0;
  for (int l = 0; l < n_layers_; ++l) {
    const Layer& L = *layers_[static_cast<size_t>(l)];
    for (size_t id = 0; id < L.pages.size(); ++id) {
      const Layer::Page& page = L.pages[id];
      if (page.cls < 0 || page.used == 0 || page.cls == kv_class_index({2, 2})) continue;
      const size_t bytes = layouts_[page.cls]->token_bytes();
      if (bytes > best_bytes || (bytes == best_bytes && page.used > best_used)) {
        best_layer = l;
        best_id = static_cast<int>(id);
        best_bytes = bytes;
        best_used = page.used;
      }
    }
  }
  if (best_layer < 0) return false;
  Layer& L = *layers_[static_cast<size_t>(best_layer)];
  const Layer::Page& page = L.pages[best_id];
  const KvPrecision from = kv_class_from_index(page.cls);
  const KvPrecision to{demoted(from.k_bits), demoted(from.v_bits)};
  class_slot(to);
  const KvPageLayout& layout = *layouts_[page.cls];
  const int kv_dim = n_kv_heads_ * head_dim_;
  std::vector<float> k_rows(static_cast<size_t>(kv_dim)), v_rows(static_cast<size_t>(kv_dim));
  // Within every page slot order is position order: commits append increasing positions to the
  // open page, and demotion fills a page of its own (never the open one) in the same order.
  std::vector<int64_t> positions;
  for (size_t pos = 0; pos < L.page_of.size(); ++pos) {
    if (L.page_of[pos] == best_id) positions.push_back(static_cast<int64_t>(pos));
  }
  if (static_cast<int>(positions.size()) != page.used) throw Error("KV store: per-token record out of step");
  // Decode everything first: the page is freed before re-encoding so its id can be reused.
  std::vector<float> decoded(static_cast<size_t>(page.used) * 2 * kv_dim);
  for (int s = 0; s < page.used; ++s) {
    for (int h = 0; h < n_kv_heads_; ++h) {
      for (const bool is_v : {false, true}) {
        float* x = decoded.data() + (static_cast<size_t>(s) * 2 + is_v) * kv_dim + h * head_dim_;
        kv_page_read_row(layout, page.data, is_v, h, s, x);
        const int bits = is_v ? from.v_bits : from.k_bits;
        if (bits == 16) continue;
        // Back to the model's basis.
        if (is_v) {
          if (options_.rotation == KvRotation::kKeysAndValues) hadamard(x, head_dim_);
        } else {
          const bool centred = L.key_mean && kv_page_key_centred(layout, page.data, h, s);
          kv_key_row_to_model(x, head_dim_, options_.rotation != KvRotation::kNone,
                              L.key_weight ? L.key_weight + h * head_dim_ : nullptr,
                              centred ? L.key_mean + h * head_dim_ : nullptr);
        }
      }
    }
  }
  const int used = page.used;
  free_page(L, best_id);
  const int id = new_page(L, kv_class_index(to));  // same slot count: one page holds them all
  for (int s = 0; s < used; ++s) {
    float* k = decoded.data() + static_cast<size_t>(s) * 2 * kv_dim;
    encode_token(L, id, {k, static_cast<size_t>(kv_dim)}, {k + kv_dim, static_cast<size_t>(kv_dim)}, positions[s]);
  }
  ++demoted_pages_;
  return true;
}

void KvStore::truncate(int64_t n) {
  if (n < window_first_ || n > size_) {
    throw Error("KV store: cannot truncate to " + std::to_string(n) + " tokens (committed " +
                std::to_string(window_first_) + ", cached " + std::to_string(size_) + ")");
  }
  size_ = n;
}

void KvStore::clear() {
  for (auto& layer : layers_) {
    Layer& L = *layer;
    L.pages.clear();
    L.arena.reset();
    L.refs.clear();
    L.free_ids.clear();
    L.open.fill(-1);
    L.rows.fill(0);
    L.page_of.clear();
  }
  if (region_) region_->reset();  // after every layer's arena (kv/page_arena.h)
  size_ = window_first_ = window_base_ = 0;
  demoted_pages_ = 0;
}

KvPrecision KvStore::precision_at(int layer, int64_t pos) const {
  if (pos < 0 || pos >= size_) throw Error("KV store: no token at position " + std::to_string(pos));
  if (pos >= window_first_) return {16, 16};
  const Layer& L = *layers_[static_cast<size_t>(layer)];
  if (options_.per_token_record) return kv_class_from_index(L.pages[L.page_of[static_cast<size_t>(pos)]].cls);
  for (int cls = 0; cls < 16; ++cls) {
    if (L.rows[cls] > 0) return kv_class_from_index(cls);
  }
  return {16, 16};
}

std::optional<double> KvStore::huge_page_share() const {
  return region_ ? region_->huge_page_share() : std::nullopt;
}

uint64_t KvStore::page_bytes_allocated() const {
  uint64_t total = 0;
  for (const auto& layer : layers_) {
    for (const Layer::Page& page : layer->pages) {
      if (page.cls >= 0) total += layouts_[page.cls]->page_bytes();
    }
  }
  return total;
}

KvStats KvStore::stats() const {
  KvStats s;
  s.tokens = size_;
  s.window_tokens = window_tokens();
  s.demoted_pages = demoted_pages_;
  const uint64_t row_elems = static_cast<uint64_t>(n_kv_heads_) * head_dim_;  // per token, layer, K or V
  uint64_t committed_bytes = 0;
  double k_bits = 0.0, v_bits = 0.0;
  int64_t committed_rows = 0;
  for (const auto& layer : layers_) {
    for (int cls = 0; cls < 16; ++cls) {
      const int64_t rows = layer->rows[cls];
      if (rows == 0) continue;
      s.rows_per_class[cls] += rows;
      committed_rows += rows;
      const KvPageLayout& layout = *layouts_[cls];
      committed_bytes += static_cast<uint64_t>(rows) * layout.token_bytes();
      k_bits += 8.0 * rows * n_kv_heads_ * layout.format(false).row_bytes();
      v_bits += 8.0 * rows * n_kv_heads_ * layout.format(true).row_bytes();
    }
  }
  if (committed_rows > 0) {
    s.committed_k_bits = k_bits / (static_cast<double>(committed_rows) * row_elems);
    s.committed_v_bits = v_bits / (static_cast<double>(committed_rows) * row_elems);
  }
  const uint64_t window_bytes = static_cast<uint64_t>(s.window_tokens) * n_layers_ * 2 * row_elems * sizeof(uint16_t);
  const uint64_t record_bytes = options_.per_token_record ? 2ull * window_first_ * n_layers_ : 0;
  s.kv_bytes = committed_bytes + window_bytes + record_bytes;
  uint64_t record_capacity = 0;
  if (options_.per_token_record) {
    for (const auto& layer : layers_) record_capacity += 2ull * layer->page_of.capacity();
  }
  s.kv_bytes_allocated = page_bytes_allocated() + window_buffer_bytes() + record_capacity;
  const double elems = static_cast<double>(size_) * n_layers_ * 2.0 * row_elems;
  s.effective_bits = elems > 0 ? 8.0 * static_cast<double>(s.kv_bytes) / elems : 0.0;
  return s;
}

}  // namespace kvbits
