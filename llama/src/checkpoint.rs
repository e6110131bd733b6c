//! llama2.c checkpoints: the legacy headerless v0, and the versioned files that start
//! with the magic `ak42` — v1 (fp32) and v2 (int8 Q8_0, as runq.c reads them).
//! The loaders compute the exact file size the header implies before reading any
//! tensor, so a truncated or lying file fails with a clear error, not an allocation.

use alloc::format;
use alloc::vec::Vec;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::{Format, Layer, Weights};
use crate::source::Reader;
use crate::tensor::{Matrix, Storage};

/// `ak42` read as a little-endian u32.
pub const MAGIC: u32 = 0x616b_3432;
const VERSIONED_HEADER: u64 = 256;

/// The seven i32s every llama2.c header holds. Returns the config and whether the
/// classifier is shared (v0 encodes "not shared" as a negative vocab_size).
fn read_params(r: &mut Reader, first: Option<i32>) -> Result<(Config, bool)> {
    let mut p = [0i32; 7];
    let mut start = 0;
    if let Some(v) = first {
        p[0] = v;
        start = 1;
    }
    for v in &mut p[start..] {
        *v = r.i32("checkpoint header")?;
    }
    let shared = p[5] > 0;
    let pos = |name: &str, v: i32| -> Result<usize> {
        if v <= 0 {
            return Err(Error::BadHeader(format!("{name} = {v} must be positive (not a llama2.c checkpoint?)")));
        }
        Ok(v as usize)
    };
    let (dim, n_heads) = (pos("dim", p[0])?, pos("n_heads", p[3])?);
    if dim % n_heads != 0 {
        return Err(Error::BadHeader(format!("dim {dim} is not a multiple of n_heads {n_heads}")));
    }
    let seq_len = pos("seq_len", p[6])?;
    let config = Config {
        dim,
        hidden_dim: pos("hidden_dim", p[1])?,
        n_layers: pos("n_layers", p[2])?,
        n_heads,
        n_kv_heads: pos("n_kv_heads", p[4])?,
        vocab_size: pos("vocab_size", p[5].checked_abs().unwrap_or(0))?,
        seq_len: seq_len.min(crate::gguf::DEFAULT_CONTEXT_CAP),
        train_context: seq_len,
        head_dim: dim / n_heads,
        rope_theta: 10000.0,
        rope_scale: 1.0,
        norm_eps: 1e-5,
        blocks: crate::arch::Blocks::llama(pos("n_layers", p[2])?.min(crate::config::MAX_LAYERS + 1)),
    };
    config.validate()?;
    Ok((config, shared))
}

/// Checked sum of products, in elements.
fn total(terms: &[(u64, u64)]) -> Result<u64> {
    terms.iter().try_fold(0u64, |acc, &(a, b)| a.checked_mul(b).and_then(|m| acc.checked_add(m))).ok_or_else(|| {
        Error::BadHeader("tensor sizes overflow".into())
    })
}

fn expect_size(r: &Reader, expected: Option<u64>) -> Result<()> {
    let expected = expected.ok_or_else(|| Error::BadHeader("tensor sizes overflow".into()))?;
    if expected != r.size() {
        if expected > r.size() {
            return Err(Error::Truncated {
                what: "the tensors the header describes".into(),
                needed: expected,
                available: r.size(),
            });
        }
        return Err(Error::BadHeader(format!(
            "the header describes a {expected}-byte file but it has {} bytes (wrong format or corrupt?)",
            r.size()
        )));
    }
    Ok(())
}

fn f32_matrix(r: &mut Reader, rows: usize, cols: usize, what: &str) -> Result<Matrix> {
    Ok(Matrix { rows, cols, storage: Storage::F32(r.f32s(rows * cols, what)?) })
}

fn q8_matrix(r: &mut Reader, rows: usize, cols: usize, gs: usize, what: &str) -> Result<Matrix> {
    let q = r.i8s(rows * cols, what)?;
    let scales = r.f32s(rows * cols / gs, what)?;
    Ok(Matrix { rows, cols, storage: Storage::Q8 { q, scales, group_size: gs } })
}

/// Per-layer tensors are stored kind by kind (every layer's wq, then every wk, ...):
/// read one kind for all layers.
fn per_layer<T>(n: usize, mut f: impl FnMut(usize) -> Result<T>) -> Result<Vec<T>> {
    (0..n).map(|l| f(l)).collect()
}

