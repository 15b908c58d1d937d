// Throughput probes of the host's vector pipes for the instructions the VNNI attention kernel
// (ops/attention_vnni-inl.h) is made of: how many cycles 8 independent vpdpbusd take alone and
// next to 4 instructions of another kind. Where the other kind shares vpdpbusd's pipes the block
// takes ~12 cycles, where it runs beside them ~8. On Zen 4 (2026-12-05): vpdpbusd zmm 1 per
// cycle, latency 4; vgf2p8affineqb, vfmadd231ps and vmulps share its two pipes; vpandd, vpsrlw,
// vaddps and vpermps do not (docs/benchmarks.md; vmulps and vpermps added 2026-12-06). On the
// Emerald Rapids host (2026-12-07) the 8 vpdpbusd alone take ~5 cycles, their latency: two pipes,
// so there the block is latency-bound and the others' cost reads low; the BM_PipeMix12 blocks (12
// accumulators, session 46) keep both pipes busy: 12 vpdpbusd ~6.3 cycles, and each further
// instruction that shares their pipes adds ~0.5 cycle (vgf2p8affineqb, vpandd, vpsrlw, vmaxps,
// vaddps, vfmadd231ps, vpermps, vreduceps), a 2-uop one ~1 (vcvtph2ps, vrndscaleps). Register
// moves (vmovdqa64 zmm, zmm) and zeroing idioms (vpxord) add nothing: renaming removes them, so
// the kernel's ~50 moves per int2 page and KV head cost no pipe slot; vgf2p8affineqb with its bit
// matrix as a 64-byte memory operand ~0.1 cycle more than the register form (session 48). Not a
// kernel benchmark: it measures the machine, so that kernel work on another host starts from its
// own figures.
//
//   ./build/bench/kvbits_kernel_bench --benchmark_filter=PipeMix
//
// The blocks are inline assembly (the compiler must neither fuse nor drop them), compiled for
// AVX-512 VNNI and GFNI whatever the build's baseline; a CPU without them skips the benchmarks.
#include <benchmark/benchmark.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include <chrono>
#include <cstdint>

namespace kvbits {
namespace {

constexpr int kBlocks = 1000;  // blocks per timed call

// Nanoseconds per cycle: a chain of dependent 64-bit multiplies (imul r64: latency 3 cycles on
// the x86 cores of the last decade, Intel and AMD alike). Until 2026-12-07 the clock was a chain
// of `add $1`, which the Emerald Rapids host (Xeon model 207) ran at ~4 per cycle, dependent as they
// are (the probe read 10.2 GHz there), so its cycle counts were off by that factor.
double NsPerCycle() {
  static const double ns = [] {
    constexpr long kMuls = 8L * 10'000'000;
    long x = 1;
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < kMuls / 8; ++i) {
      asm volatile("imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0\n\t"
                   "imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0"
                   : "+r"(x));
    }
    const auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / (3.0 * kMuls);
  }();
  return ns;
}

enum class Other {
  kNone, kGf2p8, kFma, kAnd, kShift, kAddPs, kCvtDq2Ps, kCvtPh2Ps, kScalef, kRoundscale, kReduce, kMaxPs, kMulPs, kPermPs,
  kLatency, kMov, kZero, kGf2p8Mem
};

#define KVBITS_PROBE_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni,gfni"), noinline))

// One call: kBlocks blocks of kDp (8 or 12) vpdpbusd zmm (as many accumulators; kLatency: one)
// and 4 of `other`.
template <Other kOther, int kDp = 8>
KVBITS_PROBE_TARGET int RunBlocks() {
  static_assert(kDp == 8 || kDp == 12);
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  __m512i a8 = a0, a9 = a0, a10 = a0, a11 = a0;
  __m512i b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  const __m512i x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(5);
  // kGf2p8Mem's bit matrix as a full 64-byte memory operand (the kernel's come from registers).
  alignas(64) static const uint64_t kMatrix[8] = {0x0408000000000000ull, 0x0408000000000000ull, 0x0408000000000000ull,
                                                  0x0408000000000000ull, 0x0408000000000000ull, 0x0408000000000000ull,
                                                  0x0408000000000000ull, 0x0408000000000000ull};
#define KVBITS_DP(a) asm volatile("vpdpbusd %1, %2, %0" : "+v"(a) : "v"(x), "v"(y));
#define KVBITS_OTHER(b)                                                                          \
  if constexpr (kOther == Other::kGf2p8) asm volatile("vgf2p8affineqb $0, %1, %2, %0" : "=v"(b) : "v"(x), "v"(y)); \
  if constexpr (kOther == Other::kFma) asm volatile("vfmadd231ps %1, %2, %0" : "+v"(b) : "v"(x), "v"(y));        \
  if constexpr (kOther == Other::kAnd) asm volatile("vpandd %1, %2, %0" : "=v"(b) : "v"(x), "v"(y));             \
  if constexpr (kOther == Other::kShift) asm volatile("vpsrlw $2, %1, %0" : "=v"(b) : "v"(x));                   \
  if constexpr (kOther == Other::kAddPs) asm volatile("vaddps %1, %2, %0" : "=v"(b) : "v"(x), "v"(y));            \
  if constexpr (kOther == Other::kCvtDq2Ps) asm volatile("vcvtdq2ps %1, %0" : "=v"(b) : "v"(x));                \
  if constexpr (kOther == Other::kCvtPh2Ps) asm volatile("vcvtph2ps %t1, %0" : "=v"(b) : "v"(x));               \
  if constexpr (kOther == Other::kScalef) asm volatile("vscalefps %1, %2, %0" : "=v"(b) : "v"(x), "v"(y));       \
  if constexpr (kOther == Other::kRoundscale) asm volatile("vrndscaleps $8, %1, %0" : "=v"(b) : "v"(x));         \
  if constexpr (kOther == Other::kReduce) asm volatile("vreduceps $9, %1, %0" : "=v"(b) : "v"(x));              \
  if constexpr (kOther == Other::kMaxPs) asm volatile("vmaxps %1, %2, %0" : "=v"(b) : "v"(x), "v"(y));          \
  if constexpr (kOther == Other::kMulPs) asm volatile("vmulps %1, %2, %0" : "=v"(b) : "v"(x), "v"(y));          \
  if constexpr (kOther == Other::kPermPs) asm volatile("vpermps %1, %2, %0" : "=v"(b) : "v"(x), "v"(y));        \
  if constexpr (kOther == Other::kMov) asm volatile("vmovdqa64 %1, %0" : "=v"(b) : "v"(x));                     \
  if constexpr (kOther == Other::kZero) asm volatile("vpxord %0, %0, %0" : "=v"(b));                            \
  if constexpr (kOther == Other::kGf2p8Mem)                                                                     \
    asm volatile("vgf2p8affineqb $0, %1, %2, %0" : "=v"(b) : "m"(*reinterpret_cast<const __m512i*>(kMatrix)), "v"(y));
  for (int i = 0; i < kBlocks; ++i) {
    if constexpr (kOther == Other::kLatency) {
      KVBITS_DP(a0) KVBITS_DP(a0) KVBITS_DP(a0) KVBITS_DP(a0) KVBITS_DP(a0) KVBITS_DP(a0) KVBITS_DP(a0) KVBITS_DP(a0)
    } else {
      KVBITS_DP(a0) KVBITS_DP(a1) KVBITS_DP(a2) KVBITS_DP(a3) KVBITS_DP(a4) KVBITS_DP(a5) KVBITS_DP(a6) KVBITS_DP(a7)
      if constexpr (kDp == 12) {
        KVBITS_DP(a8) KVBITS_DP(a9) KVBITS_DP(a10) KVBITS_DP(a11)
      }
      KVBITS_OTHER(b0) KVBITS_OTHER(b1) KVBITS_OTHER(b2) KVBITS_OTHER(b3)
    }
  }
#undef KVBITS_DP
#undef KVBITS_OTHER
  __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                               _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
  s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11)));
  return _mm512_reduce_add_epi32(_mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(b0, b1), _mm512_add_epi32(b2, b3))));
}

