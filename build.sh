#!/usr/bin/env bash
# Builds AOS.wasm, the AO process module (Lua 5.3 + Rust), for
#   Module-Format: wasm64-unknown-emscripten-draft_2024_02_15
# (the frozen emscripten 3.1.59 glue inside npm @permaweb/ao-loader).
#
# Runs on a fresh Debian 12 (bookworm) machine as root: installs what it needs if missing
# (Debian rustc-web/cargo-web/rust-web-src 1.96 + emscripten 3.1.6 for headers, musl and
# compiler-rt sources; PyPI ziglang==0.17.1 for clang/wasm-ld 22; npm binaryen@132).
# Everything intermediate lives in ${AOS_BUILD_CACHE:-$HOME/.cache/aos-llama}, keyed by
# hashes of the inputs, so a second run (even from a fresh clone) is fast; nothing depends
# on that cache existing. Output: ./AOS.wasm. See ../shared notes: ao-wasm64-recipe.md.
#
#   ./build.sh              build AOS.wasm
#   ./build.sh --check SHA256|TXID [--gateway URL]
#                           build, then compare with a published module: its sha256, or the
#                           data of its Arweave txid (GET URL/TXID, default https://arweave.net);
#                           prints `match <sha256>` (exit 0) or `mismatch: built A, published B`
#                           (exit 1)
#   AOS_BUILD_CACHE=DIR     cache location (default ~/.cache/aos-llama)
#   AOS_STACK_SIZE=BYTES    shadow stack size (default 32 MiB; JSON messages are copied onto it)
# The output depends only on the sources and the toolchain versions below, not on the
# clone's path, the cache, $HOME, the user, locale, time zone or umask (test/repro.sh).
set -euo pipefail

CHECK="" GATEWAY="https://arweave.net"
while [ $# -gt 0 ]; do
  case "$1" in
    --check) [ $# -ge 2 ] || { echo "build.sh: --check needs a sha256 or a txid" >&2; exit 2; }; CHECK=$2; shift 2;;
    --gateway) [ $# -ge 2 ] || { echo "build.sh: --gateway needs a URL" >&2; exit 2; }; GATEWAY=${2%/}; shift 2;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d'; exit 0;;
    *) echo "build.sh: unknown argument: $1 (see --help)" >&2; exit 2;;
  esac
done

# --check: the published sha256 first (an unreachable gateway should not cost a build),
# then an ordinary build, then the comparison. Exit 0 match, 1 mismatch, 2 anything else.
if [ -n "$CHECK" ]; then
  if [[ "$CHECK" =~ ^[0-9a-fA-F]{64}$ ]]; then
    PUBLISHED="${CHECK,,}"
  elif [[ "$CHECK" =~ ^[A-Za-z0-9_-]{43}$ ]]; then
    echo "==> fetching $GATEWAY/$CHECK" >&2
    PUBLISHED="$(python3 - "$GATEWAY/$CHECK" <<'PY'
import hashlib, sys, urllib.request
h, n = hashlib.sha256(), 0
try:
    with urllib.request.urlopen(sys.argv[1], timeout=120) as r:
        while chunk := r.read(1 << 20):
            h.update(chunk); n += len(chunk)
except OSError as e:  # URLError, HTTPError, timeouts
    sys.exit(f"{sys.argv[1]}: {e}")
if n == 0:
    sys.exit(f"{sys.argv[1]}: empty response")
