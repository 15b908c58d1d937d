#!/usr/bin/env python3
"""Offline: is a bit allocation per KV head (and per K / V) better than kvbits' per layer (`alloc:`)?

Steps (docs/kv_quality.md "Allocation per KV head, offline" has the figures and the commands):
  stats  OUT.npz --calib TEXT        key mean and channel weights per layer and KV head, from the
                                     first 4 windows of 512 tokens of TEXT (the store's codec needs
                                     them; engine/key_means.h does the same on its built-in passage)
  sens   OUT.json --calib TEXT --stats S.npz [--part I --parts N]
                                     single-unit damage: KL vs FP16 (nats/token, 2 windows of TEXT)
                                     with only one unit quantized, every other row FP16; units are
                                     a layer (all heads) or one KV head at the classes int2,
                                     int4/int2, int4 (layer / head), and one head's K or V alone at
                                     2, 4 or 8 bits (headkv)
  eval   --sens S.json [...] --stats S.npz --budgets 2.5,3 [--windows 0:8] [--sink] [--sinklike 4]
                                     greedy allocations at each budget (mean bits per element, E5M2
                                     metadata included: 2.25, 4.25, 8.5) for layer, head and headkv
                                     units, then KL and perplexity vs FP16 on WikiText-2 windows
The calibration text is scripts/layers/calib_text.py's (ARC train splits only).
"""
import argparse
import json
import sys

import numpy as np

import codec
import model
from model import HD, N_LAYER, NKV

CLASSES = {"int2": (2, 2), "int4/int2": (4, 2), "int4": (4, 4)}
CLASS_BITS = {"int2": 2.25, "int4/int2": 3.25, "int4": 4.25}
WIDTH_BITS = {2: 2.25, 4: 4.25, 8: 8.5}
ROW_BITS = {**WIDTH_BITS, 16: 16.0}  # any width a promoted row can have or get
WINDOW = 512


def windows(tok, path, which):
    """Token windows number `which` of WINDOW tokens each, from the whole file."""
    ids = np.array(tok.encode(open(path, encoding="utf-8").read()).ids)
    return [ids[i * WINDOW:(i + 1) * WINDOW] for i in which]


def make_hook(stats, spec, sink=False, sinklike=0, extra=None):
    """spec: {(layer, head): (k bits, v bits)}; missing heads FP16. sink: position 0 exact.
    sinklike: rows with a sink-like key in any head of the layer get at least this width in every
    head (`--kv-sinklike`); extra["bits"] accumulates the bits they add (per element, summed
    over rows and layers: divide by rows * layers * 2 * NKV)."""
    def hook(l, k, v):
        kq, vq = k.copy(), v.copy()
        promoted = np.zeros(len(k), bool)
        if sinklike:
            for g in range(NKV):
                promoted |= codec.key_sink_like(k[:, g], stats["kmean"][l, g], stats["kweight"][l, g])
            promoted[0] &= not sink
        for g in range(NKV):
            kb, vb = spec.get((l, g), (16, 16))
            km, kw = stats["kmean"][l, g], stats["kweight"][l, g]
            kq[:, g] = codec.roundtrip_key(k[:, g], kb, km, kw)
            vq[:, g] = codec.roundtrip_plain(v[:, g], vb)
            kp, vp = max(kb, sinklike), max(vb, sinklike)
            if promoted.any() and (kp, vp) != (kb, vb):
                kq[promoted, g] = codec.roundtrip_key(k[promoted, g], kp, km, kw)
                vq[promoted, g] = codec.roundtrip_plain(v[promoted, g], vp)
                if extra is not None:
                    b = ROW_BITS
                    extra["bits"] += promoted.sum() * (b[kp] - b[kb] + b[vp] - b[vb])
        if sink:
            kq[0], vq[0] = k[0], v[0]
        return kq, vq
    return hook


