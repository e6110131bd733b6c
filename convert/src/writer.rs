//! The streaming llama2.c checkpoint writer: tensors are pulled from a
//! [`WeightSource`] one at a time, in the exact order the engine's `checkpoint.rs`
//! (and llama2.c's run.c/runq.c) read them, and written straight to disk. At most one
//! tensor is held in memory (as f32, plus its int8 form for q8 output).
//!
//! The output goes to a hidden `.NAME.partial` file beside `out`, renamed over `out`
//! only when everything was written and the size is the one the header implies.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use llama::Config;

use crate::error::{Error, Result};
use crate::Format;

/// `ak42` read as a little-endian u32: the magic of versioned llama2.c files.
pub const MAGIC: u32 = 0x616b_3432;
const HEADER_BYTES: u64 = 256;
/// Group sizes tried, largest first, when none is given for q8 output.
pub const DEFAULT_GROUP_SIZES: [usize; 5] = [64, 32, 16, 8, 4];

/// What a tensor is in llama2.c's model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Embed,
    AttnNorm,
    Wq,
    Wk,
    Wv,
    Wo,
    FfnNorm,
    W1,
    W2,
    W3,
    FinalNorm,
    Classifier,
}

/// One tensor of the model: its kind and layer (0 for the non-layer tensors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tensor {
    pub kind: Kind,
    pub layer: usize,
}

/// Every tensor a llama2.c checkpoint of `n_layers` needs (the classifier unless shared).
pub fn model_tensors(n_layers: usize, shared_classifier: bool) -> Vec<Tensor> {
    let mut v = vec![Tensor { kind: Kind::Embed, layer: 0 }, Tensor { kind: Kind::FinalNorm, layer: 0 }];
    if !shared_classifier {
        v.push(Tensor { kind: Kind::Classifier, layer: 0 });
    }
    for layer in 0..n_layers {
        for kind in [
            Kind::AttnNorm,
            Kind::Wq,
            Kind::Wk,
            Kind::Wv,
            Kind::Wo,
            Kind::FfnNorm,
            Kind::W1,
            Kind::W2,
            Kind::W3,
        ] {
            v.push(Tensor { kind, layer });
        }
    }
    v
}

impl Tensor {
    /// `[rows, cols]` in llama2.c's row-major layout (a vector is `[1, n]`).
    pub fn shape(&self, c: &Config) -> [usize; 2] {
        let (d, h, kv, v) = (c.dim, c.hidden_dim, c.kv_dim(), c.vocab_size);
        match self.kind {
            Kind::Embed | Kind::Classifier => [v, d],
            Kind::AttnNorm | Kind::FfnNorm | Kind::FinalNorm => [1, d],
            Kind::Wq | Kind::Wo => [d, d],
            Kind::Wk | Kind::Wv => [kv, d],
            Kind::W1 | Kind::W3 => [h, d],
            Kind::W2 => [d, h],
        }
    }
    pub fn elements(&self, c: &Config) -> u64 {
        let [r, c] = self.shape(c);
        r as u64 * c as u64
    }
    /// Norm weights stay f32 in every format.
    pub fn is_vector(&self) -> bool {
        matches!(self.kind, Kind::AttnNorm | Kind::FfnNorm | Kind::FinalNorm)
    }
}

impl std::fmt::Display for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            Kind::Embed | Kind::FinalNorm | Kind::Classifier => write!(f, "{:?}", self.kind),
            k => write!(f, "layer {} {:?}", self.layer, k),
        }
    }
}

/// Where the weights come from (a Hugging Face directory, a GGUF file).
pub trait WeightSource {
    /// The model's shape (with the `rope_theta`/`norm_eps` the input declares).
    fn config(&self) -> &Config;
    /// Whether the classifier is the token embedding.
    fn shared_classifier(&self) -> bool;
    /// A tensor as f32 in llama2.c's layout, exactly `t.elements()` long.
    fn load(&self, t: Tensor) -> Result<Vec<f32>>;
    /// The tensor already as int8 in groups of `group_size` (`q`, `scales`), when the
    /// source holds it that way and can hand it over without requantizing.
    fn load_q8(&self, _t: Tensor, _group_size: usize) -> Result<Option<(Vec<i8>, Vec<f32>)>> {
        Ok(None)
    }
    /// The group size that keeps the source's int8 blocks, if any.
    fn native_group_size(&self) -> Option<usize> {
        None
    }
}

/// What [`write`] did.
pub struct Written {
    pub bytes: u64,
    pub group_size: Option<usize>,
    /// Matrices copied as int8 without requantization.
    pub q8_kept: usize,
}

