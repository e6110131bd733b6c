//! A GGUF whose matrices are Q8_0 and whose dims are multiples of 32 converts to q8
//! with group size 32 by copying the blocks: the engine then computes bit-identical
//! logits from the GGUF and from the converted file.

mod common;

use common::*;
use llama::Session;
use llama_convert::{gguf_to_llama2c, Format};

struct Gguf {
    kv: Vec<u8>,
    n_kv: u64,
    infos: Vec<u8>,
    data: Vec<u8>,
    n_tensors: u64,
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

impl Gguf {
    fn u32(&mut self, k: &str, v: u32) {
        string(&mut self.kv, k);
        self.kv.extend(4u32.to_le_bytes());
        self.kv.extend(v.to_le_bytes());
        self.n_kv += 1;
    }
    fn str(&mut self, k: &str, v: &str) {
        string(&mut self.kv, k);
        self.kv.extend(8u32.to_le_bytes());
        string(&mut self.kv, v);
        self.n_kv += 1;
    }
    fn strs(&mut self, k: &str, v: &[String]) {
        string(&mut self.kv, k);
        self.kv.extend(9u32.to_le_bytes());
        self.kv.extend(8u32.to_le_bytes());
        self.kv.extend((v.len() as u64).to_le_bytes());
        for s in v {
            string(&mut self.kv, s);
        }
        self.n_kv += 1;
    }
    fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, data: &[u8]) {
        while !self.data.len().is_multiple_of(32) {
            self.data.push(0);
        }
        string(&mut self.infos, name);
        self.infos.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(ty.to_le_bytes());
        self.infos.extend((self.data.len() as u64).to_le_bytes());
        self.data.extend(data);
        self.n_tensors += 1;
    }
    fn bytes(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(self.n_tensors.to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(&self.kv);
        out.extend(&self.infos);
        while !out.len().is_multiple_of(32) {
            out.push(0);
        }
        out.extend(&self.data);
        out
    }
}

/// Deterministic pseudo-random bytes.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn q8_0(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..n / 32 {
            let d: u16 = 0x2000 + (self.next() % 0x400) as u16; // f16 in [2^-7, 2^-6)
            out.extend(d.to_le_bytes());
            out.extend((0..32).map(|_| (self.next() % 255) as u8 ^ 0x80));
        }
        out
    }
    fn norm(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|_| (0.5 + (self.next() % 1000) as f32 / 1000.0).to_le_bytes())
            .collect()
    }
}

