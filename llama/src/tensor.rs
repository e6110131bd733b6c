//! Weight matrices in the representations the kernels run on.

use alloc::vec::Vec;

use crate::ggml::{self, Activations, GgmlType};
use crate::kernels::{quantize_q8, Backend};

/// How a weight matrix's values are stored.
pub enum Storage {
    /// Plain f32 (llama2.c v0/v1; GGUF F32).
    F32(Vec<f32>),
    /// Symmetric int8 in groups of `group_size` consecutive values of a row, one f32
    /// scale per group (llama2.c v2, computed as runq.c does).
    Q8 { q: Vec<i8>, scales: Vec<f32>, group_size: usize },
    /// A GGUF tensor's bytes exactly as the file holds them: rows of ggml blocks.
    Ggml { ty: GgmlType, data: Vec<u8> },
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
            let mut t = crate::source::try_vec_with_capacity(v.len() - from, "a fused matrix's part")?;
            t.extend_from_slice(&v[from..]);
            v.truncate(from);
            // Give the tail's bytes back (dlmalloc and glibc shrink in place).
            v.shrink_to_fit();
            Ok(t)
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
            Storage::Ggml { ty, mut data } => {
                let rb = data.len() / rows;
                let t = tail(&mut data, at * rb)?;
                (Storage::Ggml { ty, data }, Storage::Ggml { ty, data: t })
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
            Storage::Ggml { ty, data } => {
                let rb = data.len() / self.rows;
                ggml::dequantize_row(*ty, &data[r * rb..(r + 1) * rb], out);
            }
        }
    }

    /// `out = W · x`. `scratch` holds the quantized activation for int8 weights, and
    /// the thread count: with more than one thread the rows are split between them,
    /// each row computed exactly as with one (so the bits do not depend on it).
    pub fn matvec(&self, backend: Backend, out: &mut [f32], x: &[f32], scratch: &mut QuantScratch) {
        debug_assert_eq!(x.len(), self.cols);
        debug_assert_eq!(out.len(), self.rows);
        // The activation is prepared once, as for one thread.
        match &self.storage {
            Storage::F32(_) => {}
            Storage::Q8 { group_size, .. } => {
                let n = x.len();
                quantize_q8(x, *group_size, &mut scratch.q[..n], &mut scratch.s[..n / group_size]);
            }
            Storage::Ggml { ty, .. } => scratch.act.prepare(ty.activation(), x),
        }
        #[cfg(feature = "std")]
        if scratch.threads > 1 && self.rows >= 2 * scratch.threads {
            return self.matvec_threaded(backend, scratch.threads, out, x, scratch);
        }
        self.rows_into(backend, 0, out, x, scratch);
    }

    #[cfg(feature = "std")]
    fn matvec_threaded(&self, backend: Backend, threads: usize, out: &mut [f32], x: &[f32], scratch: &mut QuantScratch) {
        let per = self.rows.div_ceil(threads);
        let shared: &QuantScratch = scratch;
        std::thread::scope(|s| {
            for (i, part) in out.chunks_mut(per).enumerate() {
                // Each worker has its own copy of the (small) activation buffers.
                let mut own = shared.clone();
                s.spawn(move || self.rows_into(backend, i * per, part, x, &mut own));
            }
        });
    }

    /// Rows `first .. first + out.len()` of `W · x`, the activation already prepared.
    fn rows_into(&self, backend: Backend, first: usize, out: &mut [f32], x: &[f32], scratch: &mut QuantScratch) {
        let (n, rows) = (self.cols, first..first + out.len());
        match &self.storage {
            Storage::F32(w) => backend.matmul_f32(out, &w[rows.start * n..rows.end * n], x),
            Storage::Q8 { q, scales, group_size } => {
                let gs = *group_size;
                let (xq, xs) = (&scratch.q[..n], &scratch.s[..n / gs]);
                let g = n / gs;
                backend.matmul_q8(out, &q[rows.start * n..rows.end * n], &scales[rows.start * g..rows.end * g], xq, xs, gs);
            }
            Storage::Ggml { ty, data } => {
                let rb = data.len() / self.rows;
                backend.matmul_ggml(*ty, out, &data[rows.start * rb..rows.end * rb], rb, &mut scratch.act);
            }
        }
    }
}

/// Reusable buffers for quantized activations (no allocation per token), and how many
/// threads a matrix-vector product may use.
#[derive(Clone)]
pub struct QuantScratch {
    pub q: Vec<i16>,
    pub s: Vec<f32>,
    /// The activation prepared for ggml weight types.
    pub act: Activations,
    /// Threads per matrix-vector product (1 without the `std` feature).
    pub threads: usize,
}

impl QuantScratch {
    pub fn new(max_cols: usize) -> Self {
        QuantScratch { q: alloc::vec![0; max_cols], s: alloc::vec![0.0; max_cols], act: Activations::new(), threads: 1 }
    }
}
