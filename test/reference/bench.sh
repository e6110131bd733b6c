#!/usr/bin/env bash
# The speed benchmark (issue 12; README "Speed"): aos-llama natively and AOS.wasm against
# llama.cpp, one thread, on the same GGUF files, interleaved, medians, ratios.
#   test/reference/bench.sh [bench.py options: --rounds 3 --tg 64 --pp 64 --threads 1 --no-wasm --no-wllama]
# Builds (cached): llama.cpp from the llama-cpp-python sdist and the real SmolLM2 / Gemma 3 files
# (fetch.sh), the random-weight 110M- and Llama-3.2-1B-shaped files in F32, Q8_0, Q4_0, Q4_K_M
# (make-models.py with llama-quantize; ~7.5 GB, ~5 min cold), the release CLI and AOS.wasm;
# installs Debian's chromium and the pinned npm packages of test/node (ao-loader) and
# test/reference/wllama (wllama, playwright-core) for the wasm-against-wasm table.
#   BENCH_FILES="a.gguf b.gguf"   instead of that set
# Takes ~1.5 h at 3 rounds; run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/aos-llama/target}
bench_dir=${AOS_BENCH_DIR:-$HOME/.cache/aos-llama/bench}

bash test/reference/fetch.sh >/dev/null
# shellcheck disable=SC1091
source "${AOS_REF_CACHE:-$HOME/.cache/aos-llama/reference}/env.sh"
need=""
[ -x /usr/bin/time ] || need+=" time"
[ -x /usr/bin/chromium ] || need+=" chromium"
if [ -n "$need" ]; then
  # shellcheck disable=SC2086
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
npm_cache=${AOS_BUILD_CACHE:-$HOME/.cache/aos-llama}/npm-cache
for d in test/node test/reference/wllama; do
  [ -d "$d/node_modules" ] || (cd "$d" && npm ci --cache "$npm_cache" --no-audit --no-fund --loglevel=error >&2)
done

if [ -z "${BENCH_FILES:-}" ]; then
  BENCH_FILES=""
  for set in bench-110m bench-1b; do
    "$REF_PYTHON" test/reference/make-models.py --big "$set" "$bench_dir/$set" >&2
    for q in F32 Q8_0 Q4_0 Q4_K_M; do BENCH_FILES+=" $bench_dir/$set/$set-$q.gguf"; done
  done
  BENCH_FILES+=" $SMOLLM2 $GEMMA3"
fi

cargo build --release --locked -p aos-llama >&2
export AOS_LLAMA_BIN=$CARGO_TARGET_DIR/release/aos-llama
./build.sh >&2
export AOS_WASM=$PWD/AOS.wasm
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|fma|avx512f|avx512bw|avx512_vnni|avx_vnni' | tr '\n' ' ')
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); $flags"
# shellcheck disable=SC2086
exec "$REF_PYTHON" test/reference/bench.py "$@" $BENCH_FILES