/// The group size for q8 output: `given` if it divides dim and hidden_dim, else the
/// source's native one if it does, else the largest of 64/32/16/8/4 that does.
pub fn resolve_group_size(
    given: Option<usize>,
    native: Option<usize>,
    c: &Config,
) -> Result<usize> {
    let fits = |g: usize| g > 0 && c.dim.is_multiple_of(g) && c.hidden_dim.is_multiple_of(g);
    match given {
        Some(g) if fits(g) => Ok(g),
        Some(g) => Err(Error::Usage(format!(
            "group size {g} must be positive and divide both dim {} and hidden_dim {} (try {})",
            c.dim,
            c.hidden_dim,
            DEFAULT_GROUP_SIZES.iter().find(|&&g| fits(g)).map_or("1 or 2".to_string(), |g| g.to_string())
        ))),
        None => native.filter(|&g| fits(g)).or_else(|| DEFAULT_GROUP_SIZES.into_iter().find(|&g| fits(g))).ok_or_else(|| {
            Error::Usage(format!(
                "none of the group sizes 64/32/16/8/4 divides both dim {} and hidden_dim {}; pass one explicitly (2 or 1)",
                c.dim, c.hidden_dim
            ))
        }),
    }
}

enum Item {
    Tensor(Tensor),
    RopeCos,
    RopeSin,
}

fn per_layer(c: &Config, kinds: &[Kind], items: &mut Vec<Item>) {
    for &kind in kinds {
        items.extend((0..c.n_layers).map(|layer| Item::Tensor(Tensor { kind, layer })));
    }
}

fn one(kind: Kind) -> Item {
    Item::Tensor(Tensor { kind, layer: 0 })
}

/// The file's contents after the header, in order.
fn layout(format: Format, c: &Config, shared: bool) -> Vec<Item> {
    use Kind::*;
    let mut items = Vec::new();
    match format {
        // llama2.c model.py legacy_export: embeddings, each kind for all layers, final
        // norm, the RoPE tables, the classifier when not shared.
        Format::V0 => {
            items.push(one(Embed));
            per_layer(
                c,
                &[AttnNorm, Wq, Wk, Wv, Wo, FfnNorm, W1, W2, W3],
                &mut items,
            );
            items.push(one(FinalNorm));
            items.push(Item::RopeCos);
            items.push(Item::RopeSin);
        }
        // export.py version1_export / version2_export: the norms first (f32 in both),
        // then the matrices.
        Format::V1 | Format::Q8 { .. } => {
            per_layer(c, &[AttnNorm, FfnNorm], &mut items);
            items.push(one(FinalNorm));
            items.push(one(Embed));
            per_layer(c, &[Wq, Wk, Wv, Wo, W1, W2, W3], &mut items);
        }
    }
    if !shared {
        items.push(one(Classifier));
    }
    items
}

fn item_bytes(item: &Item, c: &Config, gs: Option<usize>) -> u64 {
    match item {
        Item::RopeCos | Item::RopeSin => c.seq_len as u64 * (c.head_size() / 2) as u64 * 4,
        Item::Tensor(t) => {
            let n = t.elements(c);
            match gs {
                Some(g) if !t.is_vector() => n + n / g as u64 * 4,
                _ => n * 4,
            }
        }
    }
}

/// RoPE frequency tables for v0 (row-major `[seq_len, head_size/2]`):
/// `cos/sin(t / theta^(2i/head_size))` for each position `t < seq_len`.
///
/// llama2.c's model.py `precompute_freqs_cis` states this computation in f32, but
/// the tables inside the published `stories260K.bin` are exactly the f64 computation
/// rounded to f32 (all 4096 values; an f32 computation differs in 1633 of them by up
/// to thousands of ULPs), so that is what we write: the v0 output is then byte for
/// byte llama2.c's file. No engine reads these tables (run.c recomputes RoPE).
pub fn rope_table(c: &Config, sin: bool) -> Vec<f32> {
    let hs = c.head_size();
    let theta = c.rope_theta as f64;
    let freqs: Vec<f64> = (0..hs / 2)
        .map(|i| 1.0 / libm::pow(theta, (2 * i) as f64 / hs as f64))
        .collect();
    let mut out = Vec::with_capacity(c.seq_len * freqs.len());
    for t in 0..c.seq_len {
        for f in &freqs {
            let a = t as f64 * f;
            out.push(if sin { libm::sin(a) } else { libm::cos(a) } as f32);
        }
    }
    out
}

/// An output file that appears under its name only once complete.
struct Output {
    w: BufWriter<File>,
    partial: PathBuf,
    out: PathBuf,
    done: u64,
    total: u64,
}

/// Bytes between progress reports.
const REPORT: usize = 1 << 20;

impl Output {
    fn create(out: &Path, total: u64) -> Result<Self> {
        let name = out
            .file_name()
            .ok_or_else(|| Error::Usage(format!("{}: not a file name", out.display())))?;
        let partial = out.with_file_name(format!(".{}.partial", name.to_string_lossy()));
        let f = File::create(&partial).map_err(|e| Error::file(&partial, e))?;
        Ok(Output {
            w: BufWriter::with_capacity(1 << 20, f),
            partial,
            out: out.to_path_buf(),
            done: 0,
            total,
        })
    }

    fn bytes(&mut self, b: &[u8], progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        for chunk in b.chunks(REPORT) {
            self.w
                .write_all(chunk)
                .map_err(|e| Error::file(&self.partial, e))?;
            self.done += chunk.len() as u64;
            progress(self.done, self.total);
        }
        Ok(())
    }

