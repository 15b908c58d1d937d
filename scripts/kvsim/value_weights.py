#!/usr/bin/env python3
"""Offline: do 2-bit values lose less when their channels are weighted by the output projection
they feed, as the store weights key channels by the queries (`--kv-key-weight`)?

An error e in a V row of KV head g reaches the residual stream as W_o,h e for each query head h of
its group, so channel i matters in proportion to d_i = sum over the group's heads of the squared
norm of W_o,h's column i (model data: no calibration). Each variant stores H (s * v) with
s = d ** alpha (alpha 0 = the store's codec), decodes (H^T v') / s; keys stay FP16 and position 0
exact, so the KL vs FP16 is the values' alone. WikiText-2 windows 0-3 and 4-11 reported apart.

Usage: value_weights.py   (from the repository root; figures: docs/kv_quality.md, "Values weighted
by the output projection")
"""
import numpy as np

import codec
import model
from head_alloc import windows
from model import HD, N_LAYER, NH, NKV

ALPHAS = (0.0, 0.25, 0.5, 0.75)


def channel_importance(W):
    """{(layer, kv head): d [HD]}: squared column norms of attn_output over the group's heads."""
    G = NH // NKV
    d = {}
    for l in range(N_LAYER):
        Wo = W[f"blk.{l}.attn_output.weight"].astype(np.float64)
        for g in range(NKV):
            d[l, g] = sum((Wo[:, h * HD:(h + 1) * HD] ** 2).sum(0) for h in range(g * G, (g + 1) * G))
    return d


def hook(d, alpha, vbits=2):
    def h(l, k, v):
        vq = v.copy()
        for g in range(NKV):
            s = (d[l, g] ** alpha).astype(np.float32)
            vq[:, g] = codec.roundtrip_plain(v[:, g] * s, vbits) / s
        vq[0] = v[0]
        return k, vq
    return h


def main():
    W, tok = model.load("models/SmolLM2-135M-Instruct.Q4_1.gguf")
    d = channel_importance(W)
    spread = [d[key].max() / d[key].min() for key in d]
    print(f"d max/min over a head's channels: median {np.median(spread):.2f}, largest {max(spread):.1f}")
    for name, which in (("0-3", range(0, 4)), ("4-11", range(4, 12))):
        wins = windows(tok, "../shared/data/wikitext2_test.raw", which)
        ref = [model.forward(W, ids)[1] for ids in wins]
        for alpha in ALPHAS:
            kls = [model.kl(r, model.forward(W, ids, kv_hook=hook(d, alpha))[1]) for ids, r in zip(wins, ref)]
            print(f"windows {name}: 2-bit values, alpha {alpha:.2f}: KL {np.mean(kls):.4f}", flush=True)


if __name__ == "__main__":
    main()
