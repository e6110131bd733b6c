// The Inference protocol under the real @permaweb/ao-loader: the reply a process gives
// verifies natively with `aos-llama verify` (the CLI, built by test.sh before these tests;
// AOS_LLAMA_BIN overrides its location).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFileSync, spawnSync } from 'node:child_process'
import { REPO, OWNER, message, env, fileWeaveDrive, dataDir, loader } from './helpers.js'

const MODELS = process.env.AOS_MODELS || path.join(REPO, '..', 'shared', 'models')
const S260K = path.join(MODELS, 'stories260K')
const data = dataDir({ model: path.join(S260K, 'stories260K.bin'), tok: path.join(S260K, 'tok512.bin') })
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aos-node-inference-'))
after(() => { data.cleanup(); fs.rmSync(tmp, { recursive: true, force: true }) })

const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'aos-llama', 'target')
const BIN = process.env.AOS_LLAMA_BIN || [path.join(targetDir, 'debug', 'aos-llama'), path.join(targetDir, 'release', 'aos-llama')]
  .find((p) => fs.existsSync(p))

const tagsOf = (m) => Object.fromEntries(m.Tags.map((t) => [t.name, t.value]))

test('an Inference reply from AOS.wasm under ao-loader verifies natively; a bad request gets Inference-Error', async () => {
  assert.ok(BIN, `the aos-llama CLI was not found under ${targetDir}: build it (cargo build -p aos-llama) or set AOS_LLAMA_BIN`)
  const handle = await loader(fileWeaveDrive(data.dir))
  const prompt = 'Once upon a time'
  const request = message({
    action: 'Inference',
    data: prompt,
    from: OWNER,
    tags: [
      { name: 'Model', value: data.ids.model },
      { name: 'Tokenizer', value: data.ids.tok },
      { name: 'Max-Tokens', value: '120' },
      { name: 'Temperature', value: '0.8' },
      { name: 'Seed', value: '7' },
      { name: 'Reference', value: '42' }
    ]
  })
  const r = await handle(null, request, env)
  assert.equal(r.Error, undefined, r.Error)
  assert.equal(r.Messages.length, 1)
  const reply = r.Messages[0]
  const tags = tagsOf(reply)
  assert.equal(tags.Action, 'Inference-Response')
  assert.equal(tags['X-Reference'], '42')
  assert.equal(tags.Tokens, '120')
  fs.writeFileSync(path.join(tmp, 'reply.json'), JSON.stringify(reply))
  const out = execFileSync(BIN, ['verify', '--model', path.join(S260K, 'stories260K.bin'), '--tokenizer',
    path.join(S260K, 'tok512.bin'), '--claim', path.join(tmp, 'reply.json'), '--prompt', prompt], { encoding: 'utf8' })
  assert.match(out, /^confirmed: 120 tokens/)

  // A forged reply is refuted (exit 1).
  const forged = { ...reply, Data: reply.Data.replace('a', 'o') }
  fs.writeFileSync(path.join(tmp, 'forged.json'), JSON.stringify(forged))
  const v = spawnSync(BIN, ['verify', '--model', path.join(S260K, 'stories260K.bin'), '--tokenizer',
    path.join(S260K, 'tok512.bin'), '--claim', path.join(tmp, 'forged.json'), '--prompt', prompt], { encoding: 'utf8' })
  assert.equal(v.status, 1, v.stdout + v.stderr)
  assert.match(v.stdout, /^refuted: the output differs/)

  // A request without a Model is answered, not dropped.
  const bad = await handle(r.Memory, message({ action: 'Inference', data: prompt, from: OWNER, tags: [{ name: 'Max-Tokens', value: '5' }] }), env)
  assert.equal(bad.Error, undefined)
  const badTags = tagsOf(bad.Messages[0])
  assert.equal(badTags.Action, 'Inference-Error')
  assert.match(badTags.Error, /Model/)
})
