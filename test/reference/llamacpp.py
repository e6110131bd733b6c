#!/usr/bin/env python3
"""llama.cpp as the reference engine, through the llama-cpp-python sdist's own ctypes bindings.

No second build: the sdist's `llama_cpp` package directory goes on sys.path and
LLAMA_CPP_LIB_PATH points at the directory of the libllama.so that fetch.sh built
(llama_cpp/_ctypes_extensions.py loads $LLAMA_CPP_LIB_PATH/libllama.so). Run it with the
venv's python from `source $AOS_REF_CACHE/env.sh` (it reads LLAMA_CPP_PY and LLAMA_CPP_LIB).

Settings, fixed for every use (so results are one reference, not a family of them):
  n_threads = n_threads_batch = 1 (as `-t 1`), F32 K/V cache (`-ctk f32 -ctv f32`),
  flash attention off (`-fa off`), no weight repacking / AMX (`--no-repack`), the prompt decoded
  as one batch, then one token per decode (as llama-completion does), greedy = the first highest
  logit (llama.cpp's greedy sampler).

  llamacpp.py greedy   -m M -p PROMPT -n N [--top K]      JSON: prompt ids, ids, text, top logits
  llamacpp.py logits   -m M --ids 1,2,3                   JSON {"logits": [[...], ...]} (one token per decode)
  llamacpp.py tokenize -m M -p PROMPT                     JSON ids
  llamacpp.py crosscheck -m M -p PROMPT -n N              greedy text == llama-completion's (exit 1 if not)
"""
import argparse
import ctypes
import json
import os
import subprocess
import sys

import numpy as np


def _import_bindings():
    py = os.environ.get("LLAMA_CPP_PY")
    lib = os.environ.get("LLAMA_CPP_LIB")
    if not py or not lib:
        sys.exit("llamacpp.py: LLAMA_CPP_PY and LLAMA_CPP_LIB are unset: source $AOS_REF_CACHE/env.sh "
                 "(written by test/reference/fetch.sh)")
    os.environ.setdefault("LLAMA_CPP_LIB_PATH", os.path.dirname(lib))
    sys.path.insert(0, py)
    import llama_cpp  # noqa: E402  (the sdist's package)
    return llama_cpp


L = _import_bindings()

_quiet = os.environ.get("LLAMACPP_VERBOSE") != "1"


_last_level = [0]


@L.llama_log_callback
def _log(level, text, user_data):  # keep llama.cpp quiet except for errors
    if level != 5:  # GGML_LOG_LEVEL_CONT continues the previous message
        _last_level[0] = level
    if not _quiet or _last_level[0] == 4:  # GGML_LOG_LEVEL_ERROR
        sys.stderr.write(text.decode("utf-8", "replace"))


L.llama_log_set(_log, ctypes.c_void_p(0))
L.llama_backend_init()