def cmd_stats(a, W, tok):
    n = np.zeros((N_LAYER, NKV))
    ks = np.zeros((N_LAYER, NKV, HD))
    kss, qss = np.zeros_like(ks), np.zeros_like(ks)

    def collect(l, q, k, v):
        for g in range(NKV):
            n[l, g] += len(k)
            ks[l, g] += k[:, g].sum(0)
            kss[l, g] += (k[:, g] ** 2).sum(0)
            qss[l, g] += (q[:, 3 * g:3 * g + 3] ** 2).sum((0, 1)) / 3  # mean over the group's heads
    for ids in windows(tok, a.calib, range(4)):
        model.forward(W, ids, collect=collect)
    mean = ks / n[..., None]
    var = np.maximum(kss / n[..., None] - mean ** 2, 1e-12)
    # w = (Q_j / K_j)^(1/4), geometric mean 1 per head, clamped to [1/16, 16] (docs/kv_quality.md).
    w = (qss / n[..., None] / var) ** 0.25
    w = np.clip(w / np.exp(np.log(w).mean(-1, keepdims=True)), 1 / 16, 16)
    np.savez(a.out, kmean=mean.astype(np.float32), kweight=w.astype(np.float32))


def cmd_sens(a, W, tok, stats):
    wins = windows(tok, a.calib, (3, 9))
    base = []
    for ids in wins:
        hidden = []
        _, lp = model.forward(W, ids, kv_hook=make_hook(stats, {}), hidden=hidden)
        base.append((hidden, lp))
    jobs = [("layer", l, "all", c) for l in range(N_LAYER) for c in CLASSES]
    jobs += [("head", l, g, c) for l in range(N_LAYER) for g in range(NKV) for c in CLASSES]
    jobs += [("headkv", l, g, x + str(b)) for l in range(N_LAYER) for g in range(NKV) for x in "KV" for b in WIDTH_BITS]
    out = {}
    for kind, l, g, c in jobs[a.part::a.parts]:
        heads = range(NKV) if g == "all" else [g]
        if kind == "headkv":
            b = int(c[1:])
            spec = {(l, g): (b, 16) if c[0] == "K" else (16, b)}
        else:
            spec = {(l, h): CLASSES[c] for h in heads}
        d = 0.0
        for ids, (hidden, lp_ref) in zip(wins, base):  # layers below l are exact: resume at l
            _, lp = model.forward(W, ids, kv_hook=make_hook(stats, spec), start=l, x0=hidden[l])
            d += model.kl(lp_ref, lp) / len(wins)
        out[f"{kind} {l} {g} {c}"] = d
        print(kind, l, g, c, d, file=sys.stderr, flush=True)
    out["_source"] = (f"head_alloc.py sens, model {a.model}, calibration windows 3 and 9 of {a.calib}, "
                      f"jobs {a.part}::{a.parts}")
    json.dump(out, open(a.out, "w"), indent=0)


def allocate(units, bit_cost, budget):
    """units: [(key, weight, {option: damage})]. Greedy from the cheapest option: the upgrade with
    the most damage saved per bit that still fits the budget (weighted mean bits), until none helps."""
    cheapest = min(bit_cost, key=bit_cost.get)
    choice = {u: cheapest for u, _, _ in units}
    total = sum(w for _, w, _ in units)
    bits = bit_cost[cheapest]
    while True:
        best = None
        for u, w, dmg in units:
            for c in dmg:
                db = bit_cost[c] - bit_cost[choice[u]]
                if db <= 0 or bits + w * db / total > budget + 1e-9:
                    continue
                gain = (dmg[choice[u]] - dmg[c]) / (w * db)
                if best is None or gain > best[0]:
                    best = (gain, u, c, w * db / total)
        if best is None or best[0] <= 0:
            return choice, bits
        _, u, c, d = best
        choice[u] = c
        bits += d