fn assemble(
    attn_norm: Vec<Vec<f32>>,
    ffn_norm: Vec<Vec<f32>>,
    mats: [Vec<Matrix>; 7],
) -> Vec<Layer> {
    let [wq, wk, wv, wo, w1, w2, w3] = mats;
    let mut it = (wq.into_iter(), wk.into_iter(), wv.into_iter(), wo.into_iter(), w1.into_iter(), w2.into_iter(), w3.into_iter());
    attn_norm
        .into_iter()
        .zip(ffn_norm)
        .map(|(a, f)| Layer {
            attn_norm: a,
            wq: it.0.next().unwrap(),
            wk: it.1.next().unwrap(),
            wv: it.2.next().unwrap(),
            wo: it.3.next().unwrap(),
            ffn_norm: f,
            w1: it.4.next().unwrap(),
            w2: it.5.next().unwrap(),
            w3: it.6.next().unwrap(),
            extra: Default::default(),
        })
        .collect()
}

/// Load a llama2.c checkpoint whose first four bytes (already read) were `first`.
pub fn load(r: &mut Reader, first: u32) -> Result<(Config, Format, Weights)> {
    if first == MAGIC {
        let version = r.i32("checkpoint version")?;
        match version {
            1 => load_v1(r),
            2 => load_v2(r),
            v => Err(Error::Unsupported(format!("llama2.c checkpoint version {v} (this engine reads 0, 1 and 2)"))),
        }
    } else {
        load_v0(r, first as i32)
    }
}

fn load_v0(r: &mut Reader, first: i32) -> Result<(Config, Format, Weights)> {
    let (c, shared) = read_params(r, Some(first))?;
    let (d, h, kv, l, v, s) =
        (c.dim as u64, c.hidden_dim as u64, c.kv_dim() as u64, c.n_layers as u64, c.vocab_size as u64, c.train_context as u64);
    let hs = c.head_size() as u64;
    let floats = total(&[
        (v, d),
        (l, d),
        (l, d * d),
        (l, d * kv),
        (l, d * kv),
        (l, d * d),
        (l, d),
        (l, 3 * d * h),
        (1, d),
        (s, hs), // the precomputed RoPE tables (cos and sin, seq_len × head_size/2 each)
        (if shared { 0 } else { v }, d),
    ])?;
    expect_size(r, floats.checked_mul(4).and_then(|b| b.checked_add(28)))?;

    let (dim, hid, kvd, n) = (c.dim, c.hidden_dim, c.kv_dim(), c.n_layers);
    let embed = f32_matrix(r, c.vocab_size, dim, "token embeddings")?;
    let attn_norm = per_layer(n, |_| r.f32s(dim, "attention norms"))?;
    let wq = per_layer(n, |_| f32_matrix(r, dim, dim, "wq"))?;
    let wk = per_layer(n, |_| f32_matrix(r, kvd, dim, "wk"))?;
    let wv = per_layer(n, |_| f32_matrix(r, kvd, dim, "wv"))?;
    let wo = per_layer(n, |_| f32_matrix(r, dim, dim, "wo"))?;
    let ffn_norm = per_layer(n, |_| r.f32s(dim, "ffn norms"))?;
    let w1 = per_layer(n, |_| f32_matrix(r, hid, dim, "w1"))?;
    let w2 = per_layer(n, |_| f32_matrix(r, dim, hid, "w2"))?;
    let w3 = per_layer(n, |_| f32_matrix(r, hid, dim, "w3"))?;
    let final_norm = r.f32s(dim, "final norm")?;
    // We compute RoPE ourselves (as run.c does); skip the stored tables.
    r.skip(s * hs * 4, "RoPE tables")?;
    let classifier = if shared { None } else { Some(f32_matrix(r, c.vocab_size, dim, "classifier")?) };
    let layers = assemble(attn_norm, ffn_norm, [wq, wk, wv, wo, w1, w2, w3]);
    Ok((c, Format::Llama2cV0, Weights::plain(embed, layers, final_norm, classifier)))
}

/// v1/v2 header after magic and version: params, shared flag, [group size], padding.
fn versioned_header(r: &mut Reader, with_group: bool) -> Result<(Config, bool, usize)> {
    let (c, _) = read_params(r, None)?;
    let shared = match r.u8("shared-classifier flag")? {
        0 => false,
        1 => true,
        f => return Err(Error::BadHeader(format!("shared-classifier flag is {f}, expected 0 or 1"))),
    };
    let gs = if with_group {
        let g = r.i32("group size")?;
        if g <= 0 || g > 1 << 16 {
            return Err(Error::BadHeader(format!("group size {g} is out of range")));
        }
        g as usize
    } else {
        0
    };
    let used = r.pos();
    r.skip(VERSIONED_HEADER - used, "header padding")?;
    Ok((c, shared, gs))
}