print(h.hexdigest())
PY
)" || { echo "build.sh: cannot fetch the module from $GATEWAY/$CHECK" >&2; exit 2; }
    echo "==> published module $CHECK: sha256 $PUBLISHED" >&2
  else
    echo "build.sh: --check wants a sha256 (64 hex digits) or an Arweave txid (43 base64url characters): $CHECK" >&2
    exit 2
  fi
  [ -z "${AOS_STACK_SIZE:-}${AOS_ASYNCIFY_ALL:-}" ] ||
    echo "==> warning: AOS_STACK_SIZE / AOS_ASYNCIFY_ALL are set: they change the module" >&2
  "$BASH" "${BASH_SOURCE[0]}" || exit 2
  BUILT="$(sha256sum "$(dirname "${BASH_SOURCE[0]}")/AOS.wasm" | cut -d' ' -f1)"
  if [ "$BUILT" = "$PUBLISHED" ]; then echo "match $BUILT"; exit 0; fi
  echo "mismatch: built $BUILT, published $PUBLISHED"
  exit 1
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${AOS_BUILD_CACHE:-$HOME/.cache/aos-llama}"
STACK_SIZE="${AOS_STACK_SIZE:-33554432}"
MAX_MEMORY=17179869184          # 16 GiB, the loader's heap cap
MODULE_FORMAT="wasm64-unknown-emscripten-draft_2024_02_15"
ZIG_VERSION=0.17.1
BINARYEN_VERSION=132
BINARYEN_NPM=132.0.0            # exact: npm would take any later 132.x
RUST_WEB_VERSION=1.96
EMSCRIPTEN_DEB=3.1.6
# The exact Debian builds the published AOS.wasm sha256 was made with (README): another
# build of these packages still works, but may give other bytes.
RUST_WEB_DEB=1.96.0+dfsg1-1~deb12u2
EMSCRIPTEN_DEB_EXACT=3.1.6~dfsg-5
JOBS=2                          # shared 2-core machines: never more
export LC_ALL=C TZ=UTC SOURCE_DATE_EPOCH=0
umask 022

mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
# One build at a time per cache: the sources are copied to a fixed path in it.
exec 9>"$CACHE/.build.lock"
flock 9

