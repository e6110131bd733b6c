//! GGUF (v2 and v3) of the llama family (`general.architecture = llama`: Llama 2/3,
//! TinyLlama, SmolLM2, Mistral): metadata, the vocabulary in `tokenizer.ggml.*`
//! (read by [`crate::vocab`]), and
//! tensors in every type of [`GgmlType`], kept packed.
//! Tensors are read in file order (sorted by offset), in one pass, so the file never
//! needs to be in memory twice.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::{Format, Layer, Metadata, Weights};
use crate::source::{try_vec_with_capacity, Reader};
use crate::ggml::GgmlType;
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

/// ggml tensor type ids (the converters name these; the engine reads every type of
/// [`GgmlType`]).
pub const T_F32: u32 = 0;
pub const T_F16: u32 = 1;
pub const T_Q4_0: u32 = 2;
pub const T_Q8_0: u32 = 8;
pub const T_BF16: u32 = 30;

pub fn type_name(t: u32) -> String {
    crate::ggml::type_id_name(t)
}

/// Bytes of a tensor of `n` elements (whole blocks), for the types this engine reads.
pub fn tensor_bytes(t: u32, n: u64) -> Option<u64> {
    let ty = GgmlType::from_id(t)?;
    let bl = ty.block_len() as u64;
    (n % bl == 0).then(|| n / bl * ty.block_bytes() as u64)
}

/// The architectures this engine runs (`general.architecture`).
pub const ARCHITECTURES: &[&str] = &["llama"];

