#!/usr/bin/env python3
"""aos-llama against llama.cpp, side by side on the same GGUF files and machine (issue 12).

For each file, ROUNDS rounds; each round runs, interleaved (the order reverses every other round
so neither engine always runs on a warmer machine):
  - llama.cpp: `llama-bench -m F -t N -r 1 --repack 0 -o json` (its plain CPU kernels: the
    AMX/repack path faults on these VMs) twice: `-p PP -n 0` for prompt processing, and
    `-p 0 -n TG -d D` for token generation after D untimed tokens, D the prompt's length in the
    file's vocabulary, so that it generates at the positions the other engines do (after the
    prompt: attention grows with the position);
  - aos-llama natively: `aos-llama run --model F --prompt P --temperature 0 --threads N`: its
    "achieved tok/s" line gives generation and prompt tokens/s; peak RSS from /usr/bin/time;
  - AOS.wasm under the wasmtime compute unit (`aos-llama eval --stats`, one process, three
    Eval messages: Llama.load, Llama.setPrompt(P), TG x Llama.next()): each message's compute
    time gives load, prompt and generation figures; the last message's linear memory is the
    peak (wasm memory only grows). One thread: an AO process has one;
  - AOS.wasm under V8, in the real @permaweb/ao-loader (test/node/bench-gguf.mjs: the same three
    messages, each timed as the message minus an idle one);
  - llama.cpp in wasm: npm @wllama/wllama, single thread, in headless Chromium (V8 too;
    test/reference/wllama/bench.mjs): llama.cpp's own prompt and generation timings.
Prints the medians and the ratios as two Markdown tables (what README "Speed" quotes): native and
AOS.wasm against llama.cpp natively; AOS.wasm against llama.cpp in wasm. The raw medians go to
stderr as JSON. The figures only compare within one run on a quiet machine. A wasm engine that
cannot run a file (wllama's 4 GB wasm32 memory) gets n/a, with the reason on stderr.

  bench.py [--rounds 3] [--tg 64] [--pp 64] [--threads 1] [--no-wasm] [--no-wllama] FILE.gguf ...
  env: AOS_LLAMA_BIN (a release build), LLAMA_CPP_BIN (fetch.sh's env.sh); AOS_WASM (default
  AOS.wasm at the repository root); test/node and test/reference/wllama's npm packages installed
  (bench.sh does it)
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


def llama_bench(path, pp, tg, threads, depth):
    """Prompt processing (PP tokens from position 0) and token generation (TG tokens after DEPTH
    untimed ones: the positions aos-llama and wllama generate at, after the prompt)."""
    exe = os.path.join(os.environ["LLAMA_CPP_BIN"], "llama-bench")
    out = {}
    for key, args in (("pp", ["-p", str(pp), "-n", "0"]), ("tg", ["-p", "0", "-n", str(tg), "-d", str(depth)])):
        r = subprocess.run([exe, "-m", path, "-t", str(threads)] + args + ["-r", "1", "--repack", "0", "-o", "json"],
                           capture_output=True, text=True, errors="replace", timeout=3600)
        if r.returncode != 0:
            raise RuntimeError(f"llama-bench failed on {path}: {r.stderr[-1500:]}")
        rows = json.loads(r.stdout)
        if len(rows) != 1:
            raise RuntimeError(f"llama-bench gave {len(rows)} results for {key} on {path}")
        out[key] = rows[0]["avg_ts"]
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


def node_json(args, what, path):
    """One JSON line from a Node script (bench-gguf.mjs, wllama/bench.mjs)."""
    r = subprocess.run(["node"] + args, capture_output=True, text=True, errors="replace", timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"{what} failed on {path}: {r.stderr[-1500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def aos_v8(path, prompt, tg):
    return node_json(["--experimental-wasm-memory64", "--expose-gc", os.path.join(REPO, "test/node/bench-gguf.mjs"),
                      path, prompt, str(tg), "2048"], "AOS.wasm under ao-loader", path)


_wllama_version = set()


def wllama(path, prompt, tg):
    x = node_json([os.path.join(REPO, "test/reference/wllama/bench.mjs"), path, prompt, str(tg), "2048"], "wllama",
                  path)
    if x["threads"] != 1 or x["multithread"]:
        raise RuntimeError(f"wllama ran with {x['threads']} threads (multithread {x['multithread']}), not one")
    _wllama_version.add(x["version"])
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tg", type=int, default=64, help="tokens generated per run")
    ap.add_argument("--pp", type=int, default=64, help="prompt tokens (about, for aos-llama: whole sentences)")
    ap.add_argument("--threads", type=int, default=1, help="native threads, both engines (AOS.wasm: one)")
    ap.add_argument("--no-wasm", action="store_true", help="natively only (no AOS.wasm, no wllama)")
    ap.add_argument("--no-wllama", action="store_true", help="no V8 pair (AOS.wasm under ao-loader, wllama)")
    a = ap.parse_args()
    # A prompt of about --pp tokens (llama-bench uses random ids; the cost depends only on the count).
    prompt = " ".join([PROMPT_WORDS] * max(1, round(a.pp / 13)))
    results = []
    for f in a.files:
        s = {k: [] for k in ("lc_tg", "lc_pp", "aos_tg", "aos_pp", "wasm_tg", "wasm_pp", "v8_tg", "v8_pp", "wl_tg",
                             "wl_pp", "rss", "mem")}
        who_all = ["lc", "aos"] + ([] if a.no_wasm else ["wasm"]) + ([] if a.no_wasm or a.no_wllama else ["v8", "wl"])
        failed = {}
        for r in range(a.rounds):
            order = who_all if r % 2 == 0 else who_all[::-1]
            for who in order:
                if who in failed:
                    continue
                if who == "lc":
                    x = llama_bench(f, a.pp, a.tg, a.threads, prompt_len(f, prompt))
                    s["lc_tg"].append(x["tg"])
                    s["lc_pp"].append(x["pp"])
                elif who == "aos":
                    x = aos_native(f, prompt, a.tg, a.threads)
                    s["aos_tg"].append(x["tg"])
                    s["aos_pp"].append(x["pp"])
                    s["rss"].append(x["rss"])
                elif who == "wasm":
                    x = aos_wasm(f, prompt, a.tg)
                    s["wasm_tg"].append(x["tg"])
                    s["wasm_pp"].append(x["pp"])
                    s["mem"].append(x["mem"])
                else:
                    # The V8 pair may not fit a file (wllama: wasm32's 4 GB; ao-loader: its Memory
                    # copies): n/a for that engine, the run goes on.
                    try:
                        x = (aos_v8 if who == "v8" else wllama)(f, prompt, a.tg)
                    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
                        failed[who] = str(e)
                        print(f"{os.path.basename(f)}: {who} n/a: {str(e)[-600:]}", file=sys.stderr, flush=True)
                        continue
                    s[f"{who}_tg"].append(x["tg"])
                    s[f"{who}_pp"].append(x["pp"])
            print(f"{os.path.basename(f)} round {r + 1}: " + ", ".join(
                f"{k} {v[-1]:.2f}" for k, v in s.items() if v and k not in ("rss", "mem")), file=sys.stderr, flush=True)
        med = {k: statistics.median(v) for k, v in s.items() if v}
        med["file"] = os.path.basename(f)
        med["size"] = os.path.getsize(f)
        med["prompt_tokens"] = prompt_len(f, prompt)
        results.append(med)

    def cell(m, k, digits):
        return f"{m[k]:.{digits}f}" if k in m else "n/a"

    def ratio(m, k, base):
        return f"{m[k] / m[base]:.2f}x" if k in m and base in m else "n/a"

    print(f"\nMedians of {a.rounds} interleaved rounds; tokens/s; {a.threads} native thread(s), AOS.wasm one; "
          f"tg = {a.tg} tokens generated after the prompt (llama.cpp: `-d` its length), pp = a {a.pp}-token "
          f"prompt (aos-llama: {'/'.join(sorted({str(m['prompt_tokens']) for m in results}))} tokens); "
          f"ratio = aos-llama / llama.cpp.\n")
    print("| file | MB | llama.cpp tg | native tg | ratio | wasm tg | ratio | llama.cpp pp | native pp | ratio "
          "| wasm pp | ratio | native RSS MB | wasm memory MB |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for m in results:
        mem = f"{m['mem'] / 1e6:.0f}" if "mem" in m else "n/a"
        print(f"| {m['file']} | {m['size'] / 1e6:.0f} | {cell(m, 'lc_tg', 2)} | {cell(m, 'aos_tg', 2)} | "
              f"{ratio(m, 'aos_tg', 'lc_tg')} | {cell(m, 'wasm_tg', 2)} | {ratio(m, 'wasm_tg', 'lc_tg')} | "
              f"{cell(m, 'lc_pp', 1)} | {cell(m, 'aos_pp', 1)} | {ratio(m, 'aos_pp', 'lc_pp')} | {cell(m, 'wasm_pp', 1)} | "
              f"{ratio(m, 'wasm_pp', 'lc_pp')} | {m['rss'] / 1e6:.0f} | {mem} |")
    if not a.no_wasm and not a.no_wllama:
        print(f"\nIn wasm, one thread: AOS.wasm under V8 (@permaweb/ao-loader, Node {node_version()}) and under "
              f"wasmtime (the compute unit) against llama.cpp in wasm (@wllama/wllama, llama.cpp "
              f"{'/'.join(sorted(_wllama_version)) or '?'}, Chromium's V8); ratio = AOS.wasm / wllama.\n")
        print("| file | wllama tg | AOS.wasm V8 tg | ratio | AOS.wasm wasmtime tg | ratio | wllama pp | AOS.wasm V8 pp "
              "| ratio | AOS.wasm wasmtime pp | ratio |")
        print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for m in results:
            print(f"| {m['file']} | {cell(m, 'wl_tg', 2)} | {cell(m, 'v8_tg', 2)} | {ratio(m, 'v8_tg', 'wl_tg')} | "
                  f"{cell(m, 'wasm_tg', 2)} | {ratio(m, 'wasm_tg', 'wl_tg')} | {cell(m, 'wl_pp', 1)} | "
                  f"{cell(m, 'v8_pp', 1)} | {ratio(m, 'v8_pp', 'wl_pp')} | {cell(m, 'wasm_pp', 1)} | "
                  f"{ratio(m, 'wasm_pp', 'wl_pp')} |")
    json.dump(results, sys.stderr)
    print(file=sys.stderr)


def node_version():
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
