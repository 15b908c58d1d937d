#!/usr/bin/env python3
"""Offline: how much V work could a decode step skip on real text? A step of 64 page tokens whose
largest score lies more than T (base-2 units, as the kernels score) below the running maximum of
its online softmax adds at most 64 * 2^-T of the running sum per head; skipping its exp and V
sums would bound the error by that. Counted here for the last query positions of a WikiText-2
prefix of N tokens, every layer and query head, the keys split into two halves as two decode
threads split the pages (each half its own running maximum, in page order).

Usage: skip_steps.py N   (from the repository root; figures: docs/kv_quality.md, "Skipping the V
work of faint steps")
"""
import sys

import numpy as np

import model
from model import HD, NH, NKV

THRESHOLDS = (8, 12, 16, 20, 24)
STEP = 64
LOG2E = 1.4426950408889634


def main():
    n_tokens = int(sys.argv[1])
    W, tok = model.load("models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ids = np.array(tok.encode(open("../shared/data/wikitext2_test.raw", encoding="utf-8").read()).ids)[:n_tokens]
    queries = [n_tokens - 1 - 37 * i for i in range(4)]
    skipped = {t: 0 for t in THRESHOLDS}
    steps = {t: 0 for t in THRESHOLDS}
    worst = {t: 0.0 for t in THRESHOLDS}  # largest skipped mass / the part's kept sum

    def collect(l, q, k, v):
        for p in queries:
            n = p + 1
            half = (n // STEP // 2) * STEP
            for h in range(NH):
                s = (k[:n, h // (NH // NKV)] @ q[p, h]) / np.sqrt(HD) * LOG2E
                for lo, hi in ((0, half), (half, n)):
                    for t in THRESHOLDS:
                        m, kept, lost = -np.inf, 0.0, 0.0
                        for b in range(lo, hi, STEP):
                            blk = s[b:min(b + STEP, hi)]
                            steps[t] += 1
                            if blk.max() < m - t:
                                skipped[t] += 1
                                lost += np.exp2(blk - m).sum()
                                continue
                            if blk.max() > m:
                                kept *= np.exp2(m - blk.max())
                                lost *= np.exp2(m - blk.max())
                                m = blk.max()
                            kept += np.exp2(blk - m).sum()
                        worst[t] = max(worst[t], lost / kept)

    model.forward(W, ids, chunk=n_tokens, collect=collect)
    for t in THRESHOLDS:
        print(f"{n_tokens} tokens, T = {t}: {skipped[t] / steps[t]:.3f} of the steps skipped, "
              f"largest skipped mass / kept sum {worst[t]:.1e}")


if __name__ == "__main__":
    main()
