// A deterministic generator of llama2.c v1 checkpoints with random weights, streamed to a
// file (a fixed 4 MiB buffer, never the whole model in memory), for the large-model test.
//
// Layout (llama2.c export.py version 1, as `llama::export::Checkpoint::to_v1()` writes it):
// u32 magic 0x616b3432 "ak42", i32 version 1, 7 × i32 (dim, hidden_dim, n_layers,
// n_heads, n_kv_heads, vocab_size, seq_len), u8 shared_classifier, zero padding to 256
// bytes; then f32 LE: attention norms (n_layers × dim), ffn norms (n_layers × dim), final
// norm (dim), token embeddings (vocab × dim), then per tensor kind, all layers in turn:
// wq (dim × dim), wk (kv_dim × dim), wv (kv_dim × dim), wo (dim × dim), w1 (hidden × dim),
// w2 (dim × hidden), w3 (hidden × dim). The classifier is shared with the embeddings.
import fs from 'node:fs'

const CHUNK = 1 << 20 // floats per write (4 MiB)

/** Size in bytes of the v1 checkpoint of `shape`. */
export const v1Size = ({ dim, hidden, layers, heads, kvHeads = heads, vocab }) => {
  const kvDim = dim * kvHeads / heads
  const floats = 2 * layers * dim + dim + vocab * dim +
    layers * (2 * dim * dim + 2 * dim * kvDim + 3 * dim * hidden)
  return 256 + 4 * floats
}

/**
 * Writes the checkpoint of `shape` ({dim, hidden, layers, heads, kvHeads?, vocab, seqLen})
 * to `file`: norms 1.0, every other weight uniform in [-scale, scale) from a xorshift32
 * seeded by `seed` (same arguments, same bytes). Returns the file's size.
 */
export const writeRandomV1 = (file, shape, { seed = 0x5eed, scale = 0.02 } = {}) => {
  const { dim, hidden, layers, heads, kvHeads = heads, vocab, seqLen } = shape
  const kvDim = dim * kvHeads / heads
  if (!Number.isInteger(kvDim) || dim % heads !== 0) throw new Error('bad head counts')
  const fd = fs.openSync(file, 'w')
  try {
    const header = Buffer.alloc(256)
    header.writeUInt32LE(0x616b3432, 0)
    header.writeInt32LE(1, 4)
    ;[dim, hidden, layers, heads, kvHeads, vocab, seqLen].forEach((v, i) => header.writeInt32LE(v, 8 + 4 * i))
    header.writeUInt8(1, 36) // shared classifier
    fs.writeSync(fd, header)

    const buf = new Float32Array(CHUNK)
    const bytes = new Uint8Array(buf.buffer)
    if (new Uint8Array(new Float32Array([1]).buffer)[3] !== 0x3f) throw new Error('big-endian host')
    let x = (seed | 0) || 1
    const k = 2 * scale / 4294967296
    const emit = (n, random) => {
      while (n > 0) {
        const m = Math.min(n, CHUNK)
        if (random) {
          for (let i = 0; i < m; i++) {
            x ^= x << 13; x ^= x >>> 17; x ^= x << 5
            buf[i] = (x >>> 0) * k - scale
          }
        } else buf.fill(1, 0, m)
        fs.writeSync(fd, bytes, 0, 4 * m)
        n -= m
      }
    }
    emit(2 * layers * dim + dim, false) // attention norms, ffn norms, final norm
    emit(vocab * dim, true) // embeddings (= classifier)
    for (const n of [dim * dim, kvDim * dim, kvDim * dim, dim * dim, hidden * dim, dim * hidden, hidden * dim]) {
      emit(layers * n, true)
    }
  } finally {
    fs.closeSync(fd)
  }
  const size = fs.statSync(file).size
  if (size !== v1Size(shape)) throw new Error(`wrote ${size} bytes, expected ${v1Size(shape)}`)
  return size
}

// `node model-gen.js OUT dim hidden layers heads vocab seq_len [seed]`
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [out, ...nums] = process.argv.slice(2)
  if (!out || nums.length < 6) {
    console.error('usage: node model-gen.js OUT DIM HIDDEN LAYERS HEADS VOCAB SEQ_LEN [SEED]')
    process.exit(2)
  }
  const [dim, hidden, layers, heads, vocab, seqLen, seed] = nums.map(Number)
  const t = Date.now()
  const size = writeRandomV1(out, { dim, hidden, layers, heads, vocab, seqLen }, { seed: seed || 0x5eed })
  console.log(`${out}: ${size} bytes in ${Date.now() - t} ms`)
}
