#!/usr/bin/env python3
"""Random-weight GGUFs (llama, qwen2, phi3) for the llama.cpp comparison, written at test time.

Each base model is F32, deterministic from its seed (numpy PCG64, pinned numpy), with a real
vocabulary copied from a vocab-only GGUF in llama.cpp's models/ (ggml-vocab-llama-spm.gguf:
SentencePiece, 32,000 tokens; ggml-vocab-llama-bpe.gguf: Llama 3 byte-level BPE, 128,256;
ggml-vocab-qwen2.gguf: byte-level BPE with the qwen2 pre-tokenizer, 151,646; ggml-vocab-phi-3.gguf:
SentencePiece, 32,064). The qwen2 and phi3 models carry their architectures' own tensors: Q/K/V
biases (qwen2); a fused attn_qkv, a fused gate ‖ up ffn_up and longrope factors (phi3).
Weights ~ N(0, 1/fan_in) so every matmul keeps unit-scale activations; norm weights 1 + N(0, 0.1²);
the classifier scaled so logits have a standard deviation ~3, as trained small models do (a
random model with unit-scale logits has top-2 gaps ~0.2 over 32k tokens: greedy would be all
near-ties). Then `llama-quantize` writes every quant type, the default mixes (as files in the
wild are: output.weight stays Q6_K, ...) and `--pure` files of one type throughout.

  make-models.py OUT_DIR      (needs LLAMA_CPP_DIR, LLAMA_CPP_BIN, LLAMA_CPP_LIB: fetch.sh's env.sh)
  make-models.py --big NAME OUT_DIR   instead one BIG_BASES file: llama32-1b (the
                              Llama-3.2-1B-shaped Q4_K_M), llama3-8b (~4.9 GB; README, not CI),
                              or the benchmark's bench-110m / bench-1b sets (F32 + 3 quants)
  AOS_REF_QUANTIZE=bindings   quantize through libllama's llama_model_quantize (what llama-quantize
                              calls) instead of the llama-quantize tool
  AOS_REF_BASES=a,b,...       only these BASES (test.sh leaves out what its subset never reads)

Writes OUT_DIR/manifest.json: [{file, base, quant, pure, vocab, features}]. Skips the work when
OUT_DIR/manifest.json was written by this same script and llama.cpp build.
"""
import hashlib
import importlib.metadata
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import gguf
from gguf import GGUFReader, GGUFValueType, GGUFWriter

