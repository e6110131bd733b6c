#!/usr/bin/env python3
"""aos-llama against llama.cpp, side by side on the same GGUF files and machine (issue 12).

For each file, ROUNDS rounds; each round runs, interleaved (the order alternates per round so
neither engine always runs on a warmer machine):
  - llama.cpp: `llama-bench -m F -t 1 -p PP -n TG -r 1 --repack 0 -o json` (one thread, its
    plain CPU kernels: the AMX/repack path faults on these VMs), token generation and prompt
    processing tokens/s;
  - aos-llama natively: `aos-llama run --model F --prompt P --temperature 0 --steps S`: its
    "achieved tok/s" line gives generation and prompt tokens/s (one thread);
  - AOS.wasm under the wasmtime compute unit (`aos-llama eval --data-dir`): the wall time of
    a message doing load + run(TG) minus one doing load + run(0) gives generation tokens/s
    (the load and per-message costs cancel).
Prints the medians and the ratios aos-llama / llama.cpp, and peak RSS (native) from
/usr/bin/time. Needs a quiet machine: the figures are only comparable within one run.

  bench.py [--rounds 3] [--tg 64] [--pp 64] [--threads N] [--no-wasm] FILE.gguf ...
  --threads N: llama-bench -t N against aos-llama run --threads N natively (AOS.wasm has one
  thread either way)
  env: AOS_LLAMA_BIN, LLAMA_CPP_BIN (fetch.sh's env.sh); AOS.wasm at the repository root
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMPT_WORD = "Once upon a time, in a land far away, there lived a"


def llama_bench(path, pp, tg, threads):
    exe = os.path.join(os.environ["LLAMA_CPP_BIN"], "llama-bench")
    r = subprocess.run([exe, "-m", path, "-t", str(threads), "-p", str(pp), "-n", str(tg), "-r", "1", "--repack", "0",
                        "-o", "json"], capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"llama-bench failed: {r.stderr[-1500:]}")
    rows = json.loads(r.stdout)
    out = {}
    for row in rows:
        if row["n_prompt"] > 0 and row["n_gen"] == 0:
            out["pp"] = row["avg_ts"]
        elif row["n_gen"] > 0 and row["n_prompt"] == 0:
            out["tg"] = row["avg_ts"]
    return out


def aos_native(path, prompt, steps, threads):
    exe = os.environ["AOS_LLAMA_BIN"]
    r = subprocess.run(["/usr/bin/time", "-f", "%M", exe, "run", "--model", path, "--prompt", prompt, "--temperature",
                        "0", "--steps", str(steps), "--context", "2048", "--threads", str(threads)], capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"aos-llama run failed: {r.stderr[-1500:]}")
    m = re.search(r"achieved tok/s: ([\d.]+) \((\d+) tokens in [\d.]+ s; prompt (\d+) tokens in ([\d.]+) s", r.stderr)
    if not m:
        raise RuntimeError(f"no tok/s line in: {r.stderr[-500:]}")
    rss_kib = int(r.stderr.strip().splitlines()[-1])
    return {"tg": float(m.group(1)), "pp": int(m.group(3)) / float(m.group(4)), "rss": rss_kib * 1024}


def aos_wasm(path, tg):
    exe = os.environ["AOS_LLAMA_BIN"]
    with tempfile.TemporaryDirectory() as d:
        txid = "benchbenchbenchbenchbenchbenchbenchbench000"
        os.symlink(os.path.abspath(path), os.path.join(d, txid))

        def once(n):
            code = (f'Llama.load("/data/{txid}", {{ context = 2048 }}) Llama.setPrompt({json.dumps(PROMPT_WORD)}) '
                    f'return Llama.run({n})')
            t = time.perf_counter()
            r = subprocess.run([exe, "eval", "--module", os.path.join(REPO, "AOS.wasm"), "--data-dir", d,
                                "--memory-limit", str(16 << 30), code], capture_output=True, text=True, timeout=3600)
            if r.returncode != 0:
                raise RuntimeError(f"aos-llama eval failed: {r.stderr[-1500:]}")
            return time.perf_counter() - t

        dt = once(tg) - once(0)
        # Load-time noise larger than the generation itself: no figure (raise --tg).
        return {"tg": tg / dt if dt > 0 else float("nan")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tg", type=int, default=64)
    ap.add_argument("--pp", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-wasm", action="store_true")
    a = ap.parse_args()
    # A prompt of about --pp tokens for aos-llama (llama-bench uses random ids).
    prompt = " ".join([PROMPT_WORD] * max(1, a.pp // 12))
    results = []
    for f in a.files:
        s = {"lc_tg": [], "lc_pp": [], "aos_tg": [], "aos_pp": [], "wasm_tg": [], "rss": []}
        for r in range(a.rounds):
            order = ["lc", "aos", "wasm"] if r % 2 == 0 else ["wasm", "aos", "lc"]
            for who in order:
                if who == "lc":
                    x = llama_bench(f, a.pp, a.tg, a.threads)
                    s["lc_tg"].append(x["tg"])
                    s["lc_pp"].append(x["pp"])
                elif who == "aos":
                    # --steps counts positions: prompt tokens - 1 + generated (about)
                    x = aos_native(f, prompt, a.pp + a.tg, a.threads)
                    s["aos_tg"].append(x["tg"])
                    s["aos_pp"].append(x["pp"])
                    s["rss"].append(x["rss"])
                elif not a.no_wasm:
                    s["wasm_tg"].append(aos_wasm(f, a.tg)["tg"])
            print(f"{os.path.basename(f)} round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in s.items()
                                                                       if v and k != "rss"), flush=True)
        med = {k: statistics.median(v) for k, v in s.items() if v}
        med["file"] = os.path.basename(f)
        med["size"] = os.path.getsize(f)
        results.append(med)

    print(f"\nmedians of {a.rounds} interleaved rounds, {a.threads} thread(s) natively; tg = generation, pp = prompt tokens/s")
    print(f"{'file':<36} {'MB':>6} {'llama.cpp tg':>12} {'aos tg':>8} {'ratio':>6} {'wasm tg':>8} {'ratio':>6} "
          f"{'llama.cpp pp':>12} {'aos pp':>8} {'ratio':>6} {'RSS MB':>7}")
    for m in results:
        w = m.get("wasm_tg")
        print(f"{m['file']:<36} {m['size'] / 1e6:>6.0f} {m['lc_tg']:>12.2f} {m['aos_tg']:>8.2f} "
              f"{m['aos_tg'] / m['lc_tg']:>5.2f}x {w if w else float('nan'):>8.2f} "
              f"{(w / m['lc_tg']) if w else float('nan'):>5.2f}x {m['lc_pp']:>12.2f} {m['aos_pp']:>8.2f} "
              f"{m['aos_pp'] / m['lc_pp']:>5.2f}x {m['rss'] / 1e6:>7.0f}")
    json.dump(results, sys.stderr)
    print(file=sys.stderr)


if __name__ == "__main__":
    main()
