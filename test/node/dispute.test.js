// Disputes under the real @permaweb/ao-loader: AOS.wasm arbitrates, `aos-llama dispute`
// plays both parties (the messages are the ones tools/tests/dispute.rs sends the wasmtime
// compute unit). The claim is the process's own Inference-Response; a challenger with a
// trace of another model loses, a claim computed with another model loses at position 0,
// layer 0, and a silent claimant loses on timeout.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { REPO, message, env, fileWeaveDrive, dataDir, loader, cliBin } from './helpers.js'

const S260K = path.join(process.env.AOS_MODELS || path.join(REPO, '..', 'shared', 'models'), 'stories260K')
const data = dataDir({ model: path.join(S260K, 'stories260K.bin'), tok: path.join(S260K, 'tok512.bin') })
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aos-node-dispute-'))
after(() => { data.cleanup(); fs.rmSync(tmp, { recursive: true, force: true }) })

const CLAIMANT = 'CLAIMANT-' + 'c'.repeat(34)
const CHALLENGER = 'CHALLENGER-' + 'h'.repeat(32)
const BYSTANDER = 'BYSTANDER-' + 'b'.repeat(33)
const PROMPT = 'Once upon a time'
const tagsOf = (m) => Object.fromEntries(m.Tags.map((t) => [t.name, t.value]))

const cli = (args) => {
  const r = spawnSync(cliBin, args, { encoding: 'utf8' })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

// A native trace of the request every dispute here is about.
const trace = (name, model) => {
  const out = path.join(tmp, name + '.trace.json')
  const r = cli(['trace', '--model', path.join(S260K, model), '--tokenizer', path.join(S260K, 'tok512.bin'), '--prompt', PROMPT,
    '--steps', '24', '--temperature', '0.8', '--seed', '7', '--model-id', data.ids.model, '--out', out])
  assert.equal(r.code, 0, r.err)
  const claim = JSON.parse(r.out)
  claim.Tokenizer = data.ids.tok
  return { claim, file: out }
}

// Play one dispute to its verdict; `silent` names a party that never answers.
async function play (state, claim, claimTrace, challengerTrace, silent) {
  const claimFile = path.join(tmp, 'claim.json')
  fs.writeFileSync(claimFile, JSON.stringify(claim))
  const open = cli(['dispute', 'challenge', '--trace', challengerTrace, '--claim', claimFile, '--claimant', CLAIMANT, '--timeout', '5'])
  assert.equal(open.code, 0, open.err)
  const deliver = async (from, m) => {
    const msg = message({ action: 'x', from, data: m.Data || '' })
    msg.Tags = m.Tags
    const r = await state.handle(state.memory, msg, env)
    assert.equal(r.Error, undefined, r.Error)
    state.memory = r.Memory
    for (const out of r.Messages) assert.notEqual(tagsOf(out).Action, 'Dispute-Error', JSON.stringify(out))
    return r.Messages
  }
  let queue = await deliver(CHALLENGER, JSON.parse(open.out))
  for (;;) {
    if (queue.length === 0) {
      assert.ok(silent, 'the arbiter stopped asking without a verdict')
      queue = await deliver(BYSTANDER, { Tags: [{ name: 'Action', value: 'Ping' }], Data: '' })
      continue
    }
    const verdict = queue.find((m) => tagsOf(m).Action === 'Dispute-Resolved')
    if (verdict) return tagsOf(verdict)
    const m = queue.shift()
    const role = m.Target === CLAIMANT ? 'claimant' : 'challenger'
    if (silent === role) continue
    const req = path.join(tmp, 'request.json')
    fs.writeFileSync(req, JSON.stringify(m))
    const r = cli(['dispute', role === 'claimant' ? 'claim' : 'challenge', '--trace', role === 'claimant' ? claimTrace : challengerTrace, '--request', req])
    assert.equal(r.code, 0, r.err)
    queue.push(...await deliver(role === 'claimant' ? CLAIMANT : CHALLENGER, JSON.parse(r.out)))
  }
}

test('disputes under ao-loader: the process\'s own claim survives, another model loses at layer 0, silence loses', async () => {
  assert.ok(cliBin, 'the aos-llama CLI was not found: build it (cargo build -p aos-llama) or set AOS_LLAMA_BIN')
  const state = { handle: await loader(fileWeaveDrive(data.dir)), memory: null }
  const honest = trace('honest', 'stories260K.bin')
  const other = trace('other', 'stories260K_q80.bin')

  // The claim: AOS.wasm's own Inference-Response (its Step-Root is the native trace's).
  const r = await state.handle(null, message({
    action: 'Inference',
    data: PROMPT,
    from: CLAIMANT,
    tags: [{ name: 'Model', value: data.ids.model }, { name: 'Tokenizer', value: data.ids.tok },
      { name: 'Max-Tokens', value: '24' }, { name: 'Temperature', value: '0.8' }, { name: 'Seed', value: '7' }]
  }), env)
  assert.equal(r.Error, undefined, r.Error)
  state.memory = r.Memory
  const reply = { ...r.Messages[0], Prompt: PROMPT }
  assert.equal(tagsOf(reply)['Step-Root'], honest.claim['Step-Root'])

  let v = await play(state, reply, honest.file, other.file)
  assert.equal(v['Winner-Role'], 'claimant', v.Reason)
  assert.equal(v.Index, '0')

  const otherClaim = { ...other.claim, Model: data.ids.model }
  v = await play(state, otherClaim, other.file, honest.file)
  assert.equal(v['Winner-Role'], 'challenger', v.Reason)
  assert.deepEqual([v.Position, v.Layer], ['0', '0'])

  v = await play(state, otherClaim, other.file, honest.file, 'claimant')
  assert.equal(v['Winner-Role'], 'challenger')
  assert.match(v.Reason, /stopped answering/)
})