# name: shape and metadata. Row lengths (dim, hidden) of the `pure_k` models are multiples of
# 256, so --pure K-quant files exist for them (a K-quant block is 256 wide).
BASES = {
    # GQA 2, separate output, rope base 10000: the Llama 2 layout.
    "spm-d256": dict(vocab="llama-spm", dim=256, layers=4, heads=8, kv_heads=4, hidden=768,
                     rope_base=10000.0, tied=False, seed=1, pure_k=True),
    # MHA, tied output (no output.weight), rope base 1e6, eps 1e-6.
    "spm-d512-tied": dict(vocab="llama-spm", dim=512, layers=6, heads=8, kv_heads=8, hidden=1536,
                          rope_base=1e6, eps=1e-6, tied=True, seed=2, pure_k=True),
    # Llama 3.1-style RoPE: base 5e5 and a rope_freqs tensor (factor 8, low 1, high 4, orig ctx
    # 8192), exactly as convert_hf_to_gguf.py writes Llama 3.1 (conversion/llama.py
    # generate_extra_tensors; it writes no rope.scaling.* key for rope_type llama3). GQA 4.
    "spm-d256-rope3": dict(vocab="llama-spm", dim=256, layers=4, heads=4, kv_heads=1, hidden=768,
                           rope_base=5e5, llama3_rope=dict(factor=8.0, low=1.0, high=4.0, orig_ctx=8192),
                           tied=False, seed=3, pure_k=True),
    # Llama 3 vocabulary (byte-level BPE, 128,256 tokens), tied, llama3 rope: small dim so the
    # F32 file stays ~66 MB. Row length 128: K-quant mixes fall back per tensor; no pure K files.
    "bpe-d128": dict(vocab="llama-bpe", dim=128, layers=2, heads=4, kv_heads=2, hidden=384,
                     rope_base=5e5, llama3_rope=dict(factor=8.0, low=1.0, high=4.0, orig_ctx=8192),
                     tied=True, seed=4, pure_k=False),
    # Qwen 2 (2.5) layout: Q/K/V biases, NeoX RoPE, base 1e6, tied, GQA 2, the qwen2 BPE vocabulary.
    "qwen2-d128": dict(arch="qwen2", vocab="qwen2", dim=128, layers=2, heads=4, kv_heads=2, hidden=384,
                       rope_base=1e6, eps=1e-6, tied=True, seed=7, pure_k=False),
    # Phi-3 layout: fused attn_qkv, fused gate ‖ up, MHA, separate output, longrope short/long
    # factors with an attention factor and an original context (256) below the context llama.cpp
    # runs at (512), so both engines use the long factors.
    "phi3-d256": dict(arch="phi3", vocab="phi-3", dim=256, layers=3, heads=4, kv_heads=4, hidden=512,
                      rope_base=10000.0, longrope=dict(orig_ctx=256, attn_factor=1.19), tied=False,
                      seed=8, pure_k=True),
    # Gemma 3 layout (the real 270M file checks a trained model; this one its switches at small
    # size): head size 128 from attention.key_length (not dim / heads = 64), Q/K head norms,
    # post-attention and post-FFN norms, GeGLU, a sliding window of 8 positions on the layers the
    # bool-array pattern marks (so the window matters within the 24 compared positions), local
    # RoPE base 1e4 and global 1e6, final logit softcapping 30, tied; the llama-spm vocabulary.
    "gemma3-d256": dict(arch="gemma3", vocab="llama-spm", dim=256, layers=4, heads=4, kv_heads=1, hidden=512,
                        head_dim=128, rope_base=1e6, eps=1e-6, tied=True, seed=9, pure_k=True,
                        gemma=dict(window=8, pattern=[True, True, False, True], rope_base_local=1e4, softcap=30.0)),
}
# `--big`: the Llama-3.2-1B shape (1.24 B parameters, 128,256-token Llama 3 vocabulary, tied,
# llama3 rope factor 32), for the memory test under ao-loader. Its base is F16 (2.5 GB; F32 would
# be 5 GB), deleted once quantized: only the Q4_K_M file (~0.8 GB) is kept.
BIG_BASES = {
    "llama32-1b": dict(vocab="llama-bpe", dim=2048, layers=16, heads=32, kv_heads=8, hidden=8192,
                       rope_base=5e5, llama3_rope=dict(factor=32.0, low=1.0, high=4.0, orig_ctx=8192),
                       tied=True, seed=5, pure_k=True, base_type="F16", keep_base=False),
    # The Llama-3-8B shape (8.0 B parameters, ~4.9 GB as Q4_K_M): README "Large models", not CI.
    "llama3-8b": dict(vocab="llama-bpe", dim=4096, layers=32, heads=32, kv_heads=8, hidden=14336,
                      rope_base=5e5, tied=False, seed=6, pure_k=True, base_type="F16", keep_base=False),
    # The benchmark's files (test/reference/bench.sh, issue 12; README "Speed", not CI): the
    # llama2.c 110M shape (Llama 2 vocabulary, MHA) and the Llama-3.2-1B shape, each in F32 and
    # llama-quantize's default Q8_0, Q4_0 and Q4_K_M mixes (what published files are).
    "bench-110m": dict(vocab="llama-spm", dim=768, layers=12, heads=12, kv_heads=12, hidden=2048,
                       rope_base=10000.0, tied=False, seed=10, pure_k=True),
    "bench-1b": dict(vocab="llama-bpe", dim=2048, layers=16, heads=32, kv_heads=8, hidden=8192,
                     rope_base=5e5, llama3_rope=dict(factor=32.0, low=1.0, high=4.0, orig_ctx=8192),
                     tied=True, seed=5, pure_k=True),
}