template <Other kOther, int kDp = 8>
void BM_PipeMix(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("gfni")) {
    state.SkipWithError("needs AVX-512 VNNI and GFNI");
    return;
  }
  const double ns_per_cycle = NsPerCycle();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(RunBlocks<kOther, kDp>());
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  // Cycles per block of kDp vpdpbusd (+ 4 others), at the clock of the multiply chain.
  state.counters["cycles_per_block"] = ns / (static_cast<double>(state.iterations()) * kBlocks) / ns_per_cycle;
  state.counters["ghz"] = 1.0 / ns_per_cycle;
}
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kNone)->Name("BM_PipeMix/8dpbusd");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kLatency)->Name("BM_PipeMix/8dpbusd_one_chain");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kGf2p8)->Name("BM_PipeMix/8dpbusd+4gf2p8affineqb");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kFma)->Name("BM_PipeMix/8dpbusd+4fmadd");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kAnd)->Name("BM_PipeMix/8dpbusd+4pandd");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kShift)->Name("BM_PipeMix/8dpbusd+4psrlw");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kAddPs)->Name("BM_PipeMix/8dpbusd+4addps");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kMaxPs)->Name("BM_PipeMix/8dpbusd+4maxps");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kCvtDq2Ps)->Name("BM_PipeMix/8dpbusd+4cvtdq2ps");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kCvtPh2Ps)->Name("BM_PipeMix/8dpbusd+4cvtph2ps");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kScalef)->Name("BM_PipeMix/8dpbusd+4scalefps");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kRoundscale)->Name("BM_PipeMix/8dpbusd+4rndscaleps");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kMulPs)->Name("BM_PipeMix/8dpbusd+4mulps");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kPermPs)->Name("BM_PipeMix/8dpbusd+4permps");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kNone, 12)->Name("BM_PipeMix12/12dpbusd");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kGf2p8, 12)->Name("BM_PipeMix12/12dpbusd+4gf2p8affineqb");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kAnd, 12)->Name("BM_PipeMix12/12dpbusd+4pandd");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kFma, 12)->Name("BM_PipeMix12/12dpbusd+4fmadd");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kMaxPs, 12)->Name("BM_PipeMix12/12dpbusd+4maxps");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kCvtPh2Ps, 12)->Name("BM_PipeMix12/12dpbusd+4cvtph2ps");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kRoundscale, 12)->Name("BM_PipeMix12/12dpbusd+4rndscaleps");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kReduce, 12)->Name("BM_PipeMix12/12dpbusd+4reduceps");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kScalef, 12)->Name("BM_PipeMix12/12dpbusd+4scalefps");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kGf2p8Mem, 12)->Name("BM_PipeMix12/12dpbusd+4gf2p8affineqb_mem");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kMov, 12)->Name("BM_PipeMix12/12dpbusd+4movdqa64");
BENCHMARK_TEMPLATE(BM_PipeMix, Other::kZero, 12)->Name("BM_PipeMix12/12dpbusd+4pxord_zero");

}  // namespace
}  // namespace kvbits

#endif  // x86-64
