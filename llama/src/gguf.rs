//! GGUF (v2 and v3) with `general.architecture = llama`: metadata, the vocabulary in
//! `tokenizer.ggml.*` (read by [`crate::vocab`]), and tensors in F32, F16, BF16, Q8_0 and Q4_0.
//! Tensors are read in file order (sorted by offset), in one pass, so the file never
//! needs to be in memory twice.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::{Format, Layer, Weights};
use crate::source::{f16_to_f32, try_vec_with_capacity, Reader};
use crate::tensor::{Matrix, Storage};
use crate::tokenizer::Tokenizer;

/// "GGUF" read as a little-endian u32.
pub const MAGIC: u32 = 0x4655_4747;

/// A metadata value. Arrays of numbers are widened; what the engine never reads is
/// still parsed (to find the tensor infos after it) but kept small.
#[derive(Clone, Debug)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(Vec<u8>),
    IntArray(Vec<i64>),
    FloatArray(Vec<f32>),
    StrArray(Vec<Vec<u8>>),
    /// Arrays of other element types (kept as their length only).
    OtherArray(u64),
}

pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    pub offset: u64,
}

/// ggml tensor type ids this engine reads.
pub const T_F32: u32 = 0;
pub const T_F16: u32 = 1;
pub const T_Q4_0: u32 = 2;
pub const T_Q8_0: u32 = 8;
pub const T_BF16: u32 = 30;

pub fn type_name(t: u32) -> String {
    match t {
        T_F32 => "F32".into(),
        T_F16 => "F16".into(),
        T_Q4_0 => "Q4_0".into(),
        T_Q8_0 => "Q8_0".into(),
        T_BF16 => "BF16".into(),
        3 => "Q4_1".into(),
        6 => "Q5_0".into(),
        7 => "Q5_1".into(),
        10..=15 => format!("K-quant (type {t})"),
        t => format!("type {t}"),
    }
}

/// Bytes of a tensor of `n` elements, for the types this engine reads.
pub fn tensor_bytes(t: u32, n: u64) -> Option<u64> {
    match t {
        T_F32 => n.checked_mul(4),
        T_F16 | T_BF16 => n.checked_mul(2),
        T_Q8_0 => Some(n / 32 * 34),
        T_Q4_0 => Some(n / 32 * 18),
        _ => None,
    }
}

/// Bounds that keep a hostile header from making us loop or allocate absurdly: every
/// count is also checked against the bytes left in the file.
const MAX_DIMS: u32 = 4;
const MAX_STRING: u64 = 1 << 24;

pub struct Header {
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    /// File offset of the tensor data section.
    pub data_start: u64,
}

fn string(r: &mut Reader, what: &str) -> Result<Vec<u8>> {
    let len = r.u64(what)?;
    if len > MAX_STRING {
        return Err(Error::BadHeader(format!("{what}: a string of {len} bytes")));
    }
    r.need(len, what)?;
    let mut s = alloc::vec![0u8; len as usize];
    r.bytes(&mut s, what)?;
    Ok(s)
}

fn scalar(r: &mut Reader, t: u32, what: &str) -> Result<Value> {
    Ok(match t {
        0 => Value::Int(r.u8(what)? as i64),
        1 => Value::Int(r.u8(what)? as i8 as i64),
        2 => {
            let mut b = [0u8; 2];
            r.bytes(&mut b, what)?;
            Value::Int(u16::from_le_bytes(b) as i64)
        }
        3 => {
            let mut b = [0u8; 2];
            r.bytes(&mut b, what)?;
            Value::Int(i16::from_le_bytes(b) as i64)
        }
        4 => Value::Int(r.u32(what)? as i64),
        5 => Value::Int(r.i32(what)? as i64),
        6 => Value::Float(r.f32(what)? as f64),
        7 => Value::Bool(r.u8(what)? != 0),
        8 => Value::Str(string(r, what)?),
        10 => Value::Int(r.u64(what)? as i64),
        11 => Value::Int(r.u64(what)? as i64),
        12 => Value::Float(f64::from_bits(r.u64(what)?)),
        t => return Err(Error::BadHeader(format!("{what}: unknown metadata type {t}"))),
    })
}

fn min_size(t: u32) -> u64 {
    match t {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4 | 5 | 6 => 4,
        _ => 8,
    }
}

