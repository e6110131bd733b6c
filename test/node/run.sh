#!/usr/bin/env bash
# Runs the Node smoke test of AOS.wasm under the real @permaweb/ao-loader.
# Installs the pinned dependencies (package-lock.json) if missing; the npm cache lives
# outside the repository. Needs Node >= 20 (memory64 behind a flag on 20 and 22).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
CACHE="${AOS_BUILD_CACHE:-$HOME/.cache/aos-llama}"
[ -f ../../AOS.wasm ] || [ -n "${AOS_WASM:-}" ] || { echo "run.sh: build AOS.wasm first (./build.sh)" >&2; exit 1; }
if [ ! -d node_modules/@permaweb/ao-loader ]; then
  npm ci --cache "$CACHE/npm-cache" --no-audit --no-fund --loglevel=error
fi
exec node --experimental-wasm-memory64 --test --test-reporter=spec smoke.test.js
