//! GGUF (v2/v3, `general.architecture = llama`) as a weight source. The header is
//! parsed by the engine's own `llama::gguf::read_header`; tensor data is read from a
//! memory map one tensor at a time. GGUF llama tensors are already in llama2.c's
//! layout (llama.cpp's converter undoes HF's rotary permutation), row-major with
//! `dims[0]` columns.
//!
//! Types: F32, F16, BF16, Q8_0 and Q4_0 are dequantized to f32. For q8 output, Q8_0
//! matrices are kept verbatim (f16 block scale widened exactly to f32, 32 int8 values)
//! when the group size is 32 — the default for a GGUF holding Q8_0 matrices whenever
//! 32 divides dim and hidden_dim; every other tensor is dequantized and requantized.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use llama::gguf::{tensor_bytes, Header, TensorInfo, Value, T_BF16, T_F16, T_F32, T_Q4_0, T_Q8_0};
use llama::Config;
use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::writer::{model_tensors, Kind, Tensor, WeightSource};


pub struct GgufModel {
    map: Mmap,
    header: Header,
    config: Config,
    /// llama2.c tensor name → index in `header.tensors`.
    tensors: BTreeMap<String, usize>,
    shared: bool,
}

fn gguf_name(t: Tensor) -> String {
    let l = t.layer;
    let blk = |n: &str| format!("blk.{l}.{n}.weight");
    match t.kind {
        Kind::Embed => "token_embd.weight".into(),
        Kind::FinalNorm => "output_norm.weight".into(),
        Kind::Classifier => "output.weight".into(),
        Kind::AttnNorm => blk("attn_norm"),
        Kind::Wq => blk("attn_q"),
        Kind::Wk => blk("attn_k"),
        Kind::Wv => blk("attn_v"),
        Kind::Wo => blk("attn_output"),
        Kind::FfnNorm => blk("ffn_norm"),
        Kind::W1 => blk("ffn_gate"),
        Kind::W2 => blk("ffn_down"),
        Kind::W3 => blk("ffn_up"),
    }
}

fn int(h: &Header, key: &str) -> Result<Option<usize>> {
    match h.metadata.get(key) {
        None => Ok(None),
        Some(Value::Int(v)) if *v > 0 && *v <= u32::MAX as i64 => Ok(Some(*v as usize)),
        Some(v) => Err(Error::Invalid(format!(
            "{key} is {v:?}, expected a positive integer"
        ))),
    }
}

fn need_int(h: &Header, key: &str) -> Result<usize> {
    int(h, key)?.ok_or_else(|| Error::Invalid(format!("missing metadata key {key}")))
}

fn float_or(h: &Header, key: &str, default: f32) -> Result<f32> {
    match h.metadata.get(key) {
        None => Ok(default),
        Some(Value::Float(v)) => Ok(*v as f32),
        Some(Value::Int(v)) => Ok(*v as f32),
        Some(v) => Err(Error::Invalid(format!("{key} is {v:?}, expected a number"))),
    }
}

impl GgufModel {
    /// Open and validate a GGUF file (all needed tensors present, shaped and in bounds).
    pub fn open(path: &Path) -> Result<GgufModel> {
        let f = File::open(path).map_err(|e| Error::file(path, e))?;
        // SAFETY: read-only mapping; the file must not be truncated during conversion.
        let map = unsafe { Mmap::map(&f) }.map_err(|e| Error::file(path, e))?;
        Self::from_map(map).map_err(|e| e.context(path.display()))
    }

    fn from_map(map: Mmap) -> Result<GgufModel> {
        let header = {
            let mut src: &[u8] = &map;
            let mut none = |_: u64, _: u64| {};
            let mut r = llama::source::Reader::new(&mut src, &mut none);
            if r.size() < 4 || r.u32("magic")? != llama::gguf::MAGIC {
                return Err(Error::Invalid("not a GGUF file (no GGUF magic)".into()));
            }
            llama::gguf::read_header(&mut r)?
        };
        let arch = header.str("general.architecture").unwrap_or_default();
        if arch != "llama" {
            return Err(Error::Unsupported(format!(
                "GGUF architecture {arch:?}: only \"llama\" converts to llama2.c"
            )));
        }
        let names: BTreeMap<String, usize> = header
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let embd = names
            .get("token_embd.weight")
            .map(|&i| &header.tensors[i])
            .ok_or_else(|| Error::Invalid("missing tensor token_embd.weight".into()))?;
        let vocab_size = match embd.dims.as_slice() {
            [_, v] => *v as usize,
            d => return Err(Error::Invalid(format!("token_embd.weight has shape {d:?}"))),
        };
        let n_heads = need_int(&header, "llama.attention.head_count")?;
        let dim = need_int(&header, "llama.embedding_length")?;
        if n_heads == 0 || dim % n_heads != 0 {
            return Err(Error::Unsupported(format!(
                "the model's shape: dim {dim} is not a multiple of n_heads {n_heads} (llama2.c's format needs head size = dim / n_heads)"
            )));
        }
        let seq_len = need_int(&header, "llama.context_length")?;
        let n_layers = need_int(&header, "llama.block_count")?;
        let config = Config {
            dim,
            hidden_dim: need_int(&header, "llama.feed_forward_length")?,
            n_layers,
            n_heads,
            n_kv_heads: int(&header, "llama.attention.head_count_kv")?.unwrap_or(n_heads),
            vocab_size,
            seq_len,
            train_context: seq_len,
            head_dim: dim / n_heads,
            rope_theta: float_or(&header, "llama.rope.freq_base", 10000.0)?,
            rope_scale: 1.0,
            norm_eps: float_or(&header, "llama.attention.layer_norm_rms_epsilon", 1e-5)?,
            blocks: llama::arch::Blocks::llama(n_layers),
        };
        config
            .validate()
            .map_err(|e| Error::Unsupported(format!("the model's shape: {e}")))?;
        if let Some(rd) = int(&header, "llama.rope.dimension_count")? {
            if rd != config.head_size() {
                return Err(Error::Unsupported(format!(
                    "partial rotary embeddings (rope dimension {rd}, head size {})",
                    config.head_size()
                )));
            }
        }
        let shared = !names.contains_key("output.weight");
        let mut m = GgufModel {
            map,
            header,
            config,
            tensors: BTreeMap::new(),
            shared,
        };
        let all = model_tensors(m.config.n_layers, shared);
        for t in all {
            let name = gguf_name(t);
            let &i = names
                .get(name.as_str())
                .ok_or_else(|| Error::Invalid(format!("missing tensor {name}")))?;
            m.check(t, &m.header.tensors[i])?;
            m.tensors.insert(name, i);
        }
        Ok(m)
    }