# ---------------------------------------------------------------- timing helpers
T_START=$(date +%s.%N)
T_STAGE=$T_START
TIMINGS=()
log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }
stage_done() {
  local now; now=$(date +%s.%N)
  TIMINGS+=("$(awk -v a="$T_STAGE" -v b="$now" -v n="$1" 'BEGIN { printf "%-28s %7.1f s", n, b - a }')")
  T_STAGE=$now
}
sha256() { sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------- 1. toolchain
APT_UPDATED=0
apt_install() {
  # Installs the given Debian packages (apt-get update at most once). Waits for the dpkg
  # lock instead of failing when another apt-get is running.
  [ "$(id -u)" = 0 ] || die "missing Debian packages ($*): run as root or install them"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$APT_UPDATED" = 0 ]; then
    apt-get -o DPkg::Lock::Timeout=900 update -qq
    APT_UPDATED=1
  fi
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "$@" >&2
}

need_pkgs=()
for p in rustc-web cargo-web rust-web-src emscripten python3 python3-venv ca-certificates; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$p")
done
command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
[ ${#need_pkgs[@]} -eq 0 ] || { log "installing Debian packages: ${need_pkgs[*]}"; apt_install "${need_pkgs[@]}"; }

RUSTC=/usr/bin/rustc
CARGO=/usr/bin/cargo
"$RUSTC" --version | grep -q "^rustc $RUST_WEB_VERSION\." ||
  die "$RUSTC is $("$RUSTC" --version), want $RUST_WEB_VERSION.x (Debian rustc-web from bookworm-security)"
[ -d /usr/lib/rustlib/src/rust/library/std ] || die "rust-web-src is missing (/usr/lib/rustlib/src/rust)"
EM=/usr/share/emscripten
EMSYS="$EM/cache/sysroot"
EMLIB="$EM/system/lib"
EM_DEB_VERSION="$(dpkg-query -W -f='${Version}' emscripten)"
case "$EM_DEB_VERSION" in "$EMSCRIPTEN_DEB"*) ;; *) die "emscripten $EM_DEB_VERSION, want $EMSCRIPTEN_DEB";; esac
RUST_DEB_VERSION="$(dpkg-query -W -f='${Version}' rustc-web)"
[ "$RUST_DEB_VERSION" = "$RUST_WEB_DEB" ] && [ "$EM_DEB_VERSION" = "$EMSCRIPTEN_DEB_EXACT" ] ||
  log "warning: rustc-web $RUST_DEB_VERSION / emscripten $EM_DEB_VERSION, the published hash is from $RUST_WEB_DEB / $EMSCRIPTEN_DEB_EXACT"

ZIG_VENV="$CACHE/zig-$ZIG_VERSION"
find_zig() { ls "$ZIG_VENV"/lib/python3*/site-packages/ziglang/zig 2>/dev/null | head -n1; }
ZIG="$(find_zig || true)"
if [ -z "$ZIG" ] || [ "$("$ZIG" version 2>/dev/null)" != "$ZIG_VERSION" ]; then
  log "installing ziglang==$ZIG_VERSION (PyPI) into $ZIG_VENV"
  rm -rf "$ZIG_VENV"
  python3 -m venv "$ZIG_VENV"
  "$ZIG_VENV/bin/pip" install -q --disable-pip-version-check "ziglang==$ZIG_VERSION"
  ZIG="$(find_zig)"
fi
ZIGLIB="$(dirname "$ZIG")/lib"

BINARYEN_DIR="$CACHE/binaryen-$BINARYEN_VERSION"
BIN="$BINARYEN_DIR/node_modules/binaryen/bin"
if ! "$BIN/wasm-opt" --version 2>/dev/null | grep -q "version $BINARYEN_VERSION" ||
   ! grep -q "\"version\": \"$BINARYEN_NPM\"" "$BINARYEN_DIR/node_modules/binaryen/package.json"; then
  log "installing binaryen@$BINARYEN_NPM (npm) into $BINARYEN_DIR"
  rm -rf "$BINARYEN_DIR"; mkdir -p "$BINARYEN_DIR"
  echo '{"private":true}' > "$BINARYEN_DIR/package.json"
  npm install --prefix "$BINARYEN_DIR" --cache "$CACHE/npm-cache" --no-audit --no-fund \
    --loglevel=error "binaryen@$BINARYEN_NPM" >&2
fi
stage_done "toolchain"

# ---------------------------------------------------------------- 2. sources
# Build from a copy in the cache, as ONE cargo workspace holding process/, llama/ and chat/.
# Cargo's -C metadata (hence every mangled symbol, hence the function order in AOS.wasm)
# hashes a path package by its path relative to the workspace root when it lies under
# the root, by its absolute path otherwise: with process/ as the root, ../llama was
# hashed by absolute path and AOS.wasm changed with the cache directory.
SRC="$CACHE/src"
rm -rf "$SRC"; mkdir -p "$SRC"
cp -a "$ROOT/process" "$SRC/process"
[ -d "$ROOT/lua" ] && cp -a "$ROOT/lua" "$SRC/lua" || mkdir -p "$SRC/lua"
cp -a "$ROOT/llama" "$SRC/llama"
cp -a "$ROOT/chat" "$SRC/chat"
rm -rf "$SRC/llama/target" "$SRC/llama/tests" "$SRC/chat/target" "$SRC/chat/tests" "$SRC/process/target"
mv "$SRC/process/Cargo.lock" "$SRC/Cargo.lock"
# The root manifest: members process, llama and chat, the [workspace.package] that
# llama/Cargo.toml inherits (from the repository's root manifest), and process's profiles
# (cargo reads profiles only at the root). The copy of process/Cargo.toml loses its own
# [workspace] and [profile.*] tables.
python3 - "$ROOT/Cargo.toml" "$SRC/process/Cargo.toml" > "$SRC/Cargo.toml" <<'PY'
import json, re, sys, tomllib
def value(v):
    if isinstance(v, bool): return "true" if v else "false"
    if isinstance(v, (int, str)): return json.dumps(v)
    sys.exit(f"build.sh: unsupported profile value in process/Cargo.toml: {v!r}")
def table(name, d):
    print(f"\n[{name}]")
    for k, v in d.items():
        if not isinstance(v, dict): print(f"{k} = {value(v)}")
    for k, v in d.items():
        if isinstance(v, dict): table(f"{name}.{json.dumps(k)}", v)
root, proc_path = sys.argv[1:]
text = open(proc_path).read()
print('[workspace]\nresolver = "2"\nmembers = ["process", "llama", "chat"]')
table("workspace.package", tomllib.load(open(root, "rb"))["workspace"]["package"])
for name, prof in tomllib.loads(text).get("profile", {}).items():
    table(f"profile.{name}", prof)
keep, out = True, []
for line in text.splitlines(keepends=True):
    m = re.match(r"\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
    if m:
        keep = not (m[1].strip() == "workspace" or m[1].strip().startswith("profile."))
    if keep: out.append(line)
left = tomllib.loads("".join(out))
assert "workspace" not in left and "profile" not in left, "process/Cargo.toml: tables left"
open(proc_path, "w").write("".join(out))
PY
# `cp -a` keeps the clone's mtimes, and cargo rebuilds a path crate only when one of its
# sources is newer than its last build: a clone whose files are older than the cache's
# last build (another checkout, a `git worktree` made earlier) would get that build's
# AOS.wasm back. So every copied file whose contents differ from the last build's copy is
# made newer than any build (`src.sums`: the sums of the last copy that built).
(cd "$SRC" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) > "$CACHE/src.sums.new"
python3 - "$CACHE/src.sums" "$CACHE/src.sums.new" "$SRC" <<'PY'
import os, sys
def sums(path):
    try:
        return dict(reversed(line.rstrip("\n").split("  ", 1)) for line in open(path))
    except FileNotFoundError:
        return {}
last, now = sums(sys.argv[1]), sums(sys.argv[2])
for name, digest in now.items():
    if last.get(name) != digest:
        os.utime(os.path.join(sys.argv[3], name))
PY

# Rust: Debian's cargo/rustc, never rustup's (the `rustc` on PATH may be a rustup proxy),
# and none of the caller's cargo/rustc settings that change code generation. Cargo runs in
# $SRC: it reads .cargo/config.toml from its working directory upwards, and the clone's
# directories (the repository's, their parents') must not be among them.
CARGO_HOME_DIR="${CARGO_HOME:-$HOME/.cargo}"
case "$CARGO_HOME_DIR" in /*) ;; *) CARGO_HOME_DIR="$PWD/$CARGO_HOME_DIR";; esac
cargo_env=(env -C "$SRC" -u RUSTUP_TOOLCHAIN -u RUSTC_WRAPPER -u RUSTC_WORKSPACE_WRAPPER
  -u RUSTFLAGS -u RUSTDOCFLAGS -u CARGO_INCREMENTAL)
for v in $(compgen -e); do
  case "$v" in CARGO_BUILD_*|CARGO_PROFILE_*|CARGO_TARGET_*|CARGO_ENCODED_*|CARGO_UNSTABLE_*) cargo_env+=(-u "$v");; esac
done
cargo_env+=(RUSTC="$RUSTC" CARGO_HOME="$CARGO_HOME_DIR")
# Registry sources sit under $CARGO_HOME (so under $HOME): remapped below, for rustc and C.
REGISTRY_SRC="$CARGO_HOME_DIR/registry/src"
"${cargo_env[@]}" "$CARGO" fetch --locked --manifest-path "$SRC/process/Cargo.toml" >&2
LUA_SRC="$("${cargo_env[@]}" "$CARGO" metadata --locked --format-version 1 \
  --manifest-path "$SRC/process/Cargo.toml" | python3 -c '
import json, os, sys
meta = json.load(sys.stdin)
pkgs = [p for p in meta["packages"] if p["name"] == "lua-src"]
assert len(pkgs) == 1, "exactly one lua-src expected in Cargo.lock"
print(os.path.join(os.path.dirname(pkgs[0]["manifest_path"]), "lua-5.3.6"))')"
[ -f "$LUA_SRC/lua.h" ] || die "Lua 5.3.6 sources not found at $LUA_SRC"
stage_done "sources (cargo fetch)"

# ---------------------------------------------------------------- 3. C libraries
# Flags for all C: zig's clang 22 on Debian emscripten 3.1.6's headers.
CFLAGS_BASE=(--target=wasm64-unknown-emscripten -resource-dir "$ZIGLIB" --sysroot="$EMSYS"
  -Xclang -iwithsysroot/include/compat -DEMSCRIPTEN -D__EMSCRIPTEN_major__=3
  -D__EMSCRIPTEN_minor__=1 -D__EMSCRIPTEN_tiny__=6 -Dunix -D__unix -D__unix__
  -ffunction-sections -fdata-sections -fno-ident
  "-ffile-prefix-map=$EM=/emscripten" "-ffile-prefix-map=$REGISTRY_SRC=/cargo-registry"
  "-ffile-prefix-map=$SRC=/aos-llama" "-ffile-prefix-map=$ZIGLIB=/zig-lib")
TOOL_ID="zig $("$ZIG" version) / emscripten $EM_DEB_VERSION / build.sh c-v1 / $(cat "$SRC"/process/c/*.h | sha256)"

# compile_lib NAME SRCDIR FILELIST CFLAGS... : compiles the .c/.S files (paths relative to
# SRCDIR, one per line in FILELIST) into $CACHE/c/NAME-<hash>.a, the hash covering the
# tool versions, the flags and every source and local header. Sets LIB.
compile_lib() {
  local name=$1 srcdir=$2 list=$3; shift 3
  local key
  key="$( { echo "$TOOL_ID"; printf '%s\n' "$@"; sort "$list" | while read -r f; do
            printf '%s %s\n' "$f" "$(sha256 < "$srcdir/$f")"; done;
          find "$srcdir" -maxdepth 1 -name '*.h' -print0 | sort -z | xargs -0 -r cat; } | sha256 | cut -c1-16)"
  LIB="$CACHE/c/$name-$key.a"
  if [ -f "$LIB" ]; then log "$name: cached ($(basename "$LIB"))"; return; fi
  log "$name: compiling $(wc -l < "$list") files"
  local tmp; tmp="$(mktemp -d "$CACHE/c/.tmp-$name-XXXXXX")"
  export ZIG srcdir tmp
  sort "$list" | xargs -P "$JOBS" -I{} sh -c '
      f="$1"; shift; o="$tmp/$(echo "$f" | tr / _ | sed "s/\.[cS]$/.o/")"
      "$ZIG" clang "$@" -c "$srcdir/$f" -o "$o" || { echo "failed: $f" >&2; exit 255; }' \
      sh {} "${CFLAGS_BASE[@]}" "$@"
  (cd "$tmp" && ls *.o | sort > objs.txt && "$ZIG" ar rcsD "lib.a" $(cat objs.txt))
  mv "$tmp/lib.a" "$LIB"; rm -rf "$tmp"
}
mkdir -p "$CACHE/c"

# musl subset from Debian's emscripten 3.1.6 (the parts Lua and Rust's std need), plus
# emscripten's mem* and dlmalloc. Syscalls are renamed (aos_syscalls.h) so that the
# adapters in process/c/libc_glue.c can call the 3.1.59 glue's imports with its types.
MUSL="$EMLIB/libc/musl/src"
LIBC_LIST="$CACHE/c/libc-files.txt"
( cd "$EMLIB"
  for d in ctype errno internal locale math multibyte prng stdio stdlib string fcntl unistd temp stat conf; do
    ls libc/musl/src/$d/*.c
  done | grep -v -E '/(memcpy|memset|memmove|syscall|popen|pclose|alarm|getentropy|__lock|syscall_ret|vdso|procfdname|defsysinfo|libc|version|floatscan)\.c$' || true
  echo libc/musl/src/internal/floatscan.c
  echo libc/musl/src/internal/syscall_ret.c
  echo libc/musl/src/internal/libc.c
  echo libc/musl/src/time/difftime.c
  echo libc/emscripten_memcpy.c; echo libc/emscripten_memset.c; echo libc/emscripten_memmove.c
  echo libc/wasi-helpers.c
) | sort -u > "$LIBC_LIST"
compile_lib libc "$EMLIB" "$LIBC_LIST" \
  -I "$MUSL/internal" -I "$MUSL/include" -I "$EMLIB/pthread" -std=c99 -D_XOPEN_SOURCE=700 -Os -fno-builtin \
  -include "$SRC/process/c/aos_syscalls.h" \
  -Wno-everything
LIBC_A=$LIB
# sbrk is process/c/sbrk.c (emscripten 3.1.6's stops the heap at 4 GiB on wasm64).
printf '%s\n' dlmalloc.c libc/emscripten_get_heap_size.c > "$CACHE/c/malloc-files.txt"
compile_lib malloc "$EMLIB" "$CACHE/c/malloc-files.txt" -O2 -std=gnu11 -fno-builtin -DNDEBUG \
  -Wno-everything
MALLOC_A=$LIB

# compiler-rt builtins (int128, long double soft-float...). One fix for wasm64: the
# comparison helpers must return int (CMP_RESULT), as clang's libcalls expect.
CRT_SRC="$CACHE/c/compiler-rt-src"
rm -rf "$CRT_SRC"; mkdir -p "$CRT_SRC"
cp -a "$EMLIB/compiler-rt/lib/builtins/." "$CRT_SRC/"
python3 - "$CRT_SRC/fp_compare_impl.inc" <<'EOF'
import re, sys
p = sys.argv[1]; s = open(p).read()
new, n = re.subn(r'#ifdef __aarch64__\n', '#if defined(__aarch64__) || defined(__wasm64__)\n', s, count=1)
assert n == 1, "fp_compare_impl.inc: CMP_RESULT selection not found"
open(p, 'w').write(new)
EOF
CRT_LIST="$CACHE/c/crt-files.txt"
( cd "$CRT_SRC"
  for f in absvdi2 absvsi2 absvti2 addtf3 ashldi3 ashlti3 ashrdi3 ashrti3 clzdi2 clzsi2 clzti2 \
           cmpdi2 cmpti2 comparetf2 ctzdi2 ctzsi2 ctzti2 divdi3 divmoddi4 divmodsi4 divmodti4 \
           divsi3 divtf3 divti3 extenddftf2 extendsftf2 extendhfsf2 extendhfdf2 ffsdi2 ffssi2 ffsti2 \
           fixdfti fixsfti fixtfdi fixtfsi fixtfti fixunsdfti fixunssfti fixunstfdi fixunstfsi \
           fixunstfti floattidf floattisf floatditf floatsitf floattitf floatunditf floatunsitf \
           floatuntidf floatuntisf floatuntitf lshrdi3 lshrti3 moddi3 modsi3 modti3 muldi3 \
           mulodi4 mulosi4 muloti4 multf3 multi3 mulvdi3 mulvsi3 mulvti3 negdi2 negti2 negvdi2 \
           negvsi2 negvti2 paritydi2 paritysi2 parityti2 popcountdi2 popcountsi2 popcountti2 \
           powidf2 powisf2 powitf2 subtf3 trunctfdf2 trunctfsf2 truncdfhf2 truncsfhf2 ucmpdi2 ucmpti2 udivdi3 \
           udivmoddi4 udivmodsi4 udivmodti4 udivsi3 udivti3 umoddi3 umodsi3 umodti3; do
    [ -f "$f.c" ] && echo "$f.c"
  done ) > "$CRT_LIST"
compile_lib compiler-rt "$CRT_SRC" "$CRT_LIST" -O2 -std=c11 -fno-builtin -Wno-everything \
  "-ffile-prefix-map=$CRT_SRC=/emscripten/system/lib/compiler-rt/lib/builtins"
CRT_A=$LIB

# Lua 5.3.6 with emscripten-style setjmp/longjmp (one `invoke_vjj` import).
LUA_LIST="$CACHE/c/lua-files.txt"
( cd "$LUA_SRC" && ls *.c | grep -v -E '^(lua|luac)\.c$' ) > "$LUA_LIST"
compile_lib lua "$LUA_SRC" "$LUA_LIST" -O2 -std=gnu99 -DLUA_COMPAT_5_2 \
  -mllvm -enable-emscripten-sjlj -Wno-everything
LUA_A=$LIB

# Our small runtime: stack exports, setjmp helpers, libc parts done in JS by emscripten.
RT_LIST="$CACHE/c/rt-files.txt"
( cd "$SRC/process/c" && ls *.c *.S ) > "$RT_LIST"
compile_lib runtime "$SRC/process/c" "$RT_LIST" -O2 -std=gnu11 -Wall -Werror -fno-builtin \
  -isystem "$MUSL/internal" -isystem "$MUSL/include" -isystem "$EMLIB/pthread" -Wno-unused-command-line-argument
RT_A=$LIB
stage_done "C: libc, compiler-rt, Lua"

# ---------------------------------------------------------------- 4. Rust (process/)
RUST_TARGET_DIR="$CACHE/target-wasm64"
# Paths may hold spaces: the flags go to cargo \x1f-separated.
RUSTFLAGS_WASM=(-Ctarget-feature=+simd128 -Cdebuginfo=0 "--remap-path-prefix=$SRC=/aos-llama"
  "--remap-path-prefix=$REGISTRY_SRC=/cargo-registry")
log "cargo build (wasm64-unknown-unknown, -Zbuild-std)"
"${cargo_env[@]}" RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$RUST_TARGET_DIR" \
  CARGO_ENCODED_RUSTFLAGS="$(IFS=$'\x1f'; echo "${RUSTFLAGS_WASM[*]}")" \
  LUA_LIB_NAME=lua53 \
  "$CARGO" build --locked --release -j "$JOBS" --target wasm64-unknown-unknown \
  -Zbuild-std=std,panic_abort --manifest-path "$SRC/process/Cargo.toml" >&2
mv -f "$CACHE/src.sums.new" "$CACHE/src.sums"
RUST_A="$CACHE/link/libaos_process.a"
mkdir -p "$CACHE/link"
cp "$RUST_TARGET_DIR/wasm64-unknown-unknown/release/libaos_process.a" "$RUST_A"
# Rust's compiler_builtins duplicates compiler-rt with the wrong comparison ABI on wasm64
# (see step 3): drop it, compiler-rt and libc provide those symbols.
cb_members="$("$ZIG" ar t "$RUST_A" | grep '^compiler_builtins-' || true)"
[ -z "$cb_members" ] || "$ZIG" ar dD "$RUST_A" $cb_members
stage_done "Rust (process crate)"

# ---------------------------------------------------------------- 5. link
RAW="$CACHE/link/AOS.raw.wasm"
EXPORTS=(handle __wasm_call_ctors malloc free setThrew dynCall_vjj
  emscripten_stack_init emscripten_stack_get_base emscripten_stack_get_end
  emscripten_stack_get_free emscripten_stack_get_current
  _emscripten_stack_alloc _emscripten_stack_restore)
"$ZIG" wasm-ld -m wasm64 --no-entry --stack-first -z "stack-size=$STACK_SIZE" \
  --max-memory="$MAX_MEMORY" --gc-sections --export-table --allow-undefined \
  --no-demangle $(printf -- '--export=%s ' "${EXPORTS[@]}") \
  -o "$RAW" "$RT_A" "$RUST_A" "$LUA_A" "$LIBC_A" "$MALLOC_A" "$CRT_A" 2> "$CACHE/link/ld.log" ||
  { cat "$CACHE/link/ld.log" >&2; die "wasm-ld failed"; }
if grep -q 'warning' "$CACHE/link/ld.log"; then
  cat "$CACHE/link/ld.log" >&2
  die "wasm-ld warnings (a signature mismatch becomes a trap at run time)"
fi
# Every import must be one the loader's glue provides.
python3 "$SRC/process/scripts/wasm_check.py" "$RAW"
stage_done "link + import check"

# ---------------------------------------------------------------- 6. table32, wasm-opt, Asyncify
# LLVM 22 writes a 64-bit function table for wasm64; Node 20's memory64 has no table64.
# Rewrite the text form: table/elem offsets i32, i32.wrap_i64 on each call_indirect index.
# Then wasm-opt -O2 with Asyncify for exactly the WeaveDrive imports + invoke_vjj (so an
# async read can unwind through Lua's pcall). Cached by the hash of the linked module.
FEATURES=(--enable-memory64 --enable-bulk-memory --enable-mutable-globals --enable-sign-ext
  --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue --enable-simd)
ASYNC_IMPORTS="env.__asyncjs__weavedrive_open,env.__asyncjs__weavedrive_read,env.__asyncjs__weavedrive_close,env.invoke_vjj"
# Keep Asyncify off the inference hot path. Its analysis must assume that every indirect
# call may unwind (Lua calls natives through pointers), and panics/formatting reach
# indirect calls, so without this list it instruments the forward pass and the kernels
# too. None of these functions reads a model (only checkpoint/gguf/source/tokenizer
# loading code does, through llama::source::Reader), so none is on a path to a
# WeaveDrive import. Patterns match Rust v0 symbol names: `_RNvM` = a non-generic
# method, `_RNvNt` = a free function, `_RINv` = a generic one's instance (the kernels'
# `row::<Q3K, 1>`, whose bounds checks reach the panic machinery), then the defining
# module path `5llama<module>`.
ASYNC_REMOVE="_RNvM*_5llama7session*,_RNvM*_5llama5model*,_RNvNt*_5llama5model*,_RNvM*_5llama7kernels*,_RNvNt*_5llama7kernels*,_RINv*_5llama7kernels*,_RNvM*_5llama6tensor*,_RNvM*_5llama7sampler*,_RNvNt*_5llama7sampler*,_RNvM*_5llama9tokenizerNtB*_9Tokenizer6encode,_RNvM*_5llama9tokenizerNtB*_9Tokenizer6decode"
[ "${AOS_ASYNCIFY_ALL:-0}" = 1 ] && ASYNC_REMOVE=""   # for measuring the difference
# The wasm kernels (llama::kernels::wasm, wasm_ggml) that LLVM left out of line stay
# functions of their own: -O2 inlines any function with one caller, whatever its size,
# and inside the caller V8 compiled the ggml rows 10-40% slower (Cranelift the f32 rows
# 13%).
NO_INLINE='*5llama7kernels*wasm*'
OPT_FLAGS=("--no-inline=$NO_INLINE" -O2 --asyncify "--pass-arg=asyncify-imports@$ASYNC_IMPORTS")
[ -z "$ASYNC_REMOVE" ] || OPT_FLAGS+=("--pass-arg=asyncify-removelist@$ASYNC_REMOVE")
OPT_FLAGS+=(-O2)
OPT_KEY="$( { sha256 < "$RAW"; echo "binaryen $BINARYEN_VERSION ${FEATURES[*]} ${OPT_FLAGS[*]}";
              cat "$SRC/process/scripts/table32.py"; } | sha256 | cut -c1-16)"
OPT="$CACHE/opt/AOS-$OPT_KEY.wasm"
mkdir -p "$CACHE/opt"
if [ -f "$OPT" ]; then
  log "table32 + wasm-opt: cached ($(basename "$OPT"))"
else
  "$BIN/wasm-dis" "${FEATURES[@]}" "$RAW" -o "$CACHE/link/AOS.raw.wat"
  python3 "$SRC/process/scripts/table32.py" "$CACHE/link/AOS.raw.wat" "$CACHE/link/AOS.t32.wat"
  # -g keeps function names for the Asyncify lists; the final wasm-opt drops them.
  "$BIN/wasm-as" -g "${FEATURES[@]}" "$CACHE/link/AOS.t32.wat" -o "$CACHE/link/AOS.t32.wasm"
  rm -f "$CACHE/link/AOS.raw.wat" "$CACHE/link/AOS.t32.wat"
  stage_done "table64 -> table32"
  "$BIN/wasm-opt" "${FEATURES[@]}" "${OPT_FLAGS[@]}" "$CACHE/link/AOS.t32.wasm" -o "$OPT.tmp"
  mv "$OPT.tmp" "$OPT"
fi
python3 "$SRC/process/scripts/wasm_check.py" --final "$OPT"
cp "$OPT" "$ROOT/AOS.wasm.tmp" && mv "$ROOT/AOS.wasm.tmp" "$ROOT/AOS.wasm"
stage_done "wasm-opt + Asyncify"

# ---------------------------------------------------------------- 7. report
SIZE=$(stat -c %s "$ROOT/AOS.wasm")
SUM=$(sha256sum "$ROOT/AOS.wasm" | cut -d' ' -f1)
cat <<EOF

AOS.wasm      $ROOT/AOS.wasm
size          $SIZE bytes
sha256        $SUM
Module-Format $MODULE_FORMAT
toolchain     rustc-web $RUST_DEB_VERSION, emscripten $EM_DEB_VERSION, ziglang $ZIG_VERSION, binaryen $BINARYEN_NPM

Publish with these tags:
  Data-Protocol:   ao
  Variant:         ao.TN.1
  Type:            Module
  Module-Format:   $MODULE_FORMAT
  Input-Encoding:  JSON-1
  Output-Encoding: JSON-1
  Memory-Limit:    16-gb
  Compute-Limit:   9000000000000
  Content-Type:    application/wasm
  Extension:       WeaveDrive

Timings:
EOF
printf '  %s\n' "${TIMINGS[@]}"
awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN { printf "  %-28s %7.1f s\n", "total", b - a }'