class Model:
    def __init__(self, path, n_ctx=1024):
        self.path = path
        mp = L.llama_model_default_params()
        mp.n_gpu_layers = 0
        # llama.cpp's plain CPU kernels: no weight repacking, no AMX (as `--no-repack`). Its AMX
        # path (batched Q4_0/Q4_1/Q8_0 matmuls) segfaults on ldtilecfg on these VMs, and the
        # reference should not depend on which CPU extensions a machine has.
        mp.use_extra_bufts = False
        self.model = L.llama_model_load_from_file(path.encode(), mp)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        cp = L.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_batch = n_ctx
        cp.n_ubatch = n_ctx
        cp.n_threads = 1
        cp.n_threads_batch = 1
        cp.type_k = L.GGML_TYPE_F32
        cp.type_v = L.GGML_TYPE_F32
        cp.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_DISABLED
        cp.no_perf = True
        self.n_ctx = n_ctx
        self.ctx = L.llama_init_from_model(self.model, cp)
        if not self.ctx:
            raise RuntimeError(f"llama.cpp could not create a context for {path}")
        self.batch = L.llama_batch_init(n_ctx, 0, 1)
        self.n_past = 0

    def close(self):
        if self.ctx:
            L.llama_batch_free(self.batch)
            L.llama_free(self.ctx)
            L.llama_model_free(self.model)
            self.ctx = None

    def meta(self, key):
        buf = ctypes.create_string_buffer(4096)
        n = L.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace") if n >= 0 else None

    # -- tokens
    def tokenize(self, text: bytes, add_special=True, parse_special=True):
        n_max = len(text) + 16
        arr = (L.llama_token * n_max)()
        n = L.llama_tokenize(self.vocab, text, len(text), arr, n_max, add_special, parse_special)
        if n < 0:
            arr = (L.llama_token * -n)()
            n = L.llama_tokenize(self.vocab, text, len(text), arr, -n, add_special, parse_special)
        return list(arr[:n])

    def piece(self, tok, special=False):
        buf = ctypes.create_string_buffer(256)
        n = L.llama_token_to_piece(self.vocab, tok, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = L.llama_token_to_piece(self.vocab, tok, buf, len(buf), 0, special)
        return buf.raw[:n]

    def is_eog(self, tok):
        return bool(L.llama_vocab_is_eog(self.vocab, tok))

    # -- evaluation
    def reset(self):
        L.llama_memory_clear(L.llama_get_memory(self.ctx), True)
        self.n_past = 0

    def decode(self, ids, all_logits=False):
        """Decode ids as one batch after what was decoded before; logits (rows) of the last, or all."""
        if self.n_past + len(ids) > self.n_ctx:
            raise RuntimeError(f"context {self.n_ctx} exceeded")
        b = self.batch
        b.n_tokens = len(ids)
        for i, t in enumerate(ids):
            b.token[i] = t
            b.pos[i] = self.n_past + i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = 1 if (all_logits or i == len(ids) - 1) else 0
        rc = L.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        self.n_past += len(ids)
        rows = range(len(ids)) if all_logits else [len(ids) - 1]
        out = []
        for i in rows:
            p = L.llama_get_logits_ith(self.ctx, i)
            out.append(np.ctypeslib.as_array(p, shape=(self.n_vocab,)).copy())
        return out

    def logits_seq(self, ids):
        """Logits after each of ids, fed one token per decode from position 0 (as `aos-llama logits`)."""
        self.reset()
        return np.stack([self.decode([t])[0] for t in ids])

    def greedy(self, prompt_ids, n):
        """Greedy continuation: (generated ids, logits row before each generated id, stop reason)."""
        self.reset()
        row = self.decode(prompt_ids)[0]
        ids, rows = [], []
        stop = "length"
        for _ in range(n):
            t = int(np.argmax(row))  # first maximum, as llama.cpp's greedy sampler
            ids.append(t)
            rows.append(row)
            if self.is_eog(t):
                stop = "eog"
                break
            if self.n_past >= self.n_ctx:
                stop = "context"
                break
            row = self.decode([t])[0]
        return ids, rows, stop

    def text_of(self, ids):
        """The bytes llama-completion prints for generated ids (control tokens print nothing)."""
        return b"".join(self.piece(t) for t in ids)


def top_k(row, k):
    idx = np.argsort(-row, kind="stable")[:k]
    return [(int(i), float(row[i])) for i in idx]


def completion_text(model_path, prompt, n):
    """llama-completion's greedy output (stdout bytes, without the trailing ' [end of text]')."""
    exe = os.path.join(os.environ["LLAMA_CPP_BIN"], "llama-completion")
    cmd = [exe, "-m", model_path, "-t", "1", "--temp", "0", "-n", str(n), "-no-cnv", "--no-display-prompt",
           "-ctk", "f32", "-ctv", "f32", "-fa", "off", "--no-repack", "-p", prompt]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.decode()[-2000:]}")
    out = r.stdout
    # This version prints "\n\n" when it exits, after " [end of text]\n" if the model ended.
    if out.endswith(b"\n\n"):
        out = out[:-2]
    eot = b" [end of text]\n"
    if out.endswith(eot):
        out = out[: -len(eot)]
    return out, cmd


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("greedy")
    g.add_argument("-m", "--model", required=True)
    g.add_argument("-p", "--prompt", required=True)
    g.add_argument("-n", type=int, default=32)
    g.add_argument("--top", type=int, default=5)
    lg = sub.add_parser("logits")
    lg.add_argument("-m", "--model", required=True)
    lg.add_argument("--ids", required=True)
    tk = sub.add_parser("tokenize")
    tk.add_argument("-m", "--model", required=True)
    tk.add_argument("-p", "--prompt", required=True)
    cc = sub.add_parser("crosscheck")
    cc.add_argument("-m", "--model", required=True)
    cc.add_argument("-p", "--prompt", required=True)
    cc.add_argument("-n", type=int, default=32)
    a = ap.parse_args()

    m = Model(a.model)
    if a.cmd == "greedy":
        pids = m.tokenize(a.prompt.encode())
        ids, rows, stop = m.greedy(pids, a.n)
        json.dump({"prompt_ids": pids, "ids": ids, "stop": stop,
                   "text": m.text_of(ids).decode("utf-8", "replace"),
                   "top": [top_k(r, a.top) for r in rows]}, sys.stdout)
        print()
    elif a.cmd == "logits":
        ids = [int(x) for x in a.ids.split(",")]
        json.dump({"logits": m.logits_seq(ids).tolist()}, sys.stdout)
        print()
    elif a.cmd == "tokenize":
        print(json.dumps(m.tokenize(a.prompt.encode())))
    elif a.cmd == "crosscheck":
        pids = m.tokenize(a.prompt.encode())
        ids, _, stop = m.greedy(pids, a.n)
        ours = m.text_of(ids)
        theirs, cmd = completion_text(a.model, a.prompt, a.n)
        ok = ours == theirs
        print(f"{'OK' if ok else 'MISMATCH'}: bindings greedy ({len(ids)} tokens, stop {stop}) "
              f"{'==' if ok else '!='} llama-completion")
        print(f"  bindings:         {ours!r}\n  llama-completion: {theirs!r}")
        sys.exit(0 if ok else 1)
    m.close()


if __name__ == "__main__":
    main()