def allocations(S, budget):
    """{name: (spec, mean bits)} for the three granularities."""
    layer, b1 = allocate([(l, NKV, {c: S[f"layer {l} all {c}"] for c in CLASSES}) for l in range(N_LAYER)],
                         CLASS_BITS, budget)
    head, b2 = allocate([((l, g), 1, {c: S[f"head {l} {g} {c}"] for c in CLASSES})
                         for l in range(N_LAYER) for g in range(NKV)], CLASS_BITS, budget)
    hkv, b3 = allocate([((l, g, x), 1, {b: S[f"headkv {l} {g} {x}{b}"] for b in WIDTH_BITS})
                        for l in range(N_LAYER) for g in range(NKV) for x in "KV"], WIDTH_BITS, budget)
    every = [(l, g) for l in range(N_LAYER) for g in range(NKV)]
    return {"layer": ({(l, g): CLASSES[layer[l]] for l, g in every}, b1),
            "head": ({u: CLASSES[head[u]] for u in every}, b2),
            "headkv": ({(l, g): (hkv[(l, g, "K")], hkv[(l, g, "V")]) for l, g in every}, b3)}


def cmd_eval(a, W, tok, stats):
    S = {}
    for path in a.sens:
        S.update(json.load(open(path)))
    lo, hi = (int(x) for x in a.windows.split(":"))
    wins = windows(tok, a.data, range(lo, hi))
    ref = [model.forward(W, ids, kv_hook=make_hook(stats, {})) for ids in wins]
    nll0 = np.mean([-r[0].mean() for r in ref])
    print(f"windows {lo}:{hi}, FP16 ppl {np.exp(nll0):.3f}, sink {a.sink}, sink-like rows at {a.sinklike or 'off'}")
    for budget in (float(b) for b in a.budgets.split(",")):
        for name, (spec, bits) in allocations(S, budget).items():
            kls, nll, extra = [], [], {"bits": 0.0}
            for ids, (_, lp_ref) in zip(wins, ref):
                lpt, lp = model.forward(W, ids, kv_hook=make_hook(stats, spec, a.sink, a.sinklike, extra))
                kls.append(model.kl(lp_ref, lp))
                nll.append(-lpt.mean())
            ppl = 100 * (np.exp(np.mean(nll) - nll0) - 1)
            bits += extra["bits"] / (len(wins) * WINDOW * N_LAYER * 2 * NKV)
            print(f"budget {budget:.2f} {name:7s} bits {bits:.3f} KL {np.mean(kls):.4f} ppl {ppl:+.2f} %", flush=True)
            if a.show:
                for l in range(N_LAYER):
                    print("  layer", l, [f"k{spec[(l, g)][0]}/v{spec[(l, g)][1]}" for g in range(NKV)])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", "--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stats")
    s.add_argument("out")
    s.add_argument("--calib", required=True)
    s = sub.add_parser("sens")
    s.add_argument("out")
    s.add_argument("--calib", required=True)
    s.add_argument("--stats", required=True)
    s.add_argument("--part", type=int, default=0)
    s.add_argument("--parts", type=int, default=1)
    s = sub.add_parser("eval")
    s.add_argument("--sens", nargs="+", required=True)
    s.add_argument("--stats", required=True)
    s.add_argument("--budgets", default="3")
    s.add_argument("--windows", default="0:8")
    s.add_argument("--data", default="../shared/data/wikitext2_test.raw")
    s.add_argument("--sink", action="store_true")
    s.add_argument("--sinklike", type=int, default=0, choices=(0, 4, 8, 16), help="as --kv-sinklike intN (0: off)")
    s.add_argument("--show", action="store_true", help="print the widths chosen per layer and head")
    a = p.parse_args()
    W, tok = model.load(a.model)
    if a.cmd == "stats":
        cmd_stats(a, W, tok)
        return
    stats = dict(np.load(a.stats))
    {"sens": cmd_sens, "eval": cmd_eval}[a.cmd](a, W, tok, stats)


if __name__ == "__main__":
    main()
