#!/usr/bin/env python3
"""Per-layer width allocation from single-layer damage (sensitivity.sh's result files).

For budgets B (average effective bits per KV element), picks one class per layer minimising the
summed single-layer KL subject to the layers' average bits <= B: an exact dynamic program over
layers in quarter-bit units (every class costs a multiple of 0.25 bits with the default group of
64: int2 2.25, int4/int2 3.25, int2/int4 3.25, int4 4.25, int8 8.5). Assumes the damage of layers
is additive — approximate: the summed single-layer KLs overshoot the all-layers KL, partly
because every single-layer run carries the int8-activation KL floor (~0.0035 nats/token,
docs/kv_quality.md), a constant per layer that does not change the argmin.
int8 is always allowed and counted at that floor (its own damage is below it).
Prints, per budget: the budget, the allocation's average bits, the predicted KL and the spec.
With --write FILE it also writes the measurements as a layer sensitivity file
(src/policy/layer_sensitivity.h), which `--kv alloc:FILE@BITS` allocates from at run time with
the same rule (in C++, class bits from the store's layout; int8 is not offered there).
Usage: allocate.py RESULT_DIR [--write FILE] [BUDGET...]"""
import json
import os
import sys

CLASSES = [("int2", "int2", 9), ("int4_int2", "int4/int2", 13), ("int2_int4", "int2/int4", 13), ("int4", "int4", 17)]
INT8 = ("int8", 34)
KL_FLOOR = 0.0035


def load(result_dir):
    options = []
    for tag, name, quarters in CLASSES:
        kl = []
        l = 0
        while os.path.exists(os.path.join(result_dir, f"{tag}-l{l}.json")):
            with open(os.path.join(result_dir, f"{tag}-l{l}.json")) as f:
                kl.append(json.load(f)["metrics"]["kl_vs_fp16"])
            l += 1
        if kl:
            options.append((name, quarters, kl))
    if not options:
        sys.exit(f"error: no sensitivity results (int2-l0.json, ...) in {result_dir}")
    n_layers = len(options[0][2])
    if any(len(kl) != n_layers for _, _, kl in options):
        sys.exit("error: the widths were measured on different numbers of layers")
    options.append((INT8[0], INT8[1], [KL_FLOOR] * n_layers))
    return options, n_layers


def allocate(options, n_layers, budget):
    cap = int(budget * 4 * n_layers + 1e-9)
    inf = float("inf")
    best = [[inf] * (cap + 1) for _ in range(n_layers + 1)]
    back = [[None] * (cap + 1) for _ in range(n_layers + 1)]
    best[0][0] = 0.0
    for l in range(n_layers):
        for used in range(cap + 1):
            if best[l][used] == inf:
                continue
            for i, (_, q, kl) in enumerate(options):
                if used + q <= cap and best[l][used] + kl[l] < best[l + 1][used + q]:
                    best[l + 1][used + q] = best[l][used] + kl[l]
                    back[l + 1][used + q] = (i, used)
    used = min(range(cap + 1), key=lambda u: best[n_layers][u])
    if best[n_layers][used] == inf:
        sys.exit(f"error: budget {budget} is below the cheapest class")
    total, bits, picks = best[n_layers][used], used / 4 / n_layers, []
    for l in range(n_layers, 0, -1):
        i, used = back[l][used]
        picks.append(options[i][0])
    picks.reverse()
    runs = []
    for w in picks:
        if runs and runs[-1][0] == w:
            runs[-1][1] += 1
        else:
            runs.append([w, 1])
    spec = "layers:" + ",".join(w if n == 1 else f"{w}x{n}" for w, n in runs)
    return bits, total, spec


def write_sensitivity(result_dir, options, path):
    first = json.load(open(os.path.join(result_dir, "int2-l0.json")))
    measured = [(name, kl) for name, _, kl in options if name != INT8[0]]
    doc = {
        "format": "kvbits-layer-sensitivity",
        "format_version": 1,
        "model": {"name": os.path.basename(first["model"]["path"]), "sha256": first["model"]["sha256"],
                  "n_layers": len(measured[0][1])},
        "classes": [name for name, _ in measured],
        "kl": [[round(x, 7) for x in kl] for _, kl in measured],
        "source": {"measure": "KL vs the FP16 cache (nats/token) with only layer l at the class, "
                              "scripts/layers/sensitivity.sh",
                   "text": first["task"]["name"], "windows": first["n"],
                   "window_tokens": 512, "kvbits_commit": first["kvbits"]["commit"],
                   "timestamp": first["timestamp"]},
    }
    flags = os.path.join(result_dir, "flags.txt")
    if os.path.exists(flags) and open(flags).read().strip():
        doc["source"]["eval_flags"] = open(flags).read().strip()
    # One top-level key per line, each class's row on one line.
    kl = ",\n    ".join(json.dumps(row) for row in doc.pop("kl"))
    lines = [f'  "{k}": {json.dumps(v)}' for k, v in doc.items()] + [f'  "kl": [\n    {kl}\n  ]']
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    write = None
    if "--write" in args:
        i = args.index("--write")
        write = args[i + 1]
        del args[i:i + 2]
    options, n_layers = load(args[0])
    if write:
        write_sensitivity(args[0], options, write)
    for b in args[1:]:
        bits, total, spec = allocate(options, n_layers, float(b))
        print(f"{b}\t{bits:.3f}\tpredicted KL {total:.4f}\t{spec}")


if __name__ == "__main__":
    main()