/// Without an explicit `context`, the KV cache holds at most this many positions: an
/// 8k- or 128k-context model must not allocate gigabytes it will not use.
pub const DEFAULT_CONTEXT_CAP: usize = 4096;

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

    pub fn architecture(&self) -> Result<String> {
        let arch = self.str("general.architecture").ok_or_else(|| {
            Error::BadHeader("missing metadata key general.architecture (not a model GGUF?)".into())
        })?;
        if !ARCHITECTURES.contains(&arch.as_str()) {
            return Err(Error::Unsupported(format!(
                "GGUF architecture {arch:?}: this engine runs {}",
                ARCHITECTURES.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(arch)
    }

    fn config(&self) -> Result<Config> {
        let arch = self.architecture()?;
        let key = |k: &str| format!("{arch}.{k}");
        let n_heads = self.usize(&key("attention.head_count"))?;
        let n_kv_heads = match self.metadata.get(&key("attention.head_count_kv")) {
            None => n_heads,
            Some(_) => self.usize(&key("attention.head_count_kv"))?,
        };
        let embd = self.tensors.iter().find(|t| t.name == "token_embd.weight");
        let vocab_size = match (&self.metadata.get("tokenizer.ggml.tokens"), embd) {
            (_, Some(t)) if t.dims.len() == 2 => t.dims[1] as usize,
            (Some(Value::StrArray(v)), _) => v.len(),
            _ => return Err(Error::BadHeader("cannot tell the vocabulary size (no token_embd.weight)".into())),
        };
        let dim = self.usize(&key("embedding_length"))?;
        let head_dim = match self.metadata.get(&key("attention.key_length")) {
            Some(_) => self.usize(&key("attention.key_length"))?,
            None if dim % n_heads == 0 => dim / n_heads,
            None => return Err(Error::BadHeader(format!("dim {dim} is not a multiple of n_heads {n_heads}"))),
        };
        if let Some(Value::Int(v)) = self.metadata.get(&key("attention.value_length")) {
            if *v as usize != head_dim {
                return Err(Error::Unsupported(format!("value heads of {v} values but key heads of {head_dim}")));
            }
        }
        let train_context = self.usize(&key("context_length"))?;
        let rope_scale = match self.str(&key("rope.scaling.type")).as_deref() {
            None | Some("none") => 1.0,
            // Llama 3.1's scaling lives in the rope_freqs tensor (llama.cpp's converter writes it).
            Some("llama3") => 1.0,
            Some("linear") => 1.0 / self.float_or(&key("rope.scaling.factor"), 1.0)?,
            Some(t) => return Err(Error::Unsupported(format!("rope scaling type {t:?} (this engine does linear and llama3)"))),
        };
        let c = Config {
            dim,
            hidden_dim: self.usize(&key("feed_forward_length"))?,
            n_layers: self.usize(&key("block_count"))?,
            n_heads,
            n_kv_heads,
            vocab_size,
            seq_len: train_context.min(DEFAULT_CONTEXT_CAP),
            train_context,
            head_dim,
            rope_theta: self.float_or(&key("rope.freq_base"), 10000.0)?,
            rope_scale,
            norm_eps: self.float_or(&key("attention.layer_norm_rms_epsilon"), 1e-5)?,
        };
        c.validate()?;
        if let Some(Value::Int(rd)) = self.metadata.get(&key("rope.dimension_count")) {
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

/// Read one tensor's data (the reader is at its offset): F32 as f32 values, every
/// other type as its packed bytes, never widened.
fn read_tensor(r: &mut Reader, t: &TensorInfo, rows: usize, cols: usize) -> Result<Storage> {
    let what = t.name.as_str();
    let ty = tensor_type(t)?;
    if ty == GgmlType::F32 {
        return Ok(Storage::F32(r.f32s(rows * cols, what)?));
    }
    let row_bytes = ty.row_bytes(cols).ok_or_else(|| {
        Error::BadHeader(format!("{what}: {cols} columns is not a whole number of {}-value {} blocks", ty.block_len(), ty.name()))
    })?;
    Ok(Storage::Ggml { ty, data: r.byte_vec(rows * row_bytes, what)? })
}

fn tensor_type(t: &TensorInfo) -> Result<GgmlType> {
    GgmlType::from_id(t.ggml_type).ok_or_else(|| {
        Error::Unsupported(format!(
            "tensor {} has type {} (this engine reads {})",
            t.name,
            type_name(t.ggml_type),
            GgmlType::ALL.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// Load a GGUF llama model (the magic was already read).
pub fn load(r: &mut Reader) -> Result<(Config, Format, Weights, Tokenizer, Metadata)> {
    let h = read_header(r)?;
    let c = h.config()?;
    let metadata = Metadata {
        architecture: h.architecture()?,
        name: h.str("general.name"),
        chat_template: h.str("tokenizer.chat_template"),
    };
    let tokenizer = h.tokenizer(c.vocab_size);

    // Where each tensor goes, with the shape it must have ([cols, rows] in GGUF order).
    let (d, hid, kv, v) = (c.dim as u64, c.hidden_dim as u64, c.kv_dim() as u64, c.vocab_size as u64);
    let q = c.q_dim() as u64;
    let mut expected: BTreeMap<String, [u64; 2]> = BTreeMap::new();
    let has_rope_freqs = h.tensors.iter().any(|t| t.name == "rope_freqs.weight");
    if has_rope_freqs {
        expected.insert("rope_freqs.weight".into(), [c.head_size() as u64 / 2, 1]);
    }
    expected.insert("token_embd.weight".into(), [d, v]);
    expected.insert("output_norm.weight".into(), [d, 1]);
    expected.insert("output.weight".into(), [d, v]);
    for l in 0..c.n_layers {
        for (name, shape) in [
            ("attn_norm", [d, 1]),
            ("attn_q", [d, q]),
            ("attn_k", [d, kv]),
            ("attn_v", [d, kv]),
            ("attn_output", [q, d]),
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
            continue; // a tensor this architecture does not use
        };
        let dims = [t.dims[0], t.dims.get(1).copied().unwrap_or(1)];
        if dims != *shape || t.dims.iter().skip(2).any(|&x| x != 1) {
            return Err(Error::BadHeader(format!("tensor {} has shape {:?}, expected {:?}", t.name, t.dims, shape)));
        }
        let ty = tensor_type(t)?;
        let bytes = ty.row_bytes(shape[0] as usize).map(|rb| rb as u64 * shape[1]).ok_or_else(|| {
            Error::BadHeader(format!(
                "tensor {}: {} columns is not a whole number of {}-value {} blocks",
                t.name,
                shape[0],
                ty.block_len(),
                ty.name()
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
    // Norm weights are F32 in every file llama.cpp writes; anything else is widened.
    let vector = |m: Matrix| -> Result<Vec<f32>> {
        match m.storage {
            Storage::F32(v) => Ok(v),
            _ => {
                let mut v = crate::source::try_zeroed(m.rows * m.cols, "norm weights")?;
                for (r, out) in v.chunks_exact_mut(m.cols).enumerate() {
                    m.row_into(r, out);
                }
                Ok(v)
            }
        }
    };
    let final_norm = vector(take_matrix("output_norm.weight").unwrap())?;
    let rope_freqs = match take_matrix("rope_freqs.weight") {
        None => None,
        Some(m) => {
            let f = vector(m)?;
            if f.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(Error::BadHeader("rope_freqs.weight holds a value that is not a positive number".into()));
            }
            Some(f)
        }
    };
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
    Ok((c, Format::Gguf { version: h.version, file_type }, Weights { embed, layers, final_norm, classifier, rope_freqs }, tokenizer, metadata))
}
