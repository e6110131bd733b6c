#!/usr/bin/env bash
# AOS.wasm must be the same bytes wherever it is built. Builds this checkout (warm, in
# ${AOS_BUILD_CACHE:-$HOME/.cache/aos-llama}), then a clone of the same commit at another
# path with another AOS_BUILD_CACHE, $HOME (so another CARGO_HOME and registry path),
# user (nobody, when run as root), umask, time zone and locale, and compares the sha256
# of the linked module and of AOS.wasm.
#
#   test/repro.sh                    the check test.sh runs
#   AOS_REPRO_FULL=1 test/repro.sh   the full check (README): also reruns wasm-opt
#   AOS_REPRO_KEEP=1 ...             keep the second tree (printed) for inspection
#   AOS_REPRO_DIR=DIR ...            keep build 2's cache and HOME in DIR between runs (warm
#                                    reruns; still its own paths, so a path leak still shows)
#
# Shared with the second build, as copies at its own paths: the downloaded toolchain
# (the ziglang wheel's venv, npm binaryen), never compiled from our sources. Everything
# compiled from our sources (C libraries, Rust std and crates, the link) is rebuilt.
# Without AOS_REPRO_FULL, wasm-opt's cache is shared too: its entries are keyed by the
# sha256 of the linked module, so a leak anywhere up to the link still misses it (and the
# linked modules are compared directly); what that skips is only a leak of wasm-opt's own
# file paths into its output.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache_a=${AOS_BUILD_CACHE:-$HOME/.cache/aos-llama}
mkdir -p "$cache_a"; cache_a=$(cd "$cache_a" && pwd)
full=${AOS_REPRO_FULL:-0}

sum() { sha256sum "$1" | cut -d' ' -f1; }
t0=$(date +%s)
keep=${AOS_REPRO_KEEP:-0}
if [ -n "${AOS_REPRO_DIR:-}" ]; then
  mkdir -p "$AOS_REPRO_DIR"; tmp=$(cd "$AOS_REPRO_DIR" && pwd); keep=1
  exec 8>"$tmp/.lock"; flock 8
  rm -rf "$tmp/another"
else
  tmp=$(mktemp -d /tmp/aos-repro.XXXXXX)
fi
cleanup() { if [ "$keep" = 1 ]; then echo "repro: kept $tmp" >&2; else rm -rf "$tmp"; fi; }
trap cleanup EXIT

echo "repro: build 1: $root, cache $cache_a"
"$root/build.sh" > "$tmp/build1.log" 2>&1 || { tail -40 "$tmp/build1.log"; exit 1; }
wasm_a=$(sum "$root/AOS.wasm"); raw_a=$(sum "$cache_a/link/AOS.raw.wasm")

# The same commit at another path, plus the checkout's uncommitted changes to tracked
# files (build 1 saw them too).
clone="$tmp/another/clone path/aos-llama"
mkdir -p "$(dirname "$clone")"
git clone -q --no-hardlinks "$root" "$clone"
git -C "$clone" checkout -q --detach "$(git -C "$root" rev-parse HEAD)"
if ! git -C "$root" diff --quiet HEAD; then
  echo "repro: applying the uncommitted changes to the clone"
  git -C "$root" diff --binary HEAD | git -C "$clone" apply
fi
untracked=$(git -C "$root" ls-files --others --exclude-standard -- process llama lua)
[ -z "$untracked" ] || echo "repro: warning: untracked files build 1 copied and build 2 lacks: $untracked" >&2

cache_b="$tmp/cache b"; home_b="$tmp/home b"
mkdir -p "$cache_b" "$home_b"
for d in "$cache_a"/zig-* "$cache_a"/binaryen-*; do
  if [ -d "$d" ] && [ ! -d "$cache_b/$(basename "$d")" ]; then cp -a "$d" "$cache_b/"; fi
done
if [ "$full" = 1 ]; then rm -rf "$cache_b/opt"
elif [ -d "$cache_a/opt" ]; then mkdir -p "$cache_b/opt" && cp -an "$cache_a/opt/." "$cache_b/opt/"; fi

run_b=()
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
  chmod 755 "$tmp"
  chown -R nobody: "$tmp/another" "$cache_b" "$home_b"
  run_b=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
  who=nobody
else
  who=$(id -un)
fi
echo "repro: build 2: $clone, cache $cache_b, HOME $home_b, user $who$([ "$full" = 1 ] && echo ', full')"
t1=$(date +%s)
# Login-like environment: no CARGO_HOME/AOS_* from this one; another umask, zone, locale.
if ! (cd "$clone" && umask 077 &&
      "${run_b[@]}" env -u CARGO_HOME -u CARGO_TARGET_DIR -u AOS_STACK_SIZE -u AOS_ASYNCIFY_ALL \
        HOME="$home_b" USER="$who" LOGNAME="$who" AOS_BUILD_CACHE="$cache_b" TZ=Pacific/Chatham LANG=de_DE.UTF-8 \
        LC_ALL=de_DE.UTF-8 SOURCE_DATE_EPOCH="$(date +%s)" ./build.sh) > "$tmp/build2.log" 2>&1; then
  tail -40 "$tmp/build2.log"; keep=1; exit 1
fi
t2=$(date +%s)
wasm_b=$(sum "$clone/AOS.wasm"); raw_b=$(sum "$cache_b/link/AOS.raw.wasm")
sed -n '/^Timings:/,$p' "$tmp/build2.log"
grep -q 'wasm-opt: cached' "$tmp/build2.log" && echo "repro: build 2 reused wasm-opt's result for the same linked module"

echo "repro: linked module  $raw_a  $raw_b"
echo "repro: AOS.wasm       $wasm_a  $wasm_b"
echo "repro: build 2 took $((t2 - t1)) s, the whole check $((t2 - t0)) s"
if [ "$raw_a" != "$raw_b" ] || [ "$wasm_a" != "$wasm_b" ]; then
  cmp "$root/AOS.wasm" "$clone/AOS.wasm" | head -1 || true
  echo "repro: FAIL: the build depends on its path, cache, HOME, user or environment" >&2
  keep=1; exit 1
fi
echo "repro: ok, one sha256 from both builds: $wasm_a"
