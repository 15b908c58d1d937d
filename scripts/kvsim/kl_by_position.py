#!/usr/bin/env python3
"""Offline: where in a 512-token WikiText-2 window does a quantized cache cost its KL? KL vs FP16
per position, averaged over windows 0-7 and over the 16 chunks of 32 tokens the protocol scores,
with every row at int4/int2 (the store's rotated codec; keys without centring or channel weights,
which need `head_alloc.py stats`) and position 0 exact, as `--kv-sinks 1`. A cost that piled up
at some positions (e.g. early in the window, where a query reads few rows) would ask for widths
by position.

Usage: kl_by_position.py   (from the repository root; figures: docs/kv_quality.md)
"""
import numpy as np

import codec
import model
from head_alloc import windows
from model import NKV


def hook(l, k, v):
    kq, vq = k.copy(), v.copy()
    for g in range(NKV):
        kq[:, g] = codec.roundtrip_plain(k[:, g], 4)
        vq[:, g] = codec.roundtrip_plain(v[:, g], 2)
    kq[0], vq[0] = k[0], v[0]
    return kq, vq


def main():
    W, tok = model.load("models/SmolLM2-135M-Instruct.Q4_1.gguf")
    wins = windows(tok, "../shared/data/wikitext2_test.raw", range(0, 8))
    per_position = np.zeros(511)
    for ids in wins:
        ref, quant = model.forward(W, ids)[1], model.forward(W, ids, kv_hook=hook)[1]
        per_position += (np.exp(ref) * (ref - quant)).sum(1)[:511] / len(wins)
    for c in range(16):
        print(f"positions {32 * c:3d}-{32 * c + 31:3d}: KL {per_position[32 * c:32 * (c + 1)].mean():.4f}")
    print(f"all positions: KL {per_position.mean():.4f}")


if __name__ == "__main__":
    main()
