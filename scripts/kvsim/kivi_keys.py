#!/usr/bin/env python3
"""Offline: KIVI's remedy for keys (a scale and minimum per channel over a block of tokens) against
the store's key codec (per row: channel weights, Hadamard rotation, centred or not), keys alone
quantized (values FP16, position 0 exact), KL vs FP16 on WikiText-2 windows 0-3.

Usage: kivi_keys.py STATS.npz BLOCK   (STATS from `head_alloc.py stats`; BLOCK 32 or 64 tokens.
With 64 the per-channel metadata costs what the store's per-row metadata costs, 0.25 bits per
element with E5M2; with 32 twice that.) Figures: docs/kv_quality.md (remedies for outliers).
"""
import sys

import numpy as np

import codec
import model
from head_alloc import make_hook, windows
from model import NKV


def per_channel(X, bits, block, weight=None):
    """Rows X [T, 64] coded with a scale and minimum per channel over blocks of `block` tokens (the
    store's group codes and clip search applied to the transposed block). A last partial block
    stays exact (KIVI keeps it in its FP16 residual)."""
    Y = X * weight if weight is not None else X
    out = Y.copy()
    for s in range(0, len(Y) - block + 1, block):
        out[s:s + block] = codec.quant_rows(Y[s:s + block].T.copy(), bits, group=block).T
    return out / weight if weight is not None else out


def hook(stats, kbits, mode, block):
    def h(l, k, v):
        kq = k.copy()
        for g in range(NKV):
            km, kw = stats["kmean"][l, g], stats["kweight"][l, g]
            if mode == "store":
                kq[:, g] = codec.roundtrip_key(k[:, g], kbits, km, kw)
            else:
                kq[:, g] = per_channel(k[:, g], kbits, block, kw if mode == "channel-weighted" else None)
        kq[0] = k[0]
        return kq, v.astype(np.float16).astype(np.float32)
    return h


def main():
    stats, block = dict(np.load(sys.argv[1])), int(sys.argv[2])
    W, tok = model.load("models/SmolLM2-135M-Instruct.Q4_1.gguf")
    wins = windows(tok, "../shared/data/wikitext2_test.raw", range(0, 4))
    ref = [model.forward(W, ids, kv_hook=make_hook(stats, {}))[1] for ids in wins]
    for kbits in (2, 4):
        for mode in ("store", "channel", "channel-weighted"):
            kls = [model.kl(r, model.forward(W, ids, kv_hook=hook(stats, kbits, mode, block))[1])
                   for ids, r in zip(wins, ref)]
            print(f"keys {kbits} bits, {mode:16s} KL {np.mean(kls):.4f}", flush=True)


if __name__ == "__main__":
    main()
