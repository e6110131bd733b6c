//! GGUF (v2 and v3) of the architectures in [`crate::arch`] (llama: Llama 2/3, TinyLlama,
//! SmolLM2, Mistral; qwen2; phi3; gemma3): metadata, each architecture's hyperparameter
//! keys, the vocabulary in `tokenizer.ggml.*`
//! (read by [`crate::vocab`]), and
//! tensors in every type of [`GgmlType`], kept packed.
//! Tensors are read in file order (sorted by offset), in one pass, so the file never
//! needs to be in memory twice.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::arch::{Arch, Blocks};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::math;
use crate::model::{Format, Layer, LayerExtras, Metadata, Weights};
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

/// The architectures this engine runs (`general.architecture`; see [`crate::arch`]).
pub const ARCHITECTURES: &[&str] = &["llama", "qwen2", "phi3", "gemma3"];

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
        // Bools (Gemma's sliding-window pattern) as 0 / 1.
        7 => {
            let mut v = try_vec_with_capacity(count, what)?;
            for _ in 0..n {
                v.push((r.u8(what)? != 0) as i64);
            }
            Value::IntArray(v)
        }
        12 => {
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
        Ok(self.arch()?.name().into())
    }

    fn arch(&self) -> Result<Arch> {
        let arch = self.str("general.architecture").ok_or_else(|| {
            Error::BadHeader("missing metadata key general.architecture (not a model GGUF?)".into())
        })?;
        Arch::from_name(&arch).ok_or_else(|| {
            Error::Unsupported(format!(
                "GGUF architecture {arch:?}: this engine runs {}",
                ARCHITECTURES.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ")
            ))
        })
    }

    fn config(&self) -> Result<Config> {
        let arch = self.arch()?;
        let key = |k: &str| format!("{}.{k}", arch.name());
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
        // Gemma 4's sliding-window layers have heads of another size: not this engine's layout.
        for k in ["attention.key_length_swa", "attention.value_length_swa"] {
            if let Some(Value::Int(v)) = self.metadata.get(&key(k)) {
                if *v as usize != head_dim {
                    return Err(Error::Unsupported(format!("{} = {v}: sliding-window heads of another size", key(k))));
                }
            }
        }
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
            // Phi-3's longrope: the rope_factors_* tensors, a magnitude factor below.
            Some("linear") | Some("longrope") => 1.0 / self.float_or(&key("rope.scaling.factor"), 1.0)?,
            Some(t) => {
                return Err(Error::Unsupported(format!("rope scaling type {t:?} (this engine does linear, llama3 and longrope)")))
            }
        };
        let n_layers = self.usize(&key("block_count"))?;
        // Checked before anything sized by it is allocated (the per-layer pattern).
        if n_layers > crate::config::MAX_LAYERS {
            return Err(Error::BadHeader(format!("n_layers = {n_layers} is out of range (1..={})", crate::config::MAX_LAYERS)));
        }
        let c = Config {
            dim,
            hidden_dim: self.usize(&key("feed_forward_length"))?,
            n_layers,
            n_heads,
            n_kv_heads,
            vocab_size,
            seq_len: train_context.min(DEFAULT_CONTEXT_CAP),
            train_context,
            head_dim,
            rope_theta: self.float_or(&key("rope.freq_base"), 10000.0)?,
            rope_scale,
            norm_eps: self.float_or(&key("attention.layer_norm_rms_epsilon"), 1e-5)?,
            blocks: self.blocks(arch, n_layers, dim, n_heads, head_dim, train_context)?,
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

    /// The architecture's switches, from its hyperparameter keys as llama.cpp reads them.
    fn blocks(&self, arch: Arch, n_layers: usize, dim: usize, n_heads: usize, head_dim: usize, train_context: usize) -> Result<Blocks> {
        let key = |k: &str| format!("{}.{k}", arch.name());
        let mut b = Blocks::llama(n_layers);
        b.arch = arch;
        b.rope_attn_factor = self.float_or(&key("rope.scaling.attn_factor"), 1.0)?;
        b.rope_original_context = match self.metadata.get(&key("rope.scaling.original_context_length")) {
            Some(_) => self.usize(&key("rope.scaling.original_context_length"))?,
            None => train_context,
        };
        match arch {
            Arch::Llama | Arch::Qwen2 => {}
            // llama.cpp scales Phi-3's queries rather than the scores, and ignores its
            // sliding-window key (its converters write a wrong one).
            Arch::Phi3 => b.query_scale = Some(1.0 / math::sqrtf(head_dim as f32)),
            Arch::Gemma3 => {
                b.embed_scale = Some(math::sqrtf(dim as f32));
                // gemma_pytorch's query_pre_attn_scalar: head size, but dim / heads for
                // the 27B model (62 layers), as llama.cpp has it.
                let scalar = if n_layers == 62 { dim / n_heads } else { head_dim };
                b.query_scale = Some(1.0 / math::sqrtf(scalar as f32));
                let window = match self.metadata.get(&key("attention.sliding_window")) {
                    Some(Value::Int(w)) if *w > 0 => Some(self.usize(&key("attention.sliding_window"))?),
                    _ => None,
                };
                if window.is_some() {
                    b.window = window;
                    b.local_layers = match self.metadata.get(&key("attention.sliding_window_pattern")) {
                        Some(Value::IntArray(v)) if v.len() == n_layers => v.iter().map(|&x| x != 0).collect(),
                        Some(Value::Int(n)) if *n >= 0 => local_pattern(n_layers, *n as usize),
                        None => local_pattern(n_layers, 6),
                        Some(v) => return Err(Error::BadHeader(format!("{} is {v:?}", key("attention.sliding_window_pattern")))),
                    };
                    b.rope_theta_local = self.float_or(&key("rope.freq_base_swa"), 10000.0)?;
                }
                let cap = self.float_or(&key("final_logit_softcapping"), 0.0)?;
                b.final_softcap = (cap != 0.0).then_some(cap);
            }
        }
        Ok(b)
    }

    /// The vocabulary stored in the file (see [`crate::vocab`]).
    pub fn tokenizer(&self, vocab_size: usize) -> Result<Tokenizer> {
        crate::vocab::from_header(self, Some(vocab_size))
    }
}

