#!/bin/sh
# The ggml kernels in wasm32 or wasm64 under node (V8): the bit-identity check (simd128 against
# scalar, every type, rows of 1..=17 blocks; the f32 tiles and the attention kernels too;
# ./test.sh runs it) and, with `bench`, ns per
# row of a 1024 x 4096 product for each type (`bench 768`: 1024 x 768). Built in release
# (debug builds add a precondition check to every pointer offset) and run with
# --no-liftoff: V8 first runs wasm in its baseline compiler and tiers hot functions up
# in the background, so a short benchmark would otherwise time either compiler, at
# random (2x apart). Its matrix (1.3-8 MB by type) is read again and again from cache, so it
# times the arithmetic, not a model's weights streaming from memory: twice it pointed the wrong
# way (a volatile store ordering the Q8_0 rows' work, and prompt tokens one at a time per row:
# README "Speed"). Measure what it favours on real models with AOS.wasm (test/reference/bench.py).
# Needs a rustc that can build core for wasm32/wasm64-unknown-unknown (Debian's rustc-web +
# rust-web-src, which ./build.sh installs; RUSTC_BOOTSTRAP=1 -Zbuild-std) and a wasm
# linker (rustup's rust-lld).
#   llama/wasm-probe/run.sh [--wasm64] [bench [COLUMNS | f32]]   (f32: only the prompt tiles of f32 rows)
# --wasm64 (first argument only): built as memory64, as AOS.wasm is (V8 then bounds-checks
# every load), through build.sh's table rewrite and wasm-opt -O2 with build.sh's features
# and --no-inline pattern.
set -eu
# Relative cache paths mean the caller's directory, as in build.sh.
[ -z "${AOS_BUILD_CACHE:-}" ] || AOS_BUILD_CACHE=$(cd "$AOS_BUILD_CACHE" && pwd)
[ -z "${BINARYEN_BIN:-}" ] || BINARYEN_BIN=$(cd "$BINARYEN_BIN" && pwd)
[ -z "${AOS_PROBE_TARGET:-}" ] || { mkdir -p "$AOS_PROBE_TARGET"; AOS_PROBE_TARGET=$(cd "$AOS_PROBE_TARGET" && pwd); }
cd "$(dirname "$0")"
TARGET=wasm32-unknown-unknown
NODE_FLAGS=--no-liftoff
if [ "${1:-}" = --wasm64 ]; then
  shift
  TARGET=wasm64-unknown-unknown
  NODE_FLAGS="$NODE_FLAGS --experimental-wasm-memory64"
fi
# rust-lld ships with rustc (the pinned toolchain's, through rustup).
LLD=${LLD:-$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld}
[ -x "$LLD" ] || { echo "run.sh: no wasm linker at $LLD (set LLD)" >&2; exit 1; }
export CARGO_TARGET_DIR=${AOS_PROBE_TARGET:-$HOME/.cache/aos-llama/wasm-probe}
env -u RUSTUP_TOOLCHAIN -u RUSTFLAGS RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Ctarget-feature=+simd128" \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$LLD" CARGO_TARGET_WASM64_UNKNOWN_UNKNOWN_LINKER="$LLD" \
  /usr/bin/cargo build -q --release --locked --target $TARGET -Zbuild-std=core,alloc
WASM="$CARGO_TARGET_DIR/$TARGET/release/wasm_probe.wasm"
if [ $TARGET = wasm64-unknown-unknown ]; then
  # As build.sh makes AOS.wasm: the function table rewritten to 32 bits (Node 20 has no
  # table64), then binaryen's wasm-opt -O2 (build.sh installs binaryen into the cache).
  BIN=${BINARYEN_BIN:-${AOS_BUILD_CACHE:-$HOME/.cache/aos-llama}/binaryen-132/node_modules/binaryen/bin}
  [ -x "$BIN/wasm-opt" ] || { echo "run.sh: no binaryen at $BIN (run ./build.sh first, or set BINARYEN_BIN)" >&2; exit 1; }
  FEATURES="--enable-memory64 --enable-bulk-memory --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue --enable-simd"
  "$BIN/wasm-dis" $FEATURES "$WASM" -o "$WASM.wat"
  python3 ../../process/scripts/table32.py "$WASM.wat" "$WASM.t32.wat"
  "$BIN/wasm-as" -g $FEATURES "$WASM.t32.wat" -o "$WASM.t32.wasm"
  # build.sh's --no-inline, the same pattern (keep the two alike): the kernels stay
  # functions (-g above keeps the names it matches). No Asyncify: the probe imports nothing
  # asynchronous, so its timings do not show what Asyncify's instrumentation costs.
  "$BIN/wasm-opt" $FEATURES --no-inline='*5llama7kernels*wasm*' -O2 "$WASM.t32.wasm" -o "$WASM.opt.wasm"
  WASM="$WASM.opt.wasm"
fi
exec node $NODE_FLAGS probe.js "$WASM" "$@"
