#!/usr/bin/env python3
"""Decode speed of llama.cpp (through llama-cpp-python) on the same GGUF, measured like
`kvbits bench` (docs/protocols.md): fill the context to depth D with fixed-seed random token ids,
then time N greedy decode steps; median of R runs; 2 threads; FP16 KV cache (llama.cpp's
default) or, with --kv q4_0, its 4-bit cache (needs flash attention).

    /opt/kvref/bin/python scripts/bench_llamacpp.py MODEL --depth 0,512,2048,8192
    /opt/kvref/bin/python scripts/bench_llamacpp.py MODEL --depth '' --prefill 512,8192

With --prefill N[,N...] it also times filling an empty cache with N random tokens (batches of
512, as `kvbits bench --prefill N` fills in chunks of 256), median of R runs, in tokens/s.

Prints one JSON object. `ms_per_token` is wall time around llama-cpp-python's `eval` (what a
Python user gets); `engine_ms_per_token` is llama.cpp's own timer of the same decode calls
(`llama_perf_context`), without the Python wrapper. Used for the same-machine comparison in
docs/benchmarks.md; not part of the build or the tests.
"""
import argparse
import json
import random
import statistics
import time

import llama_cpp
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--depth", default="0,512,2048,8192")
    ap.add_argument("--n-gen", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kv", default="f16", choices=["f16", "q4_0", "q8_0"])
    ap.add_argument("--prefill", default="", help="comma-separated prompt lengths to time from an empty cache")
    args = ap.parse_args()
    depths = [int(d) for d in args.depth.split(",") if d]
    prefills = [int(n) for n in args.prefill.split(",") if n]
    kv_type = {"f16": llama_cpp.GGML_TYPE_F16, "q4_0": llama_cpp.GGML_TYPE_Q4_0,
               "q8_0": llama_cpp.GGML_TYPE_Q8_0}[args.kv]
    llm = llama_cpp.Llama(model_path=args.model, n_ctx=max(depths + prefills + [0]) + args.n_gen + 8, n_batch=512,
                          n_threads=args.threads, n_threads_batch=args.threads, verbose=False,
                          flash_attn=args.kv != "f16", type_k=kv_type, type_v=kv_type)
    rng = random.Random(1234)
    vocab = llm.n_vocab()
    out = {"engine": f"llama.cpp via llama-cpp-python {llama_cpp.__version__}", "threads": args.threads,
           "kv_cache": args.kv, "decode": [], "prefill": []}
    for n in prefills:
        tps = []
        for _ in range(args.runs):
            llm.reset()
            prompt = [rng.randrange(vocab) for _ in range(n)]
            t0 = time.perf_counter()
            llm.eval(prompt)
            tps.append(n / (time.perf_counter() - t0))
        # Wall time only: llama-cpp-python 0.3.36's perf counters did not record these batches.
        out["prefill"].append({"tokens": n, "tokens_per_second": statistics.median(tps), "runs": tps})
    for depth in depths:
        times, engine_times = [], []
        for _ in range(args.runs):
            llm.reset()
            if depth:
                llm.eval([rng.randrange(vocab) for _ in range(depth)])
            tok = rng.randrange(vocab)
            llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
            t0 = time.perf_counter()
            for _ in range(args.n_gen):
                llm.eval([tok])
                # logits_all=False keeps no scores; read the last token's logits from the context.
                tok = int(np.argmax(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(vocab,))))
            times.append(1000.0 * (time.perf_counter() - t0) / args.n_gen)
            # llama.cpp's own timer of its single-token decode calls: the same steps without the
            # Python wrapper and the argmax (kvbits bench's figure includes its own argmax).
            perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
            engine_times.append(perf.t_eval_ms / perf.n_eval if perf.n_eval > 0 else float("nan"))
        out["decode"].append({"depth": depth, "ms_per_token": statistics.median(times), "runs_ms": times,
                              "engine_ms_per_token": statistics.median(engine_times),
                              "engine_runs_ms": engine_times})
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
