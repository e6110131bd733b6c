// The version 2 trace format (llama/src/trace.rs, "Format, version 2") written again from
// its documentation: a second implementation of the leaves and the RFC 6962 tree, so a
// test can edit a trace file's entries (forge it) and give it the root a forger would.
import crypto from 'node:crypto'

const sha256 = (...parts) => {
  const h = crypto.createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b }
const VERSION = Buffer.from('aos-llama-trace-v2')

/** The leaf of one entry of a trace file's `v2.entries` (vectors as hex f32 LE). */
export function leaf (e) {
  if (e.kind === 'head') {
    return sha256(Buffer.from([0]), VERSION, Buffer.from('H'), u32(e.position), u32(e.token), Buffer.from(e.logits, 'hex'))
  }
  const digest = (hex) => sha256(Buffer.from(hex, 'hex'))
  return sha256(Buffer.from([0]), VERSION, Buffer.from('L'), u32(e.position), u32(e.layer), digest(e.out), digest(e.key), digest(e.value))
}

/** RFC 6962 Merkle tree hash over leaves. */
export function merkleRoot (leaves) {
  if (leaves.length === 0) return sha256(Buffer.alloc(0))
  if (leaves.length === 1) return leaves[0]
  let k = 1
  while (k * 2 < leaves.length) k *= 2
  return sha256(Buffer.from([1]), merkleRoot(leaves.slice(0, k)), merkleRoot(leaves.slice(k)))
}

/** The root of a trace file's v2 part, recomputed from its entries (hex). */
export const rootOf = (v2) => merkleRoot(v2.entries.map(leaf)).toString('hex')
