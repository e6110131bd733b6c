#!/usr/bin/env bash
# Writes seed inputs for the fuzz targets from ../shared/models into $1/<target>/
# (outside the repository: the model bytes are not ours to commit).
set -euo pipefail
out=$1
models=$(cd "$(dirname "$0")/../../shared/models" && pwd)
mkdir -p "$out"/{checkpoint,gguf,tokenizer}
cp "$models/stories260K/stories260K.bin" "$out/checkpoint/v0"
tail -c +5 "$models/stories260K/stories260K_q80.bin" > "$out/checkpoint/v2-after-magic"
tail -c +5 "$models/stories260K/stories260K-f32.gguf" > "$out/gguf/f32"
tail -c +5 "$models/stories260K/stories260K-q8_0.gguf" > "$out/gguf/q8_0"
# tokenizer target: 2 bytes vocab (512 - 3 = 509), 1 byte text length, text, file
{ printf '\xfd\x01\x0bHello world'; cat "$models/stories260K/tok512.bin"; } > "$out/tokenizer/tok512"
