//! Weight matrices in the representations the kernels run on.

use alloc::vec::Vec;

use crate::ggml::{self, Activations, GgmlType};
use crate::kernels::{quantize_q8, Backend, BlockScales};

/// How a weight matrix's values are stored.
pub enum Storage {
    /// Plain f32 (llama2.c v0/v1; GGUF F32).
    F32(Vec<f32>),
    /// Symmetric int8 in groups of `group_size` consecutive values of a row, one f32
    /// scale per group (llama2.c v2, computed as runq.c does).
    Q8 { q: Vec<i8>, scales: Vec<f32>, group_size: usize },
    /// A GGUF tensor's bytes exactly as the file holds them: rows of ggml blocks, and
    /// their scales widened for the kernels that read them so ([`BlockScales`]: wasm's).
    Ggml { ty: GgmlType, data: Vec<u8>, scales: BlockScales },
}

/// A row-major `rows × cols` matrix: `out = W · x` maps `cols` inputs to `rows` outputs.
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub storage: Storage,
}

impl Matrix {
    pub fn type_name(&self) -> &'static str {
        match self.storage {
            Storage::F32(_) => "f32",
            Storage::Q8 { .. } => "q8_0",
            Storage::Ggml { ty, .. } => ty.name(),
        }
    }

    pub fn bytes(&self) -> u64 {
        match &self.storage {
            Storage::F32(w) => 4 * w.len() as u64,
            Storage::Q8 { q, scales, .. } => q.len() as u64 + 4 * scales.len() as u64,
            Storage::Ggml { data, .. } => data.len() as u64,
        }
    }

    /// Split a fused matrix by rows: rows `0..at` and the rest (Phi-3's `attn_qkv`,
    /// its gate ‖ up `ffn_up`). Rows are stored whole, so each part computes exactly
    /// what the fused matrix computed for those rows.
    pub fn split_rows(self, at: usize) -> crate::Result<(Matrix, Matrix)> {
        debug_assert!(at <= self.rows);
        fn tail<T: Copy>(v: &mut Vec<T>, from: usize) -> crate::Result<Vec<T>> {
            crate::source::split_vec_off(v, from, "a fused matrix's part")
        }
        let (rows, cols) = (self.rows, self.cols);
        let rest = match self.storage {
            Storage::F32(mut w) => {
                let t = tail(&mut w, at * cols)?;
                (Storage::F32(w), Storage::F32(t))
            }
            Storage::Q8 { mut q, mut scales, group_size } => {
                let (tq, ts) = (tail(&mut q, at * cols)?, tail(&mut scales, at * cols / group_size)?);
                (Storage::Q8 { q, scales, group_size }, Storage::Q8 { q: tq, scales: ts, group_size })
            }
            Storage::Ggml { ty, mut data, mut scales } => {
                let rb = data.len() / rows;
                let t = tail(&mut data, at * rb)?;
                let ts = scales.split_off(at * (rb / ty.block_bytes()))?;
                (Storage::Ggml { ty, data, scales }, Storage::Ggml { ty, data: t, scales: ts })
            }
        };
        Ok((Matrix { rows: at, cols, storage: rest.0 }, Matrix { rows: rows - at, cols, storage: rest.1 }))
    }

    /// Copy row `r`, dequantized, into `out`.
    pub fn row_into(&self, r: usize, out: &mut [f32]) {
        let n = self.cols;
        match &self.storage {
            Storage::F32(w) => out.copy_from_slice(&w[r * n..(r + 1) * n]),
            Storage::Q8 { q, scales, group_size } => {
                let row = &q[r * n..(r + 1) * n];
                let s = &scales[r * (n / group_size)..];
                for (j, (o, &v)) in out.iter_mut().zip(row).enumerate() {
                    // int8 times f32, as runq.c's dequantize().
                    *o = v as f32 * s[j / group_size];
                }
            }
            Storage::Ggml { ty, data, .. } => {
                let rb = data.len() / self.rows;
                ggml::dequantize_row(*ty, &data[r * rb..(r + 1) * rb], out);
            }
        }
    }

    /// `out = W · x`. `scratch` holds the quantized activation for int8 weights, and
    /// the thread count: with more than one thread the rows are split between them,
    /// each row computed exactly as with one (so the bits do not depend on it).
    pub fn matvec(&self, backend: Backend, out: &mut [f32], x: &[f32], scratch: &mut QuantScratch) {
        self.matmul(backend, out, x, scratch)
    }

    /// `out[t] = W · x[t]` for the `n = x.len() / cols` vectors of `x` (row-major,
    /// `n × cols` into `n × rows`): each output is computed exactly as [`Matrix::matvec`]
    /// computes it alone, so the bits do not depend on batching. What batching changes
    /// is memory traffic: the rows go in chunks small enough to stay in cache while
    /// every vector passes over them, so the weights are read from memory once per
    /// batch instead of once per vector (prompt processing).
    pub fn matmul(&self, backend: Backend, out: &mut [f32], x: &[f32], scratch: &mut QuantScratch) {
        let n = x.len() / self.cols;
        debug_assert_eq!(x.len(), n * self.cols);
        debug_assert_eq!(out.len(), n * self.rows);
        debug_assert!(n >= 1 && n <= scratch.acts.len());
        // Each activation is prepared once, as for one thread.
        for (t, xt) in x.chunks_exact(self.cols).enumerate() {
            match &self.storage {
                Storage::F32(_) => {}
                Storage::Q8 { group_size, .. } => {
                    let (c, g) = (self.cols, self.cols / group_size);
                    quantize_q8(xt, *group_size, &mut scratch.q[t * c..(t + 1) * c], &mut scratch.s[t * g..(t + 1) * g]);
                }
                Storage::Ggml { ty, .. } => scratch.acts[t].prepare_with(backend, ty.activation(), xt),
            }
        }
        #[cfg(feature = "std")]
        if scratch.threads > 1 && self.rows >= 2 * scratch.threads && n * self.rows * self.row_bytes() >= scratch.split_bytes {
            return self.matmul_threaded(backend, scratch.threads, out, x, n, scratch);
        }
        self.block_into(backend, 0..self.rows, out, x, n, scratch);
    }

    #[cfg(feature = "std")]
    fn matmul_threaded(&self, backend: Backend, threads: usize, out: &mut [f32], x: &[f32], n: usize, scratch: &mut QuantScratch) {
        let per = self.rows.div_ceil(threads);
        // Part k: rows k·per.., into its own `n × rows` outputs (copied into place below).
        let mut parts: Vec<(usize, Vec<f32>)> = (0..self.rows).step_by(per).map(|first| (first, Vec::new())).collect();
        let run = |first: usize, part: &mut Vec<f32>, own: &mut QuantScratch| {
            let rows = first..(first + per).min(self.rows);
            *part = alloc::vec![0.0f32; n * rows.len()];
            self.block_into(backend, rows, part, x, n, own);
        };
        let (mine, theirs) = parts.split_first_mut().expect("rows >= 2 * threads");
        // The other parts on the pool's threads, each with its own copy of the `n` prepared
        // activations (QuantScratch::for_batch); the first here, on `scratch` itself.
        let mut copies: Vec<QuantScratch> = theirs.iter().map(|_| scratch.for_batch(n, &self.storage, self.cols)).collect();
        let pool = scratch.pool.clone().expect("set_threads made the pool");
        pool.in_place_scope(|s| {
            for ((first, part), own) in theirs.iter_mut().zip(copies.iter_mut()) {
                s.spawn(|_| run(*first, part, own));
            }
            run(mine.0, &mut mine.1, scratch);
        });
        for (first, part) in parts {
            let len = part.len() / n;
            for (t, p) in part.chunks_exact(len).enumerate() {
                out[t * self.rows + first..t * self.rows + first + len].copy_from_slice(p);
            }
        }
    }

    /// Rows `rows` of every product, into `out` (`n × rows.len()`), the activations
    /// prepared. Chunks of rows of about [`CHUNK_BYTES`] stay in cache while each of
    /// the `n` vectors runs over them.
    fn block_into(&self, backend: Backend, rows: core::ops::Range<usize>, out: &mut [f32], x: &[f32], n: usize, scratch: &mut QuantScratch) {
        let width = rows.len();
        let tiled = matches!(&self.storage, Storage::Ggml { ty, .. } if backend.tiles_ggml(*ty));
        let chunk = if n == 1 || tiled {
            width.max(1)
        } else {
            let fit = (CHUNK_BYTES / self.row_bytes().max(1)).max(1);
            match &self.storage {
                // Whole register tiles: 2048-wide f32 rows made chunks of 8 rows, whose last
                // two ran one at a time (on an EPYC, chunks of 6, two AVX2 tiles, ran 12% faster).
                Storage::F32(_) => {
                    let tile = backend.f32_tile_rows();
                    (fit / tile * tile).max(tile)
                }
                _ => fit,
            }
        };
        let mut r0 = rows.start;
        while r0 < rows.end {
            let r1 = (r0 + chunk).min(rows.end);
            // All the batch's vectors through the chunk together (packed weights decoded
            // once; f32 in register tiles of rows × vectors); int8 and single vectors one by one.
            match (&self.storage, n > 1) {
                (Storage::Ggml { ty, data, scales }, true) => {
                    let rb = data.len() / self.rows;
                    let sc = scales.rows(r0..r1, rb / ty.block_bytes());
                    backend.matmul_ggml_cols_with_scales(*ty, out, r0 - rows.start, width, &data[r0 * rb..r1 * rb], rb, sc, &mut scratch.acts[..n]);
                }
                (Storage::F32(w), true) => {
                    let c = self.cols;
                    backend.matmul_f32_cols(out, r0 - rows.start, width, &w[r0 * c..r1 * c], &x[..n * c], c);
                }
                _ => {
                    for t in 0..n {
                        let o = &mut out[t * width + (r0 - rows.start)..t * width + (r1 - rows.start)];
                        self.rows_into(backend, r0, o, &x[t * self.cols..(t + 1) * self.cols], scratch, t);
                    }
                }
            }
            r0 = r1;
        }
    }

    /// Bytes of one row in memory.
    fn row_bytes(&self) -> usize {
        match &self.storage {
            Storage::F32(_) => self.cols * 4,
            Storage::Q8 { group_size, .. } => self.cols + self.cols / group_size * 4,
            Storage::Ggml { data, .. } => data.len() / self.rows.max(1),
        }
    }

    /// Rows `first .. first + out.len()` of `W · x`, with vector `t`'s prepared activation.
    fn rows_into(&self, backend: Backend, first: usize, out: &mut [f32], x: &[f32], scratch: &mut QuantScratch, t: usize) {
        let (n, rows) = (self.cols, first..first + out.len());
        match &self.storage {
            Storage::F32(w) => backend.matmul_f32(out, &w[rows.start * n..rows.end * n], x),
            Storage::Q8 { q, scales, group_size } => {
                let gs = *group_size;
                let g = n / gs;
                let (xq, xs) = (&scratch.q[t * n..(t + 1) * n], &scratch.s[t * g..(t + 1) * g]);
                backend.matmul_q8(out, &q[rows.start * n..rows.end * n], &scales[rows.start * g..rows.end * g], xq, xs, gs);
            }
            Storage::Ggml { ty, data, scales } => {
                let rb = data.len() / self.rows;
                let sc = scales.rows(rows.clone(), rb / ty.block_bytes());
                backend.matmul_ggml_with_scales(*ty, out, &data[rows.start * rb..rows.end * rb], rb, sc, &mut scratch.acts[t]);
            }
        }
    }
}