fn value(r: &mut Reader, t: u32, what: &str) -> Result<Value> {
    if t != 9 {
        return scalar(r, t, what);
    }
    let et = r.u32(what)?;
    let n = r.u64(what)?;
    r.need(n.saturating_mul(min_size(et)), what)?;
    let count = n as usize;
    Ok(match et {
        0..=5 | 10 | 11 => {
            let mut v = try_vec_with_capacity(count, what)?;
            for _ in 0..n {
                if let Value::Int(i) = scalar(r, et, what)? {
                    v.push(i);
                }
            }
            Value::IntArray(v)
        }
        6 => Value::FloatArray(r.f32s(count, what)?),
        8 => {
            let mut v = try_vec_with_capacity(count, what)?;
            for _ in 0..n {
                v.push(string(r, what)?);
            }
            Value::StrArray(v)
        }
        7 | 12 => {
            r.skip(n * min_size(et), what)?;
            Value::OtherArray(n)
        }
        9 => return Err(Error::Unsupported(format!("{what}: nested metadata arrays"))),
        t => return Err(Error::BadHeader(format!("{what}: unknown array element type {t}"))),
    })
}

/// Parse everything up to the tensor data (the magic was already read).
pub fn read_header(r: &mut Reader) -> Result<Header> {
    let version = r.u32("GGUF version")?;
    if version != 2 && version != 3 {
        return Err(Error::Unsupported(format!("GGUF version {version} (this engine reads v2 and v3)")));
    }
    let n_tensors = r.u64("GGUF tensor count")?;
    let n_kv = r.u64("GGUF metadata count")?;
    // Each metadata entry takes at least 12 bytes, each tensor info at least 24.
    r.need(n_kv.saturating_mul(12).saturating_add(n_tensors.saturating_mul(24)), "GGUF metadata and tensor infos")?;
    let mut metadata = BTreeMap::new();
    for _ in 0..n_kv {
        let key = String::from_utf8(string(r, "metadata key")?)
            .map_err(|_| Error::BadHeader("a metadata key is not UTF-8".into()))?;
        let t = r.u32("metadata type")?;
        let v = value(r, t, &key)?;
        metadata.insert(key, v);
    }
    let mut tensors = Vec::with_capacity(n_tensors as usize);
    for _ in 0..n_tensors {
        let name = String::from_utf8(string(r, "tensor name")?)
            .map_err(|_| Error::BadHeader("a tensor name is not UTF-8".into()))?;
        let nd = r.u32("tensor rank")?;
        if nd == 0 || nd > MAX_DIMS {
            return Err(Error::BadHeader(format!("tensor {name} has {nd} dimensions")));
        }
        let dims = (0..nd).map(|_| r.u64("tensor dims")).collect::<Result<Vec<_>>>()?;
        let ggml_type = r.u32("tensor type")?;
        let offset = r.u64("tensor offset")?;
        tensors.push(TensorInfo { name, dims, ggml_type, offset });
    }
    let align = match metadata.get("general.alignment") {
        Some(Value::Int(a)) if *a > 0 && (*a as u64).is_power_of_two() => *a as u64,
        None => 32,
        Some(v) => return Err(Error::BadHeader(format!("general.alignment is {v:?}"))),
    };
    let data_start = r.pos().div_ceil(align) * align;
    Ok(Header { version, metadata, tensors, data_start })
}

