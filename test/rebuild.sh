#!/usr/bin/env bash
# build.sh must rebuild a clone whose sources are older than the cache's last build. Cargo
# decides by mtimes, and build.sh copies the clone with its mtimes: without the per-file
# sums build.sh keeps, a checkout made earlier got the previous build's AOS.wasm back, so
# `./build.sh --check` could confirm a module its sources do not make.
# Here: a copy of this clone with one Lua comment more, every file dated 2001, built with
# the same cache, must give another module than this clone's AOS.wasm.
#   test/rebuild.sh        (after ./build.sh; ./test.sh runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f AOS.wasm ] || { echo "rebuild.sh: build AOS.wasm first (./build.sh)" >&2; exit 1; }
mine=$(sha256sum AOS.wasm | cut -c1-64)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/clone"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$dir/clone"
echo "-- one line more: another module (test/rebuild.sh)" >> "$dir/clone/lua/utils.lua"
find "$dir/clone" -exec touch -h -d '2001-01-01 00:00:00' {} +
if ! (cd "$dir/clone" && ./build.sh >"$dir/build.log" 2>&1); then
  tail -30 "$dir/build.log" >&2
  echo "rebuild.sh: the build of the old-dated copy failed" >&2
  exit 1
fi
theirs=$(sha256sum "$dir/clone/AOS.wasm" | cut -c1-64)
if [ "$mine" = "$theirs" ]; then
  echo "FAIL: a copy with other, older sources built to this clone's AOS.wasm ($mine): the cache's stale build was reused" >&2
  exit 1
fi
echo "ok: sources older than the cache's last build were rebuilt ($mine -> $theirs)"