/// Rows per chunk in a batched product: as many as fit in this many bytes (well
/// inside L2, so a chunk is read from memory once and from cache by the other vectors).
const CHUNK_BYTES: usize = 64 * 1024;

/// Reusable buffers for quantized activations (no allocation per token), one per
/// vector of a batch, and how many threads a matrix product may use.
#[derive(Clone)]
pub struct QuantScratch {
    /// int8 activations (llama2.c v2): `batch × max_cols` values and their group scales.
    pub q: Vec<i16>,
    pub s: Vec<f32>,
    /// The activations prepared for ggml weight types, one per vector of a batch.
    pub acts: Vec<Activations>,
    /// Threads per matrix product (1 without the `std` feature).
    pub threads: usize,
    /// The `threads - 1` helper threads ([`QuantScratch::set_threads`]), shared by clones.
    #[cfg(feature = "std")]
    pool: Option<std::sync::Arc<rayon::ThreadPool>>,
    /// Products smaller than this (weight bytes × vectors) run on one thread
    /// ([`THREADED_BYTES`] unless set).
    #[cfg(feature = "std")]
    pub split_bytes: usize,
}

impl QuantScratch {
    /// Buffers for batches of up to `batch` vectors of up to `max_cols` values.
    pub fn new(max_cols: usize, batch: usize) -> Self {
        let batch = batch.max(1);
        QuantScratch {
            q: alloc::vec![0; max_cols * batch],
            s: alloc::vec![0.0; max_cols * batch],
            acts: (0..batch).map(|_| Activations::new()).collect(),
            threads: 1,
            #[cfg(feature = "std")]
            pool: None,
            #[cfg(feature = "std")]
            split_bytes: THREADED_BYTES,
        }
    }

