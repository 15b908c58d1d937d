"""SmolLM2 (Llama) forward pass in numpy from the GGUF file, for offline KV-cache experiments.

Independent of the engine: weights dequantized by the `gguf` package (fp32 activations, like
`kvbits eval --activations float`), the tokenizer rebuilt from the file's vocabulary and merges
with the `tokenizers` package. It follows the WikiText protocol of docs/protocols.md: a window is
processed in chunks of 32 tokens, and each chunk attends the rows of earlier chunks as the cache
holds them (here: whatever `kv_hook` returns, e.g. a codec round trip) and its own rows exactly.
Check (2026-12-06): FP16 perplexity of WikiText-2 window 0 is 20.3128 here, 20.3133 from
`kvbits eval --task wikitext2 --limit 1 --kv fp16 --activations float`.

Shapes: T tokens, hidden D = 576, NH = 9 query heads and NKV = 3 KV heads of HD = 64.
"""
import numpy as np
import gguf
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

N_LAYER, D, NH, NKV, HD, THETA, EPS = 30, 576, 9, 3, 64, 1e5, 1e-5


def load(path):
    """(weights by GGUF tensor name as fp32 arrays in [out, in] order, tokenizer)."""
    r = gguf.GGUFReader(path)
    arch = r.fields["general.architecture"]
    if bytes(arch.parts[arch.data[0]]).decode() != "llama":
        raise SystemExit(f"{path}: not a llama model")
    W = {}
    for t in r.tensors:
        W[t.name] = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
    f = r.fields
    tokens = [bytes(f["tokenizer.ggml.tokens"].parts[i]).decode("utf-8") for i in f["tokenizer.ggml.tokens"].data]
    merges = [bytes(f["tokenizer.ggml.merges"].parts[i]).decode("utf-8") for i in f["tokenizer.ggml.merges"].data]
    tok = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, [tuple(m.split(" ", 1)) for m in merges]))
    # SmolLM2's pre-tokenizer ("smollm" in GGUF): single digits, then GPT-2 byte-level splitting.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    return W, tok


def rms(x, w):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + EPS) * w


def rope(x, pos):
    """x [T, H, HD]: RoPE on adjacent pairs (the GGUF llama layout permutes Q/K rows to it)."""
    i = np.arange(HD // 2)
    ang = pos[:, None] * THETA ** (-2 * i / HD)
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def forward(W, ids, chunk=32, kv_hook=None, collect=None, start=0, x0=None, hidden=None):
    """Returns (log-prob of ids[1:] [T-1], log-probs [T, vocab]).

    kv_hook(layer, k, v) -> (k', v'), each [T, NKV, HD] (k with RoPE): the rows that queries of later
    chunks read. collect(layer, q, k, v) sees the exact tensors. start/x0: resume at layer `start`
    from its input hidden states x0 [T, D] (as appended to `hidden` by an earlier call).
    """
    T = len(ids)
    x = W["token_embd.weight"][ids] if x0 is None else x0
    pos = np.arange(T, dtype=np.float64)
    ch = np.arange(T) // chunk
    same = ch[:, None] == ch[None, :]
    causal = np.arange(T)[None, :] <= np.arange(T)[:, None]
    for l in range(start, N_LAYER):
        if hidden is not None:
            hidden.append(x.copy())
        p = f"blk.{l}."
        h = rms(x, W[p + "attn_norm.weight"])
        q = (h @ W[p + "attn_q.weight"].T).reshape(T, NH, HD)
        k = (h @ W[p + "attn_k.weight"].T).reshape(T, NKV, HD)
        v = (h @ W[p + "attn_v.weight"].T).reshape(T, NKV, HD)
        q, k = rope(q, pos).astype(np.float32), rope(k, pos).astype(np.float32)
        if collect:
            collect(l, q, k, v)
        kq, vq = kv_hook(l, k, v) if kv_hook else (k, v)
        out = np.empty((T, NH, HD), np.float32)
        for hh in range(NH):
            g = hh // (NH // NKV)
            s = np.where(same, q[:, hh] @ k[:, g].T, q[:, hh] @ kq[:, g].T) / np.sqrt(HD)
            s = np.where(causal, s, -np.inf)
            a = np.exp(s - s.max(1, keepdims=True))
            a /= a.sum(1, keepdims=True)
            out[:, hh] = (a * same) @ v[:, g] + (a * ~same) @ vq[:, g]
        x = x + out.reshape(T, D) @ W[p + "attn_output.weight"].T
        h = rms(x, W[p + "ffn_norm.weight"])
        gt = h @ W[p + "ffn_gate.weight"].T
        x = x + (gt / (1 + np.exp(-gt)) * (h @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
    logits = rms(x, W["output_norm.weight"]) @ W["token_embd.weight"].T  # tied embeddings
    logits -= logits.max(1, keepdims=True)
    lp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return lp[np.arange(T - 1), ids[1:]], lp


def kl(lp_ref, lp):
    """Mean over positions of KL(p_ref || p), nats."""
    return float((np.exp(lp_ref) * (lp_ref - lp)).sum(1).mean())