# llama-quantize types: the default mix of each, and which also get a --pure file.
QUANTS_FULL = ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"]
PURE_FULL = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"]
PURE_NO_K = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"]
# Fewer files for the models whose point is metadata (llama3 rope) or the vocabulary.
QUANTS_FEW = ["F16", "Q8_0", "Q4_0", "Q4_K_M", "Q6_K"]
PURE_FEW = ["Q8_0", "Q4_0"]
PLAN = {
    "spm-d256": (QUANTS_FULL, PURE_FULL),
    "spm-d512-tied": (QUANTS_FULL, PURE_FULL),
    "spm-d256-rope3": (QUANTS_FEW, PURE_FEW + ["Q4_K_M"]),
    "bpe-d128": (QUANTS_FEW, PURE_FEW),
    "qwen2-d128": (["Q8_0", "Q4_K_M"], []),
    "phi3-d256": (["Q8_0", "Q4_K_M"], []),
    "gemma3-d256": (["Q8_0", "Q4_K_M"], []),
    "llama32-1b": (["Q4_K_M"], []),
    "llama3-8b": (["Q4_K_M"], []),
    "bench-110m": (["Q8_0", "Q4_0", "Q4_K_M"], []),
    "bench-1b": (["Q8_0", "Q4_0", "Q4_K_M"], []),
}
CONTEXT_LENGTH = 2048


def copy_vocab(w: GGUFWriter, vocab_path: str):
    r = GGUFReader(vocab_path)
    n = 0
    for key, f in r.fields.items():
        if not key.startswith("tokenizer."):
            continue
        main = GGUFValueType(f.types[0])
        if main == GGUFValueType.ARRAY:
            sub = GGUFValueType(f.types[-1])
            if sub == GGUFValueType.STRING:
                val = [bytes(f.parts[i]) for i in f.data]
            else:
                val = [x.item() for i in f.data for x in f.parts[i]]
            w.add_key_value(key, val, main, sub_type=sub)
            if key == "tokenizer.ggml.tokens":
                n = len(val)
        elif main == GGUFValueType.STRING:
            w.add_key_value(key, bytes(f.parts[f.data[0]]).decode("utf-8"), main)
        else:
            w.add_key_value(key, f.parts[f.data[0]][0].item(), main)
    return n


def llama3_rope_factors(head_dim, base, p):
    # conversion/llama.py LlamaModel.generate_extra_tensors, in numpy.
    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    low_wl = p["orig_ctx"] / p["low"]
    high_wl = p["orig_ctx"] / p["high"]
    out = []
    for f in freqs:
        wl = 2 * math.pi / f
        if wl < high_wl:
            out.append(1.0)
        elif wl > low_wl:
            out.append(p["factor"])
        else:
            s = (p["orig_ctx"] / wl - p["low"]) / (p["high"] - p["low"])
            out.append(1 / ((1 - s) / p["factor"] + s))
    return np.array(out, dtype=np.float32)


