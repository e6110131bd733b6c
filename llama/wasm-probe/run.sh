#!/bin/sh
# The ggml kernels in wasm32 under node (V8): the bit-identity check (simd128 against
# scalar, every type, rows of 1..=17 blocks; ./test.sh runs it) and, with `bench`, ns per
# row of a 1024 x 4096 product for each type (`bench 768`: 1024 x 768). Built in release
# (debug builds add a precondition check to every pointer offset) and run with
# --no-liftoff: V8 first runs wasm in its baseline compiler and tiers hot functions up
# in the background, so a short benchmark would otherwise time either compiler, at
# random (2x apart).
# Needs a rustc that can build core for wasm32-unknown-unknown (Debian's rustc-web +
# rust-web-src, which ./build.sh installs; RUSTC_BOOTSTRAP=1 -Zbuild-std) and a wasm
# linker (rustup's rust-lld).
#   llama/wasm-probe/run.sh [bench [COLUMNS | f32]]   (f32: only the prompt tiles of f32 rows)
set -eu
cd "$(dirname "$0")"
# rust-lld ships with rustc (the pinned toolchain's, through rustup).
LLD=${LLD:-$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld}
[ -x "$LLD" ] || { echo "run.sh: no wasm linker at $LLD (set LLD)" >&2; exit 1; }
export CARGO_TARGET_DIR=${AOS_PROBE_TARGET:-$HOME/.cache/aos-llama/wasm-probe}
env -u RUSTUP_TOOLCHAIN -u RUSTFLAGS RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Ctarget-feature=+simd128" \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$LLD" \
  /usr/bin/cargo build -q --release --locked --target wasm32-unknown-unknown -Zbuild-std=core,alloc
exec node --no-liftoff probe.js "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/wasm_probe.wasm" "$@"