    /// Products split across `n` threads (natively, with the `std` feature; without it,
    /// one), `n - 1` of them a pool made here and kept (threads spawned for each product:
    /// SmolLM2 generated 24 tok/s on two threads, against 73 on one and 75 with the pool).
    pub fn set_threads(&mut self, n: usize) {
        self.threads = if cfg!(feature = "std") { n.max(1) } else { 1 };
        #[cfg(feature = "std")]
        if self.threads > 1 && self.pool.as_ref().is_none_or(|p| p.current_num_threads() != self.threads - 1) {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(self.threads - 1).thread_name(|i| format!("matmul-{i}")).build();
            self.pool = Some(std::sync::Arc::new(pool.expect("could not start the matmul threads")));
        }
    }
}

#[cfg(feature = "std")]
impl QuantScratch {
    /// A thread's copy of what a product of `n` vectors of `cols` values with these
    /// weights reads: the first `n` prepared activations (ggml types) or int8 vectors and
    /// their scales (llama2.c int8); nothing for f32, which reads `x`. (A copy of the whole
    /// scratch, every vector of the largest batch at the widest matrix, made two threads
    /// generate SmolLM2 at 15 tok/s, where one thread makes 73.)
    fn for_batch(&self, n: usize, storage: &Storage, cols: usize) -> QuantScratch {
        let (q, s, acts) = match storage {
            Storage::Q8 { group_size, .. } => (self.q[..n * cols].to_vec(), self.s[..n * (cols / group_size)].to_vec(), Vec::new()),
            Storage::Ggml { .. } => (Vec::new(), Vec::new(), self.acts[..n].to_vec()),
            Storage::F32(_) => (Vec::new(), Vec::new(), Vec::new()),
        };
        QuantScratch {
            q,
            s,
            acts,
            threads: 1,
            pool: None,
            split_bytes: usize::MAX,
        }
    }
}

/// Below this many weight bytes × vectors a product runs on one thread by default: handing
/// a small one to the pool (waking a thread, copying the activation) costs more than it
/// saves (two threads, 32 generated tokens: SmolLM2 38 tok/s with every product split, 60
/// from 256 KB, 85 from 1 MB, 71 from 4 MB; single rounds).
#[cfg(feature = "std")]
const THREADED_BYTES: usize = 1 << 20;
