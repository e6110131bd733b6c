#!/usr/bin/env python3
"""aos-llama against llama.cpp, side by side on the same GGUF files and machine (issue 12).

For each file, ROUNDS rounds; each round runs, interleaved (the order reverses every other round
so neither engine always runs on a warmer machine):
  - llama.cpp: `llama-bench -m F -t N -p PP -n TG -r 1 --repack 0 -o json` (its plain CPU
    kernels: the AMX/repack path faults on these VMs): token generation and prompt processing
    tokens/s;
  - aos-llama natively: `aos-llama run --model F --prompt P --temperature 0 --threads N`: its
    "achieved tok/s" line gives generation and prompt tokens/s; peak RSS from /usr/bin/time;
  - AOS.wasm under the wasmtime compute unit (`aos-llama eval --stats`, one process, three
    Eval messages: Llama.load, Llama.setPrompt(P), TG x Llama.next()): each message's compute
    time gives load, prompt and generation figures; the last message's linear memory is the
    peak (wasm memory only grows). One thread: an AO process has one.
Prints the medians and the ratios to llama.cpp as a Markdown table (what README "Speed" quotes),
and the raw medians as JSON on stderr. The figures only compare within one run on a quiet machine.

  bench.py [--rounds 3] [--tg 64] [--pp 64] [--threads 1] [--no-wasm] FILE.gguf ...
  env: AOS_LLAMA_BIN (a release build), LLAMA_CPP_BIN (fetch.sh's env.sh); AOS_WASM (default
  AOS.wasm at the repository root)
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMPT_WORDS = "Once upon a time, in a land far away, there lived a"


def llama_bench(path, pp, tg, threads):
    exe = os.path.join(os.environ["LLAMA_CPP_BIN"], "llama-bench")
    r = subprocess.run([exe, "-m", path, "-t", str(threads), "-p", str(pp), "-n", str(tg), "-r", "1", "--repack", "0",
                        "-o", "json"], capture_output=True, text=True, errors="replace", timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"llama-bench failed on {path}: {r.stderr[-1500:]}")
    out = {}
    for row in json.loads(r.stdout):
        if row["n_prompt"] > 0 and row["n_gen"] == 0:
            out["pp"] = row["avg_ts"]
        elif row["n_gen"] > 0 and row["n_prompt"] == 0:
            out["tg"] = row["avg_ts"]
    return out


def aos_native(path, prompt, tg, threads):
    exe = os.environ["AOS_LLAMA_BIN"]
    # --steps counts positions: the prompt's (but the last), then the generated tokens.
    steps = prompt_len(path, prompt) - 1 + tg
    r = subprocess.run(["/usr/bin/time", "-f", "%M", exe, "run", "--model", path, "--prompt", prompt, "--temperature",
                        "0", "--steps", str(steps), "--context", "2048", "--threads", str(threads)],
                       capture_output=True, text=True, errors="replace", timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"aos-llama run failed on {path}: {r.stderr[-1500:]}")
    m = re.search(r"achieved tok/s: [\d.]+ \((\d+) tokens in ([\d.]+) s; prompt (\d+) tokens in ([\d.]+) s", r.stderr)
    if not m:
        raise RuntimeError(f"no tok/s line in: {r.stderr[-500:]}")
    rss_kib = int(r.stderr.strip().splitlines()[-1])
    # The first generated token is sampled from the prompt's logits: n tokens cost n - 1 passes.
    return {"tg": (int(m.group(1)) - 1) / float(m.group(2)), "pp": int(m.group(3)) / float(m.group(4)),
            "rss": rss_kib * 1024, "prompt_tokens": int(m.group(3))}


_prompt_len = {}


def prompt_len(path, prompt):
    """Prompt tokens (BOS included) in this file's vocabulary, from `aos-llama tokenize`."""
    if path not in _prompt_len:
        r = subprocess.run([os.environ["AOS_LLAMA_BIN"], "tokenize", "--model", path, "--json", prompt],
                           capture_output=True, text=True, errors="replace", timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"aos-llama tokenize failed on {path}: {r.stderr[-800:]}")
        _prompt_len[path] = len(json.loads(r.stdout))
    return _prompt_len[path]