    fn check(&self, t: Tensor, info: &TensorInfo) -> Result<()> {
        let [rows, cols] = t.shape(&self.config);
        let dims = [info.dims[0], info.dims.get(1).copied().unwrap_or(1)];
        if dims != [cols as u64, rows as u64] || info.dims.iter().skip(2).any(|&d| d != 1) {
            return Err(Error::Invalid(format!(
                "tensor {} has shape {:?}, expected {:?}",
                info.name,
                info.dims,
                [cols, rows]
            )));
        }
        let n = rows as u64 * cols as u64;
        let bytes = tensor_bytes(info.ggml_type, n).ok_or_else(|| {
            Error::Unsupported(format!(
                "tensor {} has type {} (F32, F16, BF16, Q8_0 and Q4_0 convert)",
                info.name,
                llama::gguf::type_name(info.ggml_type)
            ))
        })?;
        if matches!(info.ggml_type, T_Q8_0 | T_Q4_0) && cols % 32 != 0 {
            return Err(Error::Invalid(format!(
                "tensor {}: {cols} columns is not a multiple of 32",
                info.name
            )));
        }
        let end = self
            .header
            .data_start
            .checked_add(info.offset)
            .and_then(|s| s.checked_add(bytes));
        if end.is_none_or(|e| e > self.map.len() as u64) {
            return Err(Error::Invalid(format!(
                "tensor {} lies past the end of the file (truncated?)",
                info.name
            )));
        }
        Ok(())
    }

    fn info(&self, t: Tensor) -> Result<(&TensorInfo, &[u8])> {
        let name = gguf_name(t);
        let &i = self
            .tensors
            .get(&name)
            .ok_or_else(|| Error::Invalid(format!("missing tensor {name}")))?;
        let info = &self.header.tensors[i];
        let n = t.elements(&self.config);
        let start = (self.header.data_start + info.offset) as usize;
        let len = tensor_bytes(info.ggml_type, n).unwrap_or(0) as usize;
        let data = self
            .map
            .get(start..start + len)
            .ok_or_else(|| Error::Invalid(format!("tensor {name} is truncated")))?;
        Ok((info, data))
    }

    /// The GGUF header (metadata, tensor infos) as the engine parsed it.
    pub fn header(&self) -> &Header {
        &self.header
    }
}

fn f16(b: &[u8]) -> f32 {
    llama::source::f16_to_f32(u16::from_le_bytes([b[0], b[1]]))
}

impl WeightSource for GgufModel {
    fn config(&self) -> &Config {
        &self.config
    }
    fn shared_classifier(&self) -> bool {
        self.shared
    }
    fn load(&self, t: Tensor) -> Result<Vec<f32>> {
        let (info, b) = self.info(t)?;
        Ok(match info.ggml_type {
            T_F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            T_F16 => b.chunks_exact(2).map(f16).collect(),
            T_BF16 => b
                .chunks_exact(2)
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                .collect(),
            T_Q8_0 => {
                let mut v = Vec::with_capacity(b.len() / 34 * 32);
                for blk in b.chunks_exact(34) {
                    let d = f16(blk);
                    v.extend(blk[2..].iter().map(|&q| d * (q as i8) as f32));
                }
                v
            }
            T_Q4_0 => {
                let mut v = Vec::with_capacity(b.len() / 18 * 32);
                for blk in b.chunks_exact(18) {
                    let d = f16(blk);
                    // Low nibbles are values 0..16, high nibbles 16..32, both offset by 8.
                    v.extend(blk[2..].iter().map(|&q| d * ((q & 0x0f) as i32 - 8) as f32));
                    v.extend(blk[2..].iter().map(|&q| d * ((q >> 4) as i32 - 8) as f32));
                }
                v
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "{}: type {}",
                    info.name,
                    llama::gguf::type_name(other)
                )))
            }
        })
    }

    fn load_q8(&self, t: Tensor, group_size: usize) -> Result<Option<(Vec<i8>, Vec<f32>)>> {
        let (info, b) = self.info(t)?;
        if info.ggml_type != T_Q8_0 || group_size != 32 {
            return Ok(None);
        }
        let mut q = Vec::with_capacity(b.len() / 34 * 32);
        let mut s = Vec::with_capacity(b.len() / 34);
        for blk in b.chunks_exact(34) {
            s.push(f16(blk));
            q.extend(blk[2..].iter().map(|&v| v as i8));
        }
        Ok(Some((q, s)))
    }

    fn native_group_size(&self) -> Option<usize> {
        let any_q8 = self
            .tensors
            .values()
            .any(|&i| self.header.tensors[i].ggml_type == T_Q8_0);
        any_q8.then_some(32)
    }
}