fn load_v1(r: &mut Reader) -> Result<(Config, Format, Weights)> {
    let (c, shared, _) = versioned_header(r, false)?;
    let (d, h, kv, l, v) = (c.dim as u64, c.hidden_dim as u64, c.kv_dim() as u64, c.n_layers as u64, c.vocab_size as u64);
    let floats = total(&[(l, 2 * d), (1, d), (v, d), (l, 2 * d * d), (l, 2 * d * kv), (l, 3 * d * h), (if shared { 0 } else { v }, d)])?;
    expect_size(r, floats.checked_mul(4).and_then(|b| b.checked_add(VERSIONED_HEADER)))?;

    let (dim, hid, kvd, n) = (c.dim, c.hidden_dim, c.kv_dim(), c.n_layers);
    let attn_norm = per_layer(n, |_| r.f32s(dim, "attention norms"))?;
    let ffn_norm = per_layer(n, |_| r.f32s(dim, "ffn norms"))?;
    let final_norm = r.f32s(dim, "final norm")?;
    let embed = f32_matrix(r, c.vocab_size, dim, "token embeddings")?;
    let wq = per_layer(n, |_| f32_matrix(r, dim, dim, "wq"))?;
    let wk = per_layer(n, |_| f32_matrix(r, kvd, dim, "wk"))?;
    let wv = per_layer(n, |_| f32_matrix(r, kvd, dim, "wv"))?;
    let wo = per_layer(n, |_| f32_matrix(r, dim, dim, "wo"))?;
    let w1 = per_layer(n, |_| f32_matrix(r, hid, dim, "w1"))?;
    let w2 = per_layer(n, |_| f32_matrix(r, dim, hid, "w2"))?;
    let w3 = per_layer(n, |_| f32_matrix(r, hid, dim, "w3"))?;
    let classifier = if shared { None } else { Some(f32_matrix(r, c.vocab_size, dim, "classifier")?) };
    let layers = assemble(attn_norm, ffn_norm, [wq, wk, wv, wo, w1, w2, w3]);
    Ok((c, Format::Llama2cV1, Weights::plain(embed, layers, final_norm, classifier)))
}

fn load_v2(r: &mut Reader) -> Result<(Config, Format, Weights)> {
    let (c, shared, gs) = versioned_header(r, true)?;
    if c.dim % gs != 0 || c.hidden_dim % gs != 0 {
        return Err(Error::BadHeader(format!(
            "group size {gs} must divide both dim {} and hidden_dim {} (runq.c would silently drop columns)",
            c.dim, c.hidden_dim
        )));
    }
    let (d, h, kv, l, v) = (c.dim as u64, c.hidden_dim as u64, c.kv_dim() as u64, c.n_layers as u64, c.vocab_size as u64);
    let g = gs as u64;
    // An int8 tensor of n values takes n bytes plus 4 bytes per group of scales.
    let q = |n: u64| n.checked_mul(g + 4).map(|x| x / g);
    let floats = total(&[(l, 2 * d), (1, d)])?;
    let qbytes = [
        q(v * d),
        q(l * d * d).and_then(|x| x.checked_mul(2)),
        q(l * d * kv).and_then(|x| x.checked_mul(2)),
        q(l * d * h).and_then(|x| x.checked_mul(3)),
        if shared { Some(0) } else { q(v * d) },
    ];
    let expected = qbytes
        .iter()
        .try_fold(floats.checked_mul(4).and_then(|b| b.checked_add(VERSIONED_HEADER)), |acc, x| match (acc, x) {
            (Some(a), Some(b)) => Some(a.checked_add(*b)),
            _ => None,
        })
        .flatten();
    expect_size(r, expected)?;

    let (dim, hid, kvd, n) = (c.dim, c.hidden_dim, c.kv_dim(), c.n_layers);
    let attn_norm = per_layer(n, |_| r.f32s(dim, "attention norms"))?;
    let ffn_norm = per_layer(n, |_| r.f32s(dim, "ffn norms"))?;
    let final_norm = r.f32s(dim, "final norm")?;
    let embed = q8_matrix(r, c.vocab_size, dim, gs, "token embeddings")?;
    let wq = per_layer(n, |_| q8_matrix(r, dim, dim, gs, "wq"))?;
    let wk = per_layer(n, |_| q8_matrix(r, kvd, dim, gs, "wk"))?;
    let wv = per_layer(n, |_| q8_matrix(r, kvd, dim, gs, "wv"))?;
    let wo = per_layer(n, |_| q8_matrix(r, dim, dim, gs, "wo"))?;
    let w1 = per_layer(n, |_| q8_matrix(r, hid, dim, gs, "w1"))?;
    let w2 = per_layer(n, |_| q8_matrix(r, dim, hid, gs, "w2"))?;
    let w3 = per_layer(n, |_| q8_matrix(r, hid, dim, gs, "w3"))?;
    let classifier = if shared { None } else { Some(q8_matrix(r, c.vocab_size, dim, gs, "classifier")?) };
    let layers = assemble(attn_norm, ffn_norm, [wq, wk, wv, wo, w1, w2, w3]);
    Ok((c, Format::Llama2cV2 { group_size: gs }, Weights::plain(embed, layers, final_norm, classifier)))
}