def aos_wasm(path, prompt, tg):
    exe = os.environ["AOS_LLAMA_BIN"]
    module = os.environ.get("AOS_WASM", os.path.join(REPO, "AOS.wasm"))
    with tempfile.TemporaryDirectory() as d:
        txid = "benchbenchbenchbenchbenchbenchbenchbench000"
        os.symlink(os.path.abspath(path), os.path.join(d, txid))
        codes = [f'Llama.load("/data/{txid}", {{ context = 2048 }}) return "loaded"',
                 f'Llama.setPrompt({json.dumps(prompt)}) return "prompt set"',
                 f'local n = 0 for _ = 1, {tg} do if Llama.next() == nil then break end n = n + 1 end return n']
        r = subprocess.run([exe, "eval", "--module", module, "--data-dir", d, "--memory-limit", str(16 << 30),
                            "--stats"] + codes, capture_output=True, text=True, errors="replace", timeout=3600)
        if r.returncode != 0:
            raise RuntimeError(f"aos-llama eval failed on {path}: {r.stderr[-1500:]}")
        stats = re.findall(r"stats: eval \d+: ([\d.]+) s, linear memory (\d+) bytes", r.stderr)
        generated = int(r.stdout.strip().splitlines()[-1])
        if len(stats) != 3 or generated < 2:
            raise RuntimeError(f"unexpected eval output: {r.stdout[-300:]} {r.stderr[-300:]}")
        return {"load": float(stats[0][0]), "pp": prompt_len(path, prompt) / float(stats[1][0]),
                "tg": (generated - 1) / float(stats[2][0]), "mem": int(stats[2][1])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tg", type=int, default=64, help="tokens generated per run")
    ap.add_argument("--pp", type=int, default=64, help="prompt tokens (about, for aos-llama: whole sentences)")
    ap.add_argument("--threads", type=int, default=1, help="native threads, both engines (AOS.wasm: one)")
    ap.add_argument("--no-wasm", action="store_true")
    a = ap.parse_args()
    # A prompt of about --pp tokens (llama-bench uses random ids; the cost depends only on the count).
    prompt = " ".join([PROMPT_WORDS] * max(1, round(a.pp / 13)))
    results = []
    for f in a.files:
        s = {k: [] for k in ("lc_tg", "lc_pp", "aos_tg", "aos_pp", "wasm_tg", "wasm_pp", "rss", "mem")}
        for r in range(a.rounds):
            order = ["lc", "aos", "wasm"] if r % 2 == 0 else ["wasm", "aos", "lc"]
            for who in order:
                if who == "lc":
                    x = llama_bench(f, a.pp, a.tg, a.threads)
                    s["lc_tg"].append(x["tg"])
                    s["lc_pp"].append(x["pp"])
                elif who == "aos":
                    x = aos_native(f, prompt, a.tg, a.threads)
                    s["aos_tg"].append(x["tg"])
                    s["aos_pp"].append(x["pp"])
                    s["rss"].append(x["rss"])
                elif not a.no_wasm:
                    x = aos_wasm(f, prompt, a.tg)
                    s["wasm_tg"].append(x["tg"])
                    s["wasm_pp"].append(x["pp"])
                    s["mem"].append(x["mem"])
            print(f"{os.path.basename(f)} round {r + 1}: " + ", ".join(
                f"{k} {v[-1]:.2f}" for k, v in s.items() if v and k not in ("rss", "mem")), file=sys.stderr, flush=True)
        med = {k: statistics.median(v) for k, v in s.items() if v}
        med["file"] = os.path.basename(f)
        med["size"] = os.path.getsize(f)
        med["prompt_tokens"] = prompt_len(f, prompt)
        results.append(med)

    nan = float("nan")
    print(f"\nMedians of {a.rounds} interleaved rounds; tokens/s; {a.threads} native thread(s), AOS.wasm one; "
          f"tg = {a.tg} generated tokens, pp = a {a.pp}-token prompt (aos-llama: "
          f"{'/'.join(sorted({str(m['prompt_tokens']) for m in results}))} tokens); ratio = aos-llama / llama.cpp.\n")
    print("| file | MB | llama.cpp tg | native tg | ratio | wasm tg | ratio | llama.cpp pp | native pp | ratio "
          "| wasm pp | ratio | native RSS MB | wasm memory MB |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for m in results:
        g = m.get
        print(f"| {m['file']} | {m['size'] / 1e6:.0f} | {m['lc_tg']:.2f} | {m['aos_tg']:.2f} | "
              f"{m['aos_tg'] / m['lc_tg']:.2f}x | {g('wasm_tg', nan):.2f} | {g('wasm_tg', nan) / m['lc_tg']:.2f}x | "
              f"{m['lc_pp']:.1f} | {m['aos_pp']:.1f} | {m['aos_pp'] / m['lc_pp']:.2f}x | {g('wasm_pp', nan):.1f} | "
              f"{g('wasm_pp', nan) / m['lc_pp']:.2f}x | {m['rss'] / 1e6:.0f} | {g('mem', nan) / 1e6:.0f} |")
    json.dump(results, sys.stderr)
    print(file=sys.stderr)


if __name__ == "__main__":
    main()