/// Every `n`-th layer attends globally, the others through the sliding window
/// (llama.cpp's `set_swa_pattern`: layer l is local when l % n < n - 1; n = 0: all).
fn local_pattern(n_layers: usize, n: usize) -> Vec<bool> {
    (0..n_layers).map(|l| n == 0 || l % n < n - 1).collect()
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
    let data = r.byte_vec(rows * row_bytes, what)?;
    let scales = crate::kernels::BlockScales::new(ty, &data)?;
    Ok(Storage::Ggml { ty, data, scales })
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

    // Where each tensor goes, with the shape it must have ([cols, rows] in GGUF order)
    // and whether the architecture needs it.
    let arch = c.blocks.arch;
    let (d, hid, kv, v) = (c.dim as u64, c.hidden_dim as u64, c.kv_dim() as u64, c.vocab_size as u64);
    let (q, hd) = (c.q_dim() as u64, c.head_size() as u64);
    let in_file = |name: &str| h.tensors.iter().any(|t| t.name == name);
    let mut expected: BTreeMap<String, ([u64; 2], bool)> = BTreeMap::new();
    let mut want = |name: String, shape: [u64; 2], required: bool| {
        expected.insert(name, (shape, required));
    };
    // Only the tensors llama.cpp's graph of this architecture uses (others are ignored):
    // Llama 3.1's rope_freqs for llama, the longrope pair for phi3, an output bias for qwen2.
    let rope_tensors: &[&str] = match arch {
        Arch::Llama => &["rope_freqs.weight"],
        Arch::Phi3 => &["rope_factors_short.weight", "rope_factors_long.weight"],
        Arch::Qwen2 | Arch::Gemma3 => &[],
    };
    for name in rope_tensors {
        want((*name).into(), [hd / 2, 1], false);
    }
    want("token_embd.weight".into(), [d, v], true);
    want("output_norm.weight".into(), [d, 1], true);
    want("output.weight".into(), [d, v], false);
    if arch == Arch::Qwen2 {
        want("output.bias".into(), [v, 1], false);
    }
    for l in 0..c.n_layers {
        let mut layer = |name: &str, shape: [u64; 2], required: bool| want(format!("blk.{l}.{name}"), shape, required);
        layer("attn_norm.weight", [d, 1], true);
        let fused_qkv = in_file(&format!("blk.{l}.attn_qkv.weight"));
        layer("attn_qkv.weight", [d, q + 2 * kv], fused_qkv);
        layer("attn_qkv.bias", [q + 2 * kv, 1], false);
        for (name, rows) in [("attn_q", q), ("attn_k", kv), ("attn_v", kv)] {
            layer(&format!("{name}.weight"), [d, rows], !fused_qkv);
            layer(&format!("{name}.bias"), [rows, 1], false);
        }
        layer("attn_output.weight", [q, d], true);
        layer("ffn_norm.weight", [d, 1], true);
        if arch.fused_gate_up() {
            layer("ffn_up.weight", [d, 2 * hid], true);
        } else {
            layer("ffn_gate.weight", [d, hid], true);
            layer("ffn_up.weight", [d, hid], true);
        }
        layer("ffn_down.weight", [hid, d], true);
        if arch.gemma_norms() {
            layer("attn_q_norm.weight", [hd, 1], true);
            layer("attn_k_norm.weight", [hd, 1], true);
            layer("post_attention_norm.weight", [d, 1], true);
            layer("post_ffw_norm.weight", [d, 1], true);
        }
    }

    // Validate every tensor against its expected shape and the file size first.
    let mut order: Vec<&TensorInfo> = Vec::new();
    for t in &h.tensors {
        let Some((shape, _)) = expected.get(&t.name) else {
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
    for (name, (_, required)) in &expected {
        if *required && !order.iter().any(|t| &t.name == name) {
            return Err(Error::BadHeader(format!("missing tensor {name} (a {} model has one)", arch.name())));
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
    let mut factors = |name: &str| -> Result<Option<Vec<f32>>> {
        let Some(m) = take_matrix(name) else { return Ok(None) };
        let f = vector(m)?;
        if f.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(Error::BadHeader(format!("{name} holds a value that is not a positive number")));
        }
        Ok(Some(f))
    };
    // Llama 3.1's rope_freqs, or Phi-3's short factors (the long ones are chosen by
    // context length in the forward pass).
    let rope_freqs = match factors("rope_freqs.weight")? {
        Some(f) => Some(f),
        None => factors("rope_factors_short.weight")?,
    };
    let rope_factors_long = factors("rope_factors_long.weight")?;
    let optional = |m: Option<Matrix>| m.map(vector).transpose();
    let classifier_bias = optional(take_matrix("output.bias"))?;
    let (qn, kvn) = (c.q_dim(), c.kv_dim());
    let mut layers = Vec::with_capacity(c.n_layers);
    for l in 0..c.n_layers {
        // `m("attn_q")` is the layer's attn_q.weight; `m("attn_q.bias")` its bias.
        let mut m = |n: &str| {
            let full = if n.contains('.') { format!("blk.{l}.{n}") } else { format!("blk.{l}.{n}.weight") };
            take_matrix(&full)
        };
        let fused = m("attn_qkv");
        let has_fused = fused.is_some();
        let (wq, wk, wv, mut extra) = match fused {
            // A fused projection is split by rows: queries, then keys, then values.
            Some(qkv) => {
                let (wq, kv_rows) = qkv.split_rows(qn)?;
                let (wk, wv) = kv_rows.split_rows(kvn)?;
                let mut extra = LayerExtras::default();
                if let Some(b) = optional(m("attn_qkv.bias"))? {
                    extra.bq = Some(b[..qn].to_vec());
                    extra.bk = Some(b[qn..qn + kvn].to_vec());
                    extra.bv = Some(b[qn + kvn..].to_vec());
                }
                (wq, wk, wv, extra)
            }
            None => (m("attn_q").unwrap(), m("attn_k").unwrap(), m("attn_v").unwrap(), LayerExtras::default()),
        };
        let (wo, w2) = (m("attn_output").unwrap(), m("ffn_down").unwrap());
        let (w1, w3) = if arch.fused_gate_up() {
            m("ffn_up").unwrap().split_rows(c.hidden_dim)?
        } else {
            (m("ffn_gate").unwrap(), m("ffn_up").unwrap())
        };
        let (attn_norm, ffn_norm) = (vector(m("attn_norm").unwrap())?, vector(m("ffn_norm").unwrap())?);
        // Separate biases, as llama.cpp: with a fused projection only when it has no
        // fused bias, and then only all three together.
        let (bq, bk, bv) = (optional(m("attn_q.bias"))?, optional(m("attn_k.bias"))?, optional(m("attn_v.bias"))?);
        if extra.bq.is_none() {
            let all_three = bq.is_some() && bk.is_some() && bv.is_some();
            if !has_fused || all_three {
                (extra.bq, extra.bk, extra.bv) = (bq, bk, bv);
            }
        }
        extra.q_norm = optional(m("attn_q_norm"))?;
        extra.k_norm = optional(m("attn_k_norm"))?;
        extra.post_attn_norm = optional(m("post_attention_norm"))?;
        extra.post_ffn_norm = optional(m("post_ffw_norm"))?;
        layers.push(Layer { attn_norm, wq, wk, wv, wo, ffn_norm, w1, w2, w3, extra });
    }
    let file_type = match h.metadata.get("general.file_type") {
        Some(Value::Int(t)) => Some(*t as u32),
        _ => None,
    };
    Ok((c, Format::Gguf { version: h.version, file_type }, Weights { embed, layers, final_norm, classifier, classifier_bias, rope_freqs, rope_factors_long }, tokenizer, metadata))
}
