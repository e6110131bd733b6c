// Disputes under the real @permaweb/ao-loader: AOS.wasm arbitrates, `aos-llama dispute`
// plays both parties (the messages are the ones tools/tests/dispute.rs sends the wasmtime
// compute unit). The claim is the process's own Inference-Response; a challenger with a
// trace of another model loses, a claim computed with another model loses at position 0,
// layer 0, a forged layer output and a forged token lose where they were forged (the
// forged trace files are rehashed by trace-v2.js, the format written again from its
// documentation), a claim that runs on past its end token loses a Length challenge, and
// a silent claimant loses on timeout.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { REPO, message, env, fileWeaveDrive, dataDir, loader, cliBin } from './helpers.js'
import { rootOf } from './trace-v2.js'

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
const trace = (name, model, args = ['--steps', '24', '--seed', '7']) => {
  const out = path.join(tmp, name + '.trace.json')
  const r = cli(['trace', '--model', path.join(S260K, model), '--tokenizer', path.join(S260K, 'tok512.bin'), '--prompt', PROMPT,
    '--temperature', '0.8', '--model-id', data.ids.model, '--out', out, ...args])
  assert.equal(r.code, 0, r.err)
  const claim = JSON.parse(r.out)
  claim.Tokenizer = data.ids.tok
  return { claim, file: out }
}

// A copy of a trace with `edit` applied to its entries, rehashed: what a forger would post.
const forge = (t, name, edit) => {
  const file = JSON.parse(fs.readFileSync(t.file, 'utf8'))
  const honestRoot = rootOf(file.v2)
  assert.equal(honestRoot, t.claim['Step-Root'], 'trace-v2.js computes the engine\'s root')
  edit(file.v2.entries)
  file.v2.root = rootOf(file.v2)
  const out = path.join(tmp, name + '.trace.json')
  fs.writeFileSync(out, JSON.stringify(file))
  return { claim: { ...t.claim, 'Step-Root': file.v2.root }, file: out, entries: file.v2.entries }
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

test('disputes under ao-loader: the process\'s own claim survives; another model, a forged layer and a forged token lose where they differ; silence loses', async () => {
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

  // A forged layer output (layer 2 at position 8) and a forged token (sampled at position
  // 10) lose at the entry that was forged; the arbiter's recomputation is the honest leaf.
  const entries = JSON.parse(fs.readFileSync(honest.file, 'utf8')).v2.entries
  const layerAt = entries.findIndex((e) => e.kind === 'layer' && e.position === 8 && e.layer === 2)
  const forgedLayer = forge(honest, 'forged-layer', (es) => { es[layerAt].out = (es[layerAt].out[0] === '0' ? '1' : '0') + es[layerAt].out.slice(1) })
  v = await play(state, forgedLayer.claim, forgedLayer.file, honest.file)
  assert.equal(v['Winner-Role'], 'challenger', v.Reason)
  assert.deepEqual([v.Index, v.Position, v.Layer], [String(layerAt), '8', '2'])
  const headAt = entries.findIndex((e) => e.kind === 'head' && e.position === 10)
  const token = entries[headAt].token
  const forgedToken = forge(honest, 'forged-token', (es) => { es[headAt].token = (token + 1) % 512 })
  v = await play(state, forgedToken.claim, forgedToken.file, honest.file)
  assert.equal(v['Winner-Role'], 'challenger', v.Reason)
  assert.deepEqual([v.Index, v.Position, v.Token], [String(headAt), '10', String(token)])
  // The honest claim against the forger as challenger: the claim stands.
  v = await play(state, honest.claim, honest.file, forgedToken.file)
  assert.equal(v['Winner-Role'], 'claimant', v.Reason)
})

test('a claim that samples on past its end token loses a Length challenge under ao-loader', async () => {
  const state = { handle: await loader(fileWeaveDrive(data.dir)), memory: null }
  // Seed 1 ends its story at an end token before 240 tokens; the run-on claim does not stop.
  const honest = trace('honest-240', 'stories260K.bin', ['--steps', '240', '--seed', '1'])
  const runon = trace('runon-240', 'stories260K.bin', ['--steps', '240', '--seed', '1', '--no-stop'])
  const leaves = Number(honest.claim['Step-Leaves'])
  assert.ok(leaves < Number(runon.claim['Step-Leaves']))
  const v = await play(state, runon.claim, runon.file, honest.file)
  assert.equal(v['Winner-Role'], 'challenger', v.Reason)
  assert.equal(v.Index, String(leaves - 1))
  assert.match(v.Reason, /goes on/)
})