    fn f32s(&mut self, v: &[f32], progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        let mut buf = Vec::with_capacity(REPORT.min(v.len() * 4));
        for chunk in v.chunks(REPORT / 4) {
            buf.clear();
            for x in chunk {
                buf.extend_from_slice(&x.to_le_bytes());
            }
            self.bytes(&buf, progress)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<u64> {
        if self.done != self.total {
            return Err(Error::Invalid(format!(
                "wrote {} bytes, expected {} (internal error)",
                self.done, self.total
            )));
        }
        self.w.flush().map_err(|e| Error::file(&self.partial, e))?;
        let f = self.w.get_ref();
        f.sync_all().map_err(|e| Error::file(&self.partial, e))?;
        std::fs::rename(&self.partial, &self.out).map_err(|e| Error::file(&self.out, e))?;
        Ok(self.done)
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        // Not renamed: an error happened; do not leave half a model behind.
        let _ = std::fs::remove_file(&self.partial);
    }
}

fn header(format: Format, c: &Config, shared: bool, gs: Option<usize>) -> Vec<u8> {
    let mut h = Vec::with_capacity(256);
    let params = |h: &mut Vec<u8>, vocab: i64| {
        for v in [c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads] {
            h.extend_from_slice(&(v as i32).to_le_bytes());
        }
        h.extend_from_slice(&(vocab as i32).to_le_bytes());
        h.extend_from_slice(&(c.seq_len as i32).to_le_bytes());
    };
    match format {
        // Legacy: seven i32s; a negative vocab_size means "separate classifier".
        Format::V0 => params(
            &mut h,
            if shared {
                c.vocab_size as i64
            } else {
                -(c.vocab_size as i64)
            },
        ),
        Format::V1 | Format::Q8 { .. } => {
            h.extend_from_slice(&MAGIC.to_le_bytes());
            h.extend_from_slice(&(if gs.is_some() { 2i32 } else { 1 }).to_le_bytes());
            params(&mut h, c.vocab_size as i64);
            h.push(shared as u8);
            if let Some(g) = gs {
                h.extend_from_slice(&(g as i32).to_le_bytes());
            }
            h.resize(HEADER_BYTES as usize, 0);
        }
    }
    h
}

/// Fail unless every value of a dimension fits the i32 header fields.
fn check_fits(c: &Config) -> Result<()> {
    c.validate()
        .map_err(|e| Error::Unsupported(format!("the model's shape: {e}")))?;
    for (name, v) in [
        ("dim", c.dim),
        ("hidden_dim", c.hidden_dim),
        ("vocab_size", c.vocab_size),
        ("seq_len", c.seq_len),
    ] {
        if v > i32::MAX as usize {
            return Err(Error::Unsupported(format!(
                "{name} = {v} does not fit llama2.c's i32 header"
            )));
        }
    }
    Ok(())
}

/// Write `src` to `out` in `format`. `progress(done, total)` counts output bytes.
pub fn write(
    src: &dyn WeightSource,
    out: &Path,
    format: Format,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Written> {
    let c = src.config().clone();
    check_fits(&c)?;
    let shared = src.shared_classifier();
    let gs = match format {
        Format::Q8 { group_size } => {
            Some(resolve_group_size(group_size, src.native_group_size(), &c)?)
        }
        _ => None,
    };
    let items = layout(format, &c, shared);
    let head = header(format, &c, shared, gs);
    let total = items.iter().map(|i| item_bytes(i, &c, gs)).sum::<u64>() + head.len() as u64;

    let mut o = Output::create(out, total)?;
    progress(0, total);
    o.bytes(&head, progress)?;
    let mut q8_kept = 0;
    for item in &items {
        match item {
            Item::RopeCos => o.f32s(&rope_table(&c, false), progress)?,
            Item::RopeSin => o.f32s(&rope_table(&c, true), progress)?,
            Item::Tensor(t) => {
                let t = *t;
                match gs {
                    Some(g) if !t.is_vector() => {
                        let (q, s) = match src.load_q8(t, g)? {
                            Some(qs) => {
                                q8_kept += 1;
                                qs
                            }
                            None => llama::export::quantize_q80(&checked(src.load(t)?, t, &c)?, g),
                        };
                        if q.len() as u64 != t.elements(&c)
                            || s.len() as u64 * g as u64 != t.elements(&c)
                        {
                            return Err(Error::Invalid(format!(
                                "{t}: int8 data has the wrong size"
                            )));
                        }
                        let bytes: Vec<u8> = q.iter().map(|&v| v as u8).collect();
                        o.bytes(&bytes, progress)?;
                        o.f32s(&s, progress)?;
                    }
                    _ => o.f32s(&checked(src.load(t)?, t, &c)?, progress)?,
                }
            }
        }
    }
    let bytes = o.finish()?;
    Ok(Written {
        bytes,
        group_size: gs,
        q8_kept,
    })
}

fn checked(v: Vec<f32>, t: Tensor, c: &Config) -> Result<Vec<f32>> {
    if v.len() as u64 != t.elements(c) {
        return Err(Error::Invalid(format!(
            "{t}: {} values, expected {}",
            v.len(),
            t.elements(c)
        )));
    }
    Ok(v)
}
