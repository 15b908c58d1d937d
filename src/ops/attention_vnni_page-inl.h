// The VNNI page drivers, included by ops/attention_kernels.cc after attention_vnni-inl.h inside the
// AVX3_DL target namespace (per-target code; no include guard on purpose): per page and KV head,
// the steps of attention_vnni-inl.h's kernels (scores, softmax, V sums) in order, with the
// prefetches of the next block spread over them, and the dispatch on the page's shape and widths.

// The VNNI page kernel for one head: steps of up to 4 tiles of 16 tokens, each read once for the
// nq queries of a block.
template <class Shape>
HWY_INLINE void AttendHeadVnni(const PreparedQuery* qs, const SoftmaxState* states, int nq, Shape sh,
                               const KvPageRef& page, int kvh, bool rotated_v, PrefetchSpan next) {
  const HeadBlocks b = ResolveHead(*page.layout, page.data, kvh);
  const bool v_quant = sh.v_bits(b) < 16;
  constexpr int kStep = kVnniStepTiles * kKvTile;
  // Issue points: every tile of the scores, and every tile of fp16 V sums, for the first query of
  // the block. Quantized V sums issued too, before each 16-dim block, until session 35: ~20
  // instructions per int2 tile for the cursor's bookkeeping, moved to the score tiles' issues.
  const int tiles_total = (page.n_tokens + kKvTile - 1) / kKvTile;
  const size_t points = static_cast<size_t>(v_quant ? tiles_total : 2 * tiles_total);
  const size_t chunk = (next.lines + points - 1) / points * 64;
  // One cursor for every query (chunk 0 after the first), so that it can stay in registers.
  PrefetchCursor pf{next.begin, next.begin + 64 * next.lines, chunk};
  // One query's step, for shape sh or its FullStep.
  const auto step = [&](auto shape, int qi, int t0, int n, int tiles) KVBITS_ALWAYS_INLINE {
    // Scores, then weights; local to each copy, so that a full step's can live in registers.
    __m512 s[kVnniStepTiles][16];
    const SoftmaxState& st = states[qi];
    pf.chunk = qi == 0 ? chunk : 0;
    ScoreStepVnni(qs[qi], shape, b, t0, n, tiles, s, pf);
    SoftmaxStep(s, tiles, shape, st);
    AccumulateStepVnni(shape, b, t0, n, tiles, s, v_quant && rotated_v ? st.acc_rot : st.acc, st.lane_vmin, pf,
                       qs[qi].qi2 != nullptr);
  };
  if constexpr (Shape::kFixed) {
    // A page of one full step (the store's default of 64 tokens) with t0 = 0 as a constant: its
    // addresses are then offsets from the blocks' pointers; as the step loop's induction
    // variables GCC had computed ~30 of them per page and spilled them to the stack (an int2
    // tile: 430 -> 395 instructions, session 35).
    if (page.n_tokens == kStep) {
      for (int qi = 0; qi < nq; ++qi) {
        step(sh.full_step(), qi, 0, kStep, kVnniStepTiles);
      }
      return;
    }
  }
  for (int t0 = 0; t0 < page.n_tokens; t0 += kStep) {
    const int n = std::min(kStep, page.n_tokens - t0);
    const int tiles = (n + kKvTile - 1) / kKvTile;
    for (int qi = 0; qi < nq; ++qi) {
      if constexpr (Shape::kFixed) {
        // The fixed shapes' full steps with their tiles unrolled (ForTiles): an int2 tile took
        // 503 instructions against 556 (session 35).
        if (n == kStep) {
          step(sh.full_step(), qi, t0, kStep, kVnniStepTiles);
          continue;
        }
      }
      step(sh, qi, t0, n, tiles);
    }
  }
}

// Decode's common case (one query, a page of one full step, a fixed shape) for kHeads KV heads:
// the heads' phases software-pipelined, in the order scores(0), then per head h: scores(h + 1),
// softmax(h), V sums(h). A head's softmax and V weights are a chain of reductions (the step's max,
// the weights' max per group) that leaves the multiply pipes idle; in program order right after
// the next head's scores, which do not depend on it, the core runs the chain under those scores.
// Results are those of AttendHeadVnni head by head (the same operations on the same values).
// Since head h + 1's K block is read right after head h's, one head ahead is too short a distance
// for the prefetches: the score tiles of all kHeads heads prefetch the next page's kHeads blocks
// (`next` is its first; a page's heads are contiguous, ops/kv_page.h), a page ahead.
template <int kHeads, class Shape>
HWY_INLINE void AttendHeadsPipelined(const PreparedQuery (*qs)[kAttentionQueryBlock],
                                     const SoftmaxState (*states)[kAttentionQueryBlock], Shape sh,
                                     const KvPageRef& page, int kvh0, bool rotated_v, PrefetchSpan next) {
  const auto fs = sh.full_step();
  constexpr int kStep = kVnniStepTiles * kKvTile;
  const size_t lines = next.lines * kHeads;
  constexpr size_t kIssues = kHeads * kVnniStepTiles;  // one per score tile
  PrefetchCursor pf{next.begin, next.begin + 64 * lines, (lines + kIssues - 1) / kIssues * 64, /*to_l1=*/true};
  // Per head: its blocks and its scores, indexed by compile-time constants only, so that GCC may
  // keep them in registers.
  HeadBlocks b[kHeads];
  __m512 s[kHeads][kVnniStepTiles][16];
  const auto scores = [&](auto hc) KVBITS_ALWAYS_INLINE {
    constexpr int h = decltype(hc)::value;
    b[h] = ResolveHead(*page.layout, page.data, kvh0 + h);
    ScoreStepVnni<decltype(fs), /*kTileLoop=*/true>(qs[h][0], fs, b[h], 0, kStep, kVnniStepTiles, s[h], pf);
  };
  scores(std::integral_constant<int, 0>{});
  [&]<int... H>(std::integer_sequence<int, H...>) KVBITS_ALWAYS_INLINE {
    (
        [&] {
          if constexpr (H + 1 < kHeads) scores(std::integral_constant<int, H + 1>{});
          const SoftmaxState& st = states[H][0];
          SoftmaxStep(s[H], kVnniStepTiles, fs, st);
          AccumulateStepVnni(fs, b[H], 0, kStep, kVnniStepTiles, s[H], rotated_v ? st.acc_rot : st.acc, st.lane_vmin,
                             pf, qs[H][0].qi2 != nullptr);
        }(),
        ...);
  }
  (std::make_integer_sequence<int, kHeads>{});
}

