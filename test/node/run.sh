#!/usr/bin/env bash
# Runs the Node tests of AOS.wasm under the real @permaweb/ao-loader: smoke, llama, inference, dispute
# (both need the aos-llama CLI built), aos, smollm2, gemma3 and large-gguf (need test/reference/fetch.sh's
# env.sh and AOS_1B_GGUF; skipped without, failed under AOS_REQUIRE_REFERENCE=1), large; or the
# files given.
# large.test.js writes a 1.16 GB model to $TMPDIR and needs ~5.5 GB of RAM; about 30 s.
# Installs the pinned dependencies (package-lock.json) if missing; the npm cache lives
# outside the repository. Needs Node >= 20 (memory64 behind a flag on 20 and 22).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
CACHE="${AOS_BUILD_CACHE:-$HOME/.cache/aos-llama}"
[ -f ../../AOS.wasm ] || [ -n "${AOS_WASM:-}" ] || { echo "run.sh: build AOS.wasm first (./build.sh)" >&2; exit 1; }
if [ ! -d node_modules/@permaweb/ao-loader ] || [ ! -d node_modules/@permaweb/weavedrive ]; then
  npm ci --cache "$CACHE/npm-cache" --no-audit --no-fund --loglevel=error
fi
[ $# -gt 0 ] || set -- smoke.test.js llama.test.js inference.test.js dispute.test.js aos.test.js smollm2.test.js gemma3.test.js large.test.js large-gguf.test.js
# --expose-gc: large.test.js drops the loader's 1.3 GB Memory copies between messages.
exec node --experimental-wasm-memory64 --expose-gc --test --test-reporter=spec "$@"
