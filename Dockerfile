# aos-llama: the pinned toolchain, and (target `build`) AOS.wasm built and tested in it.
#
#   docker build --target toolchain -t aos-llama-toolchain .
#   docker run --rm -v "$PWD":/src -w /src aos-llama-toolchain \
#       ./test.sh                                  # every test (models in ../shared/models)
#   docker build --target build -t aos-llama .      # AOS.wasm at /src/AOS.wasm
#   docker build --target build --build-arg AOS_WASM_SHA256=<sha256 or txid> .
#                                                  # ... and fail unless it is that module
#
# Toolchain (the same as build.sh installs on a bare Debian 12; cmake, ninja, g++ and pip for
# the llama.cpp reference that test/reference/fetch.sh builds; `time` for the benchmarks):
#   - Rust 1.95.0 (rustup, from the official rust image) for the native workspace
#     (engine, CLI, wasmtime host), as rust-toolchain.toml asks;
#   - Debian bookworm-security rustc-web/cargo-web/rust-web-src 1.96.0 (+ its LLVM 22) for
#     AOS.wasm (wasm64-unknown-unknown with -Zbuild-std);
#   - Debian emscripten 3.1.6 (headers, musl, compiler-rt and dlmalloc sources only);
#   - PyPI ziglang 0.17.1 (clang / wasm-ld 22.1.8), npm binaryen 132 (wasm-opt);
#   - Node 20 (ao-loader's wasm64 format needs --experimental-wasm-memory64).
# Debian's security archive keeps only the newest build of a package: if an exact version
# below has gone, take it from snapshot.debian.org (or relax the pin) and check that
# build.sh still reproduces the published AOS.wasm sha256.
# Keep a .dockerignore with target/ and node_modules/ so the context stays small.

FROM node:20.20.2-bookworm-slim AS node

FROM rust:1.95.0-bookworm AS toolchain
ARG RUST_WEB_VERSION=1.96.0+dfsg1-1~deb12u2
ARG EMSCRIPTEN_VERSION=3.1.6~dfsg-5
ARG ZIG_VERSION=0.17.1
ARG BINARYEN_VERSION=132
ARG BINARYEN_NPM=132.0.0
# The cache path does not reach AOS.wasm (build.sh builds one workspace and remaps
# every source path), so this build gives the bytes of a host build of the same commit.
ENV AOS_BUILD_CACHE=/opt/aos-llama-cache \
    DEBIAN_FRONTEND=noninteractive

# Node 20 (+ npm) from the official image; first on PATH, ahead of the Debian nodejs
# that the emscripten package pulls in.
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && node --version | grep -q '^v20\.'

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      "rustc-web=${RUST_WEB_VERSION}" "cargo-web=${RUST_WEB_VERSION}" \
      "rust-web-src=${RUST_WEB_VERSION}" "libstd-rust-web-dev=${RUST_WEB_VERSION}" \
      "emscripten=${EMSCRIPTEN_VERSION}" \
      python3 python3-venv ca-certificates git lua5.3 \
      cmake ninja-build g++ python3-pip curl time \
 && rm -rf /var/lib/apt/lists/* \
 && /usr/bin/rustc --version | grep -q '^rustc 1\.96\.' \
 && rustc --version | grep -q '^rustc 1\.95\.'

# The same locations build.sh uses in $AOS_BUILD_CACHE, so it finds them installed.
RUN python3 -m venv "$AOS_BUILD_CACHE/zig-${ZIG_VERSION}" \
 && "$AOS_BUILD_CACHE/zig-${ZIG_VERSION}/bin/pip" install --no-cache-dir "ziglang==${ZIG_VERSION}" \
 && mkdir -p "$AOS_BUILD_CACHE/binaryen-${BINARYEN_VERSION}" \
 && echo '{"private":true}' > "$AOS_BUILD_CACHE/binaryen-${BINARYEN_VERSION}/package.json" \
 && npm install --prefix "$AOS_BUILD_CACHE/binaryen-${BINARYEN_VERSION}" --no-audit --no-fund \
      "binaryen@${BINARYEN_NPM}" \
 && "$AOS_BUILD_CACHE/binaryen-${BINARYEN_VERSION}/node_modules/binaryen/bin/wasm-opt" --version

# The fuzz targets (test.sh runs them for a bounded time) need nightly and cargo-fuzz.
RUN rustup toolchain install nightly --profile minimal \
 && cargo +nightly install cargo-fuzz --locked --version 0.13.2

WORKDIR /src

FROM toolchain AS build
ARG AOS_WASM_SHA256=
COPY . /src
RUN if [ -n "$AOS_WASM_SHA256" ]; then ./build.sh --check "$AOS_WASM_SHA256"; else ./build.sh; fi \
 && test/node/run.sh