// Heads [kvh0, kvh0 + heads) of a page (AttendPage in attention_kernels.cc): the dispatch below
// is paid once per page.
template <class Shape>
HWY_INLINE void AttendPageVnniShape(const PreparedQuery (*qs)[kAttentionQueryBlock],
                                    const SoftmaxState (*states)[kAttentionQueryBlock], int heads, int nq, Shape sh,
                                    const KvPageRef& page, int kvh0, bool rotated_v, PrefetchSpan next) {
  // int2 pages only: the in-cache int4 tile was slower this way (66.0 -> 70.1 ns, minimum of 14
  // alternated rounds, session 41; why was not analysed) and it is not the width short of its
  // bandwidth target (docs/benchmarks.md).
  if constexpr (Shape::kFixed && Shape::kInt2) {
    if (nq == 1 && page.n_tokens == kVnniStepTiles * kKvTile && heads == 3) {
      return AttendHeadsPipelined<3>(qs, states, sh, page, kvh0, rotated_v, next);
    }
  }
  for (int h = 0; h < heads; ++h) {
    const PrefetchSpan after = h + 1 < heads ? attention_detail::head_block_span(page, kvh0 + h + 1) : next;
    AttendHeadVnni(qs[h], states[h], nq, sh, page, kvh0 + h, rotated_v, after);
  }
}

// Dispatch on the query heads per KV head (SmolLM2-135M: 3; 360M: 3; 1.7B: 1). Not inlined into
// AttendPage, whose portable path's set-up (two blocks resolved, a division) GCC had scheduled
// before the test that picks this kernel: ~100 instructions per page and head (session 35).
HWY_NOINLINE void AttendPageVnni(const PreparedQuery (*qs)[kAttentionQueryBlock],
                                  const SoftmaxState (*states)[kAttentionQueryBlock], int heads, int nq, int g, int hd,
                                  int group, const KvPageRef& page, int kvh0, bool rotated_v, PrefetchSpan next) {
  const int groups = hd / group;
  const auto run = [&](auto shape) KVBITS_ALWAYS_INLINE {
    AttendPageVnniShape(qs, states, heads, nq, shape, page, kvh0, rotated_v, next);
  };
  switch (g) {
    case 1: return run(KernelShape<1>{g, hd, group, groups});
    case 2: return run(KernelShape<2>{g, hd, group, groups});
    case 3: {
      // The K and V widths of the common quantized pages as template arguments, so that the
      // per-tile width switch and the values it keeps live go. Single-stepping the kernel
      // benchmark counted ~390 scalar instructions per int2 tile and KV head (pointers and
      // counters reloaded from the stack, loop control, prefetch cursor) beside ~340 vector
      // ones; with the widths fixed ~350 (docs/benchmarks.md, session 31). The head dim and
      // group of SmolLM2-135M / -360M with the default groups (64, 64) are fixed too, so that
      // every loop bound and query offset is a constant: 556 instructions per int2 tile against
      // 702 (221 scalar against 343), int4 614 against 808 (session 34); 395 and 426 with
      // session 35's changes above. Other shapes (e.g. --kv-group 32) and width pairs keep the
      // run-time kernel.
      const int kb = page.layout->format(false).bits, vb = page.layout->format(true).bits;
      if (hd == 64 && group == 64) {
        if (kb == 2 && vb == 2) {
          return run(KernelShape<3, 2, 2, 64, 64>{g, hd, group, groups});
        }
        if (kb == 4 && vb == 4) {
          return run(KernelShape<3, 4, 4, 64, 64>{g, hd, group, groups});
        }
        if (kb == 4 && vb == 2) {
          return run(KernelShape<3, 4, 2, 64, 64>{g, hd, group, groups});
        }
      }
      return run(KernelShape<3>{g, hd, group, groups});
    }
    case 4: return run(KernelShape<4>{g, hd, group, groups});
    case 8: return run(KernelShape<8>{g, hd, group, groups});
    default: return run(KernelShape<0>{g, hd, group, groups});
  }
}
