//! Writers for llama2.c checkpoints (v1 fp32, v2 int8): the CLI's `bench` builds
//! models with them and `convert` writes its output with them. Bytes out, no I/O.

use alloc::vec;
use alloc::vec::Vec;

/// A model's tensors in llama2.c's logical layout (row-major, per layer).
pub struct Checkpoint {
    pub dim: usize,
    pub hidden_dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub vocab_size: usize,
    pub seq_len: usize,
    pub embed: Vec<f32>,
    pub attn_norm: Vec<Vec<f32>>,
    pub wq: Vec<Vec<f32>>,
    pub wk: Vec<Vec<f32>>,
    pub wv: Vec<Vec<f32>>,
    pub wo: Vec<Vec<f32>>,
    pub ffn_norm: Vec<Vec<f32>>,
    pub w1: Vec<Vec<f32>>,
    pub w2: Vec<Vec<f32>>,
    pub w3: Vec<Vec<f32>>,
    pub final_norm: Vec<f32>,
    /// `None`: tied to the embeddings.
    pub classifier: Option<Vec<f32>>,
}

fn header(c: &Checkpoint, version: i32, out: &mut Vec<u8>) {
    out.extend_from_slice(&0x616b_3432u32.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    for v in [c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len] {
        out.extend_from_slice(&(v as i32).to_le_bytes());
    }
    out.push(c.classifier.is_none() as u8);
}

fn floats(out: &mut Vec<u8>, v: &[f32]) {
    out.reserve(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

impl Checkpoint {
    fn norms(&self, out: &mut Vec<u8>) {
        for n in self.attn_norm.iter().chain(&self.ffn_norm) {
            floats(out, n);
        }
        floats(out, &self.final_norm);
    }

    fn matrices(&self) -> Vec<&[f32]> {
        let mut m: Vec<&[f32]> = vec![&self.embed];
        for group in [&self.wq, &self.wk, &self.wv, &self.wo, &self.w1, &self.w2, &self.w3] {
            m.extend(group.iter().map(|w| w.as_slice()));
        }
        if let Some(c) = &self.classifier {
            m.push(c);
        }
        m
    }

    /// llama2.c version 1: fp32 with a 256-byte header.
    pub fn to_v1(&self) -> Vec<u8> {
        let mut out = Vec::new();
        header(self, 1, &mut out);
        out.resize(256, 0);
        self.norms(&mut out);
        for m in self.matrices() {
            floats(&mut out, m);
        }
        out
    }

    /// llama2.c version 2: int8 in groups of `gs` (which must divide dim and hidden_dim).
    pub fn to_v2(&self, gs: usize) -> Vec<u8> {
        assert!(self.dim % gs == 0 && self.hidden_dim % gs == 0, "group size must divide dim and hidden_dim");
        let mut out = Vec::new();
        header(self, 2, &mut out);
        out.extend_from_slice(&(gs as i32).to_le_bytes());
        out.resize(256, 0);
        self.norms(&mut out);
        for m in self.matrices() {
            let (q, s) = quantize_q80(m, gs);
            out.extend(q.iter().map(|&v| v as u8));
            floats(&mut out, &s);
        }
        out
    }
}

/// Symmetric int8 per group, as llama2.c's export.py (torch.round: ties to even).
pub fn quantize_q80(w: &[f32], gs: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = Vec::with_capacity(w.len());
    let mut s = Vec::with_capacity(w.len() / gs);
    for g in w.chunks_exact(gs) {
        let wmax = g.iter().fold(0.0f32, |m, v| m.max(libm::fabsf(*v)));
        let scale = wmax / 127.0;
        s.push(scale);
        q.extend(g.iter().map(|v| if scale == 0.0 { 0 } else { libm::rintf(v / scale) as i8 }));
    }
    (q, s)
}

/// The group size llama2.c's export would pick: the largest of 64/32/16/8/4/2/1
/// dividing both dim and hidden_dim.
pub fn default_group_size(dim: usize, hidden_dim: usize) -> usize {
    [64, 32, 16, 8, 4, 2, 1].into_iter().find(|g| dim % g == 0 && hidden_dim % g == 0).unwrap()
}
