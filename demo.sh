#!/usr/bin/env bash
# The main job: an LLM inside an AO process, and its answer checked without trusting it.
#  1. build the aos-llama CLI and AOS.wasm (the AO module);
#  2. spawn a process from AOS.wasm in the local compute unit, load stories260K from
#     /data/<txid> through WeaveDrive, generate 200 greedy tokens;
#  3. generate the same natively and compare byte for byte;
#  4. send the process an Inference request and verify its reply natively.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/aos-llama/target}
models=../shared/models/stories260K
[ -d "$models" ] || { echo "demo.sh: $models is missing (the models live beside the repository)" >&2; exit 1; }

cargo build --release --locked -q -p aos-llama
bin=$CARGO_TARGET_DIR/release/aos-llama
./build.sh >/dev/null

data=$(mktemp -d); trap 'rm -rf "$data"' EXIT
model=stories260K-bin-txid-aaaaaaaaaaaaaaaaaaaaaa
tok=tok512-bin-txid-bbbbbbbbbbbbbbbbbbbbbbbbbbb
cp "$models/stories260K.bin" "$data/$model"
cp "$models/tok512.bin" "$data/$tok"

echo "== AOS.wasm in the local compute unit: Llama.load(\"$model\", \"$tok\") Llama.setPrompt(\"\") return Llama.run(200)"
"$bin" eval --module AOS.wasm --data-dir "$data" \
  "Llama.load(\"$model\", \"$tok\") Llama.setPrompt(\"\") return Llama.run(200)" | tee "$data/wasm.txt"
"$bin" run --model "$data/$model" --tokenizer "$data/$tok" --temperature 0 --steps 200 >"$data/native.txt" 2>/dev/null
cmp "$data/wasm.txt" "$data/native.txt" && echo "== identical to the native engine's output, byte for byte"

echo "== an Inference request to the process, verified natively"
"$bin" process --module AOS.wasm --data-dir "$data" >"$data/session.txt" <<LUA
:send Action=Inference Model=$model Tokenizer=$tok Max-Tokens=100 Temperature=0.8 Seed=7 -- Once upon a time
:messages
LUA
python3 - "$data/session.txt" "$data/reply.json" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
replies = json.loads(text[text.index('['):text.rindex(']') + 1])
json.dump(replies[0], open(sys.argv[2], 'w'))
tags = {t['name']: t['value'] for t in replies[0]['Tags']}
print(json.dumps({k: tags[k] for k in ('Action', 'Tokens', 'Trace-Root', 'Output-SHA256')}, indent=1))
PY
"$bin" verify --model "$data/$model" --tokenizer "$data/$tok" --claim "$data/reply.json" --prompt "Once upon a time"