impl Header {
    fn int(&self, key: &str) -> Result<i64> {
        match self.metadata.get(key) {
            Some(Value::Int(v)) => Ok(*v),
            Some(v) => Err(Error::BadHeader(format!("{key} should be an integer, is {v:?}"))),
            None => Err(Error::BadHeader(format!("missing metadata key {key}"))),
        }
    }
    fn float_or(&self, key: &str, default: f32) -> Result<f32> {
        match self.metadata.get(key) {
            Some(Value::Float(v)) => Ok(*v as f32),
            Some(Value::Int(v)) => Ok(*v as f32),
            Some(v) => Err(Error::BadHeader(format!("{key} should be a number, is {v:?}"))),
            None => Ok(default),
        }
    }
    pub fn str(&self, key: &str) -> Option<String> {
        match self.metadata.get(key) {
            Some(Value::Str(s)) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }
    fn usize(&self, key: &str) -> Result<usize> {
        let v = self.int(key)?;
        if v <= 0 || v > u32::MAX as i64 {
            return Err(Error::BadHeader(format!("{key} = {v} is out of range")));
        }
        Ok(v as usize)
    }

    fn config(&self) -> Result<Config> {
        let arch = self.str("general.architecture").unwrap_or_default();
        if arch != "llama" {
            return Err(Error::Unsupported(format!(
                "GGUF architecture {arch:?}: this engine runs general.architecture = \"llama\""
            )));
        }
        let n_heads = self.usize("llama.attention.head_count")?;
        let n_kv_heads = match self.metadata.get("llama.attention.head_count_kv") {
            None => n_heads,
            Some(_) => self.usize("llama.attention.head_count_kv")?,
        };
        let embd = self.tensors.iter().find(|t| t.name == "token_embd.weight");
        let vocab_size = match (&self.metadata.get("tokenizer.ggml.tokens"), embd) {
            (_, Some(t)) if t.dims.len() == 2 => t.dims[1] as usize,
            (Some(Value::StrArray(v)), _) => v.len(),
            _ => return Err(Error::BadHeader("cannot tell the vocabulary size (no token_embd.weight)".into())),
        };
        let c = Config {
            dim: self.usize("llama.embedding_length")?,
            hidden_dim: self.usize("llama.feed_forward_length")?,
            n_layers: self.usize("llama.block_count")?,
            n_heads,
            n_kv_heads,
            vocab_size,
            seq_len: self.usize("llama.context_length")?,
            rope_theta: self.float_or("llama.rope.freq_base", 10000.0)?,
            norm_eps: self.float_or("llama.attention.layer_norm_rms_epsilon", 1e-5)?,
        };
        c.validate()?;
        if let Some(Value::Int(rd)) = self.metadata.get("llama.rope.dimension_count") {
            if *rd as usize != c.head_size() {
                return Err(Error::Unsupported(format!(
                    "partial rotary embeddings (rope dimension {rd}, head size {})",
                    c.head_size()
                )));
            }
        }
        Ok(c)
    }

    /// The vocabulary stored in the file (see [`crate::vocab`]).
    pub fn tokenizer(&self, vocab_size: usize) -> Result<Tokenizer> {
        crate::vocab::from_header(self, Some(vocab_size))
    }
}

/// Read one tensor's data (the reader is at its offset) into the engine's layout.
fn read_tensor(r: &mut Reader, t: &TensorInfo, rows: usize, cols: usize) -> Result<Storage> {
    let n = rows * cols;
    let what = t.name.as_str();
    Ok(match t.ggml_type {
        T_F32 => Storage::F32(r.f32s(n, what)?),
        T_F16 => Storage::F32(r.f16s(n, what)?),
        T_BF16 => {
            let mut out = try_vec_with_capacity(n, what)?;
            let mut buf = alloc::vec![0u8; 2 * cols];
            for _ in 0..rows {
                r.bytes(&mut buf, what)?;
                out.extend(buf.chunks_exact(2).map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)));
            }
            Storage::F32(out)
        }
        T_Q8_0 | T_Q4_0 => {
            if cols % 32 != 0 {
                return Err(Error::BadHeader(format!("{what}: {cols} columns is not a multiple of the 32-value block")));
            }
            let blocks = n / 32;
            let mut q = try_vec_with_capacity::<i8>(n, what)?;
            let mut scales = try_vec_with_capacity::<f32>(blocks, what)?;
            let block_bytes = if t.ggml_type == T_Q8_0 { 34 } else { 18 };
            let mut buf = alloc::vec![0u8; block_bytes * (cols / 32)];
            for _ in 0..rows {
                r.bytes(&mut buf, what)?;
                for b in buf.chunks_exact(block_bytes) {
                    scales.push(f16_to_f32(u16::from_le_bytes([b[0], b[1]])));
                    if t.ggml_type == T_Q8_0 {
                        q.extend(b[2..].iter().map(|&v| v as i8));
                    } else {
                        // Q4_0: low nibbles are values 0..16, high nibbles 16..32, offset by 8.
                        q.extend(b[2..].iter().map(|&v| (v & 0x0f) as i8 - 8));
                        q.extend(b[2..].iter().map(|&v| (v >> 4) as i8 - 8));
                    }
                }
            }
            Storage::Q8 { q, scales, group_size: 32 }
        }
        other => {
            return Err(Error::Unsupported(format!(
                "tensor {what} has type {} (this engine reads F32, F16, BF16, Q8_0, Q4_0)",
                type_name(other)
            )))
        }
    })
}

