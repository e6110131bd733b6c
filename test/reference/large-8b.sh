#!/usr/bin/env bash
# README "Large models" (issue 9): a random-weight Llama-3-8B-shaped Q4_K_M GGUF (~4.9 GB,
# written by make-models.py --big llama3-8b: F16 base streamed to disk, then llama-quantize)
# natively (peak RSS, load, tokens/s) and in AOS.wasm under the wasmtime compute unit with a
# 16 GiB Memory-Limit (test/tests/large_8b.rs: load, linear memory, tokens/s, same tokens).
# Needs ~25 GB of disk while the model is made (the F16 base is deleted) and ~11 GB of RAM.
#
#   test/reference/large-8b.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/aos-llama/target}
export AOS_REF_CACHE="${AOS_REF_CACHE:-$HOME/.cache/aos-llama/reference}"
bash "$here/fetch.sh" >/dev/null
# shellcheck disable=SC1091
source "$AOS_REF_CACHE/env.sh"
"$REF_PYTHON" "$here/make-models.py" --big llama3-8b "$AOS_REF_CACHE/big-8b"
model=$AOS_REF_CACHE/big-8b/llama3-8b-Q4_K_M.gguf
cd "$repo"
[ -f AOS.wasm ] || ./build.sh
# The dev profile builds the engine at opt-level 3 (Cargo.toml): the same kernels as --release.
cargo build --locked -p aos-llama
bin=$CARGO_TARGET_DIR/debug/aos-llama
"$bin" inspect "$model" | grep -E '^(size|config|matrices|tokenizer):'
echo "--- native (one thread), greedy, 16 tokens after the prompt"
/usr/bin/time -f 'native: peak RSS %M KiB, %e s wall' "$bin" run --model "$model" --context 2048 \
  --prompt 'The history of the Roman Empire' --temperature 0 --steps 22 >/dev/null
echo "--- AOS.wasm under the wasmtime compute unit"
AOS_8B_GGUF=$model AOS_LLAMA_BIN=$bin cargo test --locked -p ao-cu --test large_8b -- --ignored --nocapture 2>&1 |
  grep -E '^8B-shaped|^test |panicked|assert'
