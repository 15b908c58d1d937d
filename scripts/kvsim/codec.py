"""The store's codec (ops/kv_codec.cc) in numpy, vectorized over rows: min/max codes per group,
the clip search over ratios {1, 0.9, ..., 0.5}, E5M2 scale and minimum at 2 and 4 bits (fp16 at
8), the Hadamard rotation, and for keys the channel weights and per-row centring (whichever codes
the row with the smaller error). Approximations: a minimum rounded above the range's top is
replaced by the unrounded one (the store steps it down by one E5M2 step; it never happened on real
rows), NaN/Inf are not handled, and the key mean and weights come from `head_alloc.py stats`
(ARC train text) rather than the engine's built-in passage. On 8 WikiText windows int4/int2 gives
KL 0.0495 and ppl 31.553 here against 0.0507 and 31.533 from the engine (`--activations float`).
"""
import numpy as np


def e5m2(x):
    h = x.astype(np.float16).view(np.uint16).astype(np.uint32)
    sign = h & 0x8000
    mag = h & 0x7FFF
    mag = (mag + 0x7F + ((mag >> 8) & 1)) & 0xFF00
    mag = np.minimum(mag, 0x7B00)
    return (sign | mag).astype(np.uint16).view(np.float16).astype(np.float32)


def meta(x, bits):
    return e5m2(x) if bits <= 4 else x.astype(np.float16).astype(np.float32)


def quant_rows(X, bits, group=64, ratios=(1.0, 0.9, 0.8, 0.7, 0.6, 0.5)):
    """Dequantized rows of X [N, n], min/max codes with the clip search and 8-bit metadata."""
    N, n = X.shape
    G = X.reshape(N, n // group, group)
    L = (1 << bits) - 1
    lo, hi = G.min(-1, keepdims=True), G.max(-1, keepdims=True)
    c, half = 0.5 * lo + 0.5 * hi, 0.5 * hi - 0.5 * lo
    best, best_err = None, None
    for r in (ratios if bits <= 4 else (1.0,)):
        l, h = c - r * half, c + r * half
        m = meta(l, bits)
        m = np.where(m > h, l, m)
        s = meta(np.maximum(0, (h - m) / L), bits)
        inv = np.where(s > 0, 1 / np.where(s > 0, s, 1), 0)
        q = np.clip(np.round((G - m) * inv), 0, L)
        d = s * q + m
        err = ((d - G) ** 2).sum(-1, keepdims=True)
        if best is None:
            best, best_err = d, err
        else:
            better = err < best_err
            best = np.where(better, d, best)
            best_err = np.where(better, err, best_err)
    return best.reshape(N, n)


def hadamard(n):
    H = np.array([[1.0]])
    while H.shape[0] < n:
        H = np.block([[H, H], [H, -H]])
    return (H / np.sqrt(n)).astype(np.float32)


H64 = hadamard(64)


def roundtrip_plain(X, bits, group=64):
    """Rows X [N, 64] coded rotated (the store's V rows), decoded back."""
    if bits == 16:
        return X.astype(np.float16).astype(np.float32)
    return quant_rows(X @ H64, bits, group) @ H64.T


def key_coded_forms(X, mean, weight):
    """The two forms a K row [N, 64] may be coded in: H (w k) and H (w (k - mean))."""
    return (X * weight) @ H64, ((X - mean) * weight) @ H64


def roundtrip_key(X, bits, mean, weight, group=64):
    """The store's key codec: weighted, rotated, plain or centred (whichever codes better)."""
    if bits == 16:
        return X.astype(np.float16).astype(np.float32)
    P, C = key_coded_forms(X, mean, weight)
    dp, dc = quant_rows(P, bits, group), quant_rows(C, bits, group)
    ep, ec = ((dp - P) ** 2).sum(1), ((dc - C) ** 2).sum(1)
    out_p = (dp @ H64.T) / weight
    out_c = (dc @ H64.T) / weight + mean
    return np.where((ec < ep)[:, None], out_c, out_p)


def key_sink_like(X, mean, weight):
    """Rows of X [N, 64] whose weighted, rotated key has a range centred no smaller than plain
    (ops/kv_codec.h kv_key_row_sink_like with one group per row): [N] bool."""
    P, C = key_coded_forms(X, mean, weight)
    return (C.max(1) - C.min(1)) ** 2 >= (P.max(1) - P.min(1)) ** 2