/// Load a GGUF llama model (the magic was already read).
pub fn load(r: &mut Reader) -> Result<(Config, Format, Weights, Tokenizer)> {
    let h = read_header(r)?;
    let c = h.config()?;
    let tokenizer = h.tokenizer(c.vocab_size);

    // Where each tensor goes, with the shape it must have ([cols, rows] in GGUF order).
    let (d, hid, kv, v) = (c.dim as u64, c.hidden_dim as u64, c.kv_dim() as u64, c.vocab_size as u64);
    let mut expected: BTreeMap<String, [u64; 2]> = BTreeMap::new();
    expected.insert("token_embd.weight".into(), [d, v]);
    expected.insert("output_norm.weight".into(), [d, 1]);
    expected.insert("output.weight".into(), [d, v]);
    for l in 0..c.n_layers {
        for (name, shape) in [
            ("attn_norm", [d, 1]),
            ("attn_q", [d, d]),
            ("attn_k", [d, kv]),
            ("attn_v", [d, kv]),
            ("attn_output", [d, d]),
            ("ffn_norm", [d, 1]),
            ("ffn_gate", [d, hid]),
            ("ffn_down", [hid, d]),
            ("ffn_up", [d, hid]),
        ] {
            expected.insert(format!("blk.{l}.{name}.weight"), shape);
        }
    }

    // Validate every tensor against its expected shape and the file size first.
    let mut order: Vec<&TensorInfo> = Vec::new();
    for t in &h.tensors {
        let Some(shape) = expected.get(&t.name) else {
            continue; // e.g. rope_freqs: not needed
        };
        let dims = [t.dims[0], t.dims.get(1).copied().unwrap_or(1)];
        if dims != *shape || t.dims.iter().skip(2).any(|&x| x != 1) {
            return Err(Error::BadHeader(format!("tensor {} has shape {:?}, expected {:?}", t.name, t.dims, shape)));
        }
        let bytes = tensor_bytes(t.ggml_type, shape[0] * shape[1]).ok_or_else(|| {
            Error::Unsupported(format!(
                "tensor {} has type {} (this engine reads F32, F16, BF16, Q8_0, Q4_0)",
                t.name,
                type_name(t.ggml_type)
            ))
        })?;
        let end = h.data_start.checked_add(t.offset).and_then(|s| s.checked_add(bytes));
        match end {
            Some(e) if e <= r.size() => {}
            _ => {
                return Err(Error::Truncated {
                    what: format!("tensor {}", t.name),
                    needed: end.unwrap_or(u64::MAX).saturating_sub(r.pos()),
                    available: r.remaining(),
                })
            }
        }
        order.push(t);
    }
    for name in expected.keys() {
        if name != "output.weight" && !order.iter().any(|t| &t.name == name) {
            return Err(Error::BadHeader(format!("missing tensor {name}")));
        }
    }
    order.sort_by_key(|t| t.offset);
    let tokenizer = tokenizer?;

    let mut tensors: BTreeMap<String, (Storage, usize, usize)> = BTreeMap::new();
    for t in order {
        let start = h.data_start + t.offset;
        if start < r.pos() {
            return Err(Error::BadHeader(format!("tensor {} overlaps the previous tensor", t.name)));
        }
        r.skip(start - r.pos(), "tensor padding")?;
        let (cols, rows) = (t.dims[0] as usize, t.dims.get(1).copied().unwrap_or(1) as usize);
        tensors.insert(t.name.clone(), (read_tensor(r, t, rows, cols)?, rows, cols));
    }

    let mut take_matrix = |name: &str| -> Option<Matrix> {
        tensors.remove(name).map(|(storage, rows, cols)| Matrix { rows, cols, storage })
    };
    let embed = take_matrix("token_embd.weight").unwrap();
    let classifier = take_matrix("output.weight");
    let vector = |m: Matrix| -> Result<Vec<f32>> {
        match m.storage {
            Storage::F32(v) => Ok(v),
            _ => Err(Error::Unsupported("quantized norm weights".into())),
        }
    };
    let final_norm = vector(take_matrix("output_norm.weight").unwrap())?;
    let mut layers = Vec::with_capacity(c.n_layers);
    for l in 0..c.n_layers {
        let mut m = |n: &str| take_matrix(&format!("blk.{l}.{n}.weight")).unwrap();
        let (an, wq, wk, wv, wo, fnm, w1, w2, w3) = (
            m("attn_norm"),
            m("attn_q"),
            m("attn_k"),
            m("attn_v"),
            m("attn_output"),
            m("ffn_norm"),
            m("ffn_gate"),
            m("ffn_down"),
            m("ffn_up"),
        );
        layers.push(Layer { attn_norm: vector(an)?, wq, wk, wv, wo, ffn_norm: vector(fnm)?, w1, w2, w3 });
    }
    let file_type = match h.metadata.get("general.file_type") {
        Some(Value::Int(t)) => Some(*t as u32),
        _ => None,
    };
    Ok((c, Format::Gguf { version: h.version, file_type }, Weights { embed, layers, final_norm, classifier }, tokenizer))
}
