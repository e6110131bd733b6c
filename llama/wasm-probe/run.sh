#!/bin/sh
# The ggml kernels' bit-identity check (simd128 vs scalar, every type, 1..=17-block
# rows) and a rough benchmark, in wasm32 under node (V8). Needs a rustc that can build
# core for wasm32-unknown-unknown (Debian's rustc-web + rust-web-src, with
# RUSTC_BOOTSTRAP=1 -Zbuild-std) and a wasm linker (rustup's rust-lld here).
#   llama/wasm-probe/run.sh [bench]
set -eu
cd "$(dirname "$0")"
LLD=${LLD:-$(ls ~/.rustup/toolchains/*/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld | head -1)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
env -u RUSTUP_TOOLCHAIN RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Ctarget-feature=+simd128" \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$LLD" \
  /usr/bin/cargo build --target wasm32-unknown-unknown -Zbuild-std=core,alloc
node probe.js "$CARGO_TARGET_DIR/wasm32-unknown-unknown/debug/wasm_probe.wasm" "$@"