#[test]
fn q8_0_blocks_are_kept_with_group_size_32() {
    let (dim, hidden, layers, vocab) = (64u64, 128u64, 2, 512u64);
    let kv = dim / 2; // 4 heads, 2 kv heads
    let mut g = Gguf {
        kv: vec![],
        n_kv: 0,
        infos: vec![],
        data: vec![],
        n_tensors: 0,
    };
    g.str("general.architecture", "llama");
    g.u32("general.alignment", 32);
    g.u32("llama.embedding_length", dim as u32);
    g.u32("llama.feed_forward_length", hidden as u32);
    g.u32("llama.block_count", layers);
    g.u32("llama.attention.head_count", 4);
    g.u32("llama.attention.head_count_kv", 2);
    g.u32("llama.context_length", 64);
    g.str("tokenizer.ggml.model", "llama");
    g.strs(
        "tokenizer.ggml.tokens",
        &(0..vocab).map(|i| format!("t{i}")).collect::<Vec<_>>(),
    );
    let mut r = Lcg(7);
    let (f32t, q8t) = (0, 8);
    g.tensor(
        "token_embd.weight",
        &[dim, vocab],
        q8t,
        &r.q8_0((dim * vocab) as usize),
    );
    for l in 0..layers {
        g.tensor(
            &format!("blk.{l}.attn_norm.weight"),
            &[dim],
            f32t,
            &r.norm(dim as usize),
        );
        g.tensor(
            &format!("blk.{l}.attn_q.weight"),
            &[dim, dim],
            q8t,
            &r.q8_0((dim * dim) as usize),
        );
        g.tensor(
            &format!("blk.{l}.attn_k.weight"),
            &[dim, kv],
            q8t,
            &r.q8_0((dim * kv) as usize),
        );
        g.tensor(
            &format!("blk.{l}.attn_v.weight"),
            &[dim, kv],
            q8t,
            &r.q8_0((dim * kv) as usize),
        );
        g.tensor(
            &format!("blk.{l}.attn_output.weight"),
            &[dim, dim],
            q8t,
            &r.q8_0((dim * dim) as usize),
        );
        g.tensor(
            &format!("blk.{l}.ffn_norm.weight"),
            &[dim],
            f32t,
            &r.norm(dim as usize),
        );
        g.tensor(
            &format!("blk.{l}.ffn_gate.weight"),
            &[dim, hidden],
            q8t,
            &r.q8_0((dim * hidden) as usize),
        );
        g.tensor(
            &format!("blk.{l}.ffn_down.weight"),
            &[hidden, dim],
            q8t,
            &r.q8_0((dim * hidden) as usize),
        );
        g.tensor(
            &format!("blk.{l}.ffn_up.weight"),
            &[dim, hidden],
            q8t,
            &r.q8_0((dim * hidden) as usize),
        );
    }
    g.tensor("output_norm.weight", &[dim], f32t, &r.norm(dim as usize));
    g.tensor(
        "output.weight",
        &[dim, vocab],
        q8t,
        &r.q8_0((dim * vocab) as usize),
    );

    let d = tempfile::tempdir().unwrap();
    let (gguf, out) = (
        d.path().join("synthetic-q8_0.gguf"),
        d.path().join("q8.bin"),
    );
    std::fs::write(&gguf, g.bytes()).unwrap();
    let s = gguf_to_llama2c(
        &gguf,
        &out,
        Format::Q8 { group_size: None },
        &mut no_progress(),
    )
    .unwrap();
    assert_eq!(
        s.format,
        Format::Q8 {
            group_size: Some(32)
        }
    );
    assert!(!s.shared_classifier);
    assert_eq!(s.q8_tensors_kept, 2 + 7 * layers as usize);

    let tok = stories().join("tok512.bin");
    // The kept blocks are the same weights; the two formats differ only in how the engine
    // quantizes activations (llama.cpp's Q8_0 with f16 scales for GGUF, runq.c's for llama2.c
    // v2), so the logits agree closely and pick the same tokens, not bit for bit.
    let logits = |path: &std::path::Path| {
        let mut s = Session::new(load(path, Some(&tok))).unwrap();
        let mut rows = Vec::new();
        for id in [1u32, 400, 36, 99, 7, 300, 2] {
            s.add_tokens(&[id]).unwrap();
            rows.push(s.logits().to_vec());
        }
        rows
    };
    let m = load(&out, Some(&tok));
    assert_eq!(m.format, llama::Format::Llama2cV2 { group_size: 32 });
    let argmax = |r: &[f32]| r.iter().enumerate().fold(0, |b, (i, &v)| if v > r[b] { i } else { b });
    for (pos, (a, b)) in logits(&gguf).iter().zip(logits(&out)).enumerate() {
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = a.iter().zip(&b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= 0.05 * scale, "position {pos}: logits differ by {diff} (scale {scale})");
        assert_eq!(argmax(a), argmax(&b), "position {pos}: the two formats pick different tokens");
    }

    // An explicit other group size requantizes instead.
    let s = gguf_to_llama2c(
        &gguf,
        &out,
        Format::Q8 {
            group_size: Some(64),
        },
        &mut no_progress(),
    )
    .unwrap();
    assert_eq!(s.q8_tensors_kept, 0);
    assert_eq!(
        load(&out, Some(&tok)).format,
        llama::Format::Llama2cV2 { group_size: 64 }
    );
}