def write_base(path, name, c, vocab_path):
    rng = np.random.Generator(np.random.PCG64(c["seed"]))
    dim, hidden, hd = c["dim"], c["hidden"], c.get("head_dim", c["dim"] // c["heads"])
    kv_dim, q_dim = c["kv_heads"] * hd, c["heads"] * hd

    f16 = c.get("base_type") == "F16"

    def normal(shape, std):
        x = rng.standard_normal(shape, dtype=np.float32)
        x *= np.float32(std)
        return x.astype(np.float16) if f16 and len(shape) == 2 else x

    def norm_w():
        return (1.0 + normal((dim,), 0.1)).astype(np.float32)

    arch = c.get("arch", "llama")
    w = GGUFWriter(path, arch)
    w.add_name(f"aos-llama random {name}")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32)
    w.add_context_length(CONTEXT_LENGTH)
    w.add_embedding_length(dim)
    w.add_block_count(c["layers"])
    w.add_feed_forward_length(hidden)
    w.add_head_count(c["heads"])
    w.add_head_count_kv(c["kv_heads"])
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(c["rope_base"])
    w.add_layer_norm_rms_eps(c.get("eps", 1e-5))
    if c.get("head_dim"):
        w.add_key_length(hd)
        w.add_value_length(hd)
    if c.get("gemma"):
        g = c["gemma"]
        w.add_sliding_window(g["window"])
        w.add_sliding_window_pattern(g["pattern"])
        w.add_rope_freq_base_swa(g["rope_base_local"])
        w.add_final_logit_softcapping(g["softcap"])
    if c.get("longrope"):
        w.add_rope_scaling_type(gguf.RopeScalingType.LONGROPE)
        w.add_rope_scaling_attn_factors(c["longrope"]["attn_factor"])
        w.add_rope_scaling_orig_ctx_len(c["longrope"]["orig_ctx"])
    n_vocab = copy_vocab(w, vocab_path)
    w.add_vocab_size(n_vocab)

    # (name, shape, producer): tensor infos first, then the data one tensor at a time, so a
    # multi-gigabyte base never sits in memory whole.
    plan = []

    def tensor(name, shape, std=None, make=None):
        plan.append((name, shape, make or (lambda: normal(shape, std))))

    tensor("token_embd.weight", (n_vocab, dim), 3.0 / math.sqrt(dim) if c["tied"] else 1.0)
    if c.get("llama3_rope"):
        tensor("rope_freqs.weight", (hd // 2,), make=lambda: llama3_rope_factors(hd, c["rope_base"], c["llama3_rope"]))
    if c.get("longrope"):
        # Factors near 1 (short) and 1..8 rising with the wavelength (long), as Phi-3's are.
        ramp = np.linspace(0.0, 1.0, hd // 2, dtype=np.float32)
        tensor("rope_factors_short.weight", (hd // 2,), make=lambda: (1.0 + 0.05 * ramp).astype(np.float32))
        tensor("rope_factors_long.weight", (hd // 2,), make=lambda: (1.0 + 7.0 * ramp ** 2).astype(np.float32))
    for l in range(c["layers"]):
        p = f"blk.{l}."
        tensor(p + "attn_norm.weight", (dim,), make=norm_w)
        if arch == "phi3":
            tensor(p + "attn_qkv.weight", (q_dim + 2 * kv_dim, dim), 1 / math.sqrt(dim))
        else:
            tensor(p + "attn_q.weight", (q_dim, dim), 1 / math.sqrt(dim))
            tensor(p + "attn_k.weight", (kv_dim, dim), 1 / math.sqrt(dim))
            tensor(p + "attn_v.weight", (kv_dim, dim), 1 / math.sqrt(dim))
        if arch == "qwen2":
            for n, rows in (("attn_q", dim), ("attn_k", kv_dim), ("attn_v", kv_dim)):
                tensor(p + n + ".bias", (rows,), make=lambda rows=rows: normal((rows,), 0.5))
        tensor(p + "attn_output.weight", (dim, q_dim), 1 / math.sqrt(q_dim))
        if arch == "gemma3":
            head_norm = lambda: (1.0 + normal((hd,), 0.1)).astype(np.float32)  # noqa: E731
            tensor(p + "attn_q_norm.weight", (hd,), make=head_norm)
            tensor(p + "attn_k_norm.weight", (hd,), make=head_norm)
            tensor(p + "post_attention_norm.weight", (dim,), make=norm_w)
            tensor(p + "post_ffw_norm.weight", (dim,), make=norm_w)
        tensor(p + "ffn_norm.weight", (dim,), make=norm_w)
        if arch == "phi3":
            tensor(p + "ffn_up.weight", (2 * hidden, dim), 1 / math.sqrt(dim))
        else:
            tensor(p + "ffn_gate.weight", (hidden, dim), 1 / math.sqrt(dim))
            tensor(p + "ffn_up.weight", (hidden, dim), 1 / math.sqrt(dim))
        tensor(p + "ffn_down.weight", (dim, hidden), 1 / math.sqrt(hidden))
    tensor("output_norm.weight", (dim,), make=norm_w)
    if not c["tied"]:
        tensor("output.weight", (n_vocab, dim), 3.0 / math.sqrt(dim))
    for name, shape, _ in plan:
        dtype = np.float16 if f16 and len(shape) == 2 else np.float32
        w.add_tensor_info(name, shape, np.dtype(dtype), int(np.prod(shape)) * np.dtype(dtype).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for _, _, make in plan:
        w.write_tensor_data(make())
    w.close()


def quantize_via_bindings(src, dst, q, pure):
    """What `llama-quantize [--pure] SRC DST Q 1` does, through libllama's llama_model_quantize
    (same defaults: no imatrix, no overrides). AOS_REF_QUANTIZE=bindings selects it."""
    import ctypes
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from llamacpp import L
    p = L.llama_model_quantize_default_params()
    p.nthread = 1
    p.ftype = getattr(L, f"LLAMA_FTYPE_MOSTLY_{q}")
    p.pure = pure
    if L.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p)) != 0:
        sys.exit(f"make-models: llama_model_quantize {src} -> {dst} {q} failed")


def main():
    args = sys.argv[1:]
    big = None
    if args[:1] == ["--big"]:
        if len(args) != 3 or args[1] not in BIG_BASES:
            sys.exit(f"usage: make-models.py --big {{{','.join(BIG_BASES)}}} OUT_DIR")
        big, args = args[1], args[2:]
    if len(args) != 1:
        sys.exit(__doc__)
    bases = {big: BIG_BASES[big]} if big else BASES
    if not big and os.environ.get("AOS_REF_BASES"):
        wanted = os.environ["AOS_REF_BASES"].split(",")
        unknown = [b for b in wanted if b not in BASES]
        if unknown:
            sys.exit(f"make-models: AOS_REF_BASES names unknown bases {unknown} (known: {', '.join(BASES)})")
        bases = {b: BASES[b] for b in wanted}
    out = os.path.abspath(args[0])
    llama_dir, llama_bin = os.environ["LLAMA_CPP_DIR"], os.environ["LLAMA_CPP_BIN"]
    quantize = os.path.join(llama_bin, "llama-quantize")
    via_bindings = os.environ.get("AOS_REF_QUANTIZE") == "bindings"
    # The quantization code is libllama's llama_model_quantize (llama-quantize is its CLI).
    key = hashlib.sha256(open(__file__, "rb").read() + open(os.environ["LLAMA_CPP_LIB"], "rb").read()
                         + importlib.metadata.version("gguf").encode() + np.__version__.encode()
                         + json.dumps(bases, sort_keys=True).encode()).hexdigest()
    manifest_path = os.path.join(out, "manifest.json")
    if os.path.exists(manifest_path):
        m = json.load(open(manifest_path))
        if m.get("key") == key and all(os.path.exists(os.path.join(out, e["file"])) for e in m["files"]):
            print(f"make-models: {len(m['files'])} files up to date in {out}")
            return
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    files = []
    for name, c in bases.items():
        features = []
        if c.get("llama3_rope"):
            features.append("rope_freqs")
        if c.get("longrope"):
            features.append("longrope")
        if c.get("gemma"):
            features.append("sliding-window")
        features.append(c.get("arch", "llama"))
        features.append("tied" if c["tied"] else "separate-output")
        if c["kv_heads"] != c["heads"]:
            features.append("gqa")
        vocab = c["vocab"]
        base_file = f"{name}-{c.get('base_type', 'F32')}.gguf"
        t = time.time()
        write_base(os.path.join(out, base_file), name, c,
                   os.path.join(llama_dir, "models", f"ggml-vocab-{vocab}.gguf"))
        print(f"make-models: {base_file} ({os.path.getsize(os.path.join(out, base_file)) >> 20} MiB, "
              f"{time.time() - t:.1f}s)", flush=True)
        entry = dict(base=name, vocab=vocab, features=features)
        if c.get("keep_base", True):
            files.append(dict(file=base_file, quant=c.get("base_type", "F32"), pure=True, **entry))
        quants, pures = PLAN[name]
        if not c["pure_k"]:
            pures = [q for q in pures if q in PURE_NO_K]
        jobs = [(q, False) for q in quants] + [(q, True) for q in pures]
        for q, pure in jobs:
            fn = f"{name}-{q}{'-pure' if pure else ''}.gguf"
            if via_bindings:
                quantize_via_bindings(os.path.join(out, base_file), os.path.join(out, fn), q, pure)
            else:
                # ./ prefixes: llama-quantize once misparsed a file name starting with a digit.
                threads = "2" if big else "1"
                cmd = [quantize] + (["--pure"] if pure else []) + [f"./{base_file}", f"./{fn}", q, threads]
                r = subprocess.run(cmd, cwd=out, capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit(f"make-models: {' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
            files.append(dict(file=fn, quant=q, pure=pure or q in ("F16", "BF16"), **entry))
        if not c.get("keep_base", True):
            os.remove(os.path.join(out, base_file))
        print(f"make-models: {name}: {len(jobs)} quantized files", flush=True)
    json.dump({"key": key, "files": files}, open(manifest_path + ".tmp", "w"), indent=1)
    os.replace(manifest_path + ".tmp", manifest_path)
    print(f"make-models: {len(files)} files in {out} ({time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
