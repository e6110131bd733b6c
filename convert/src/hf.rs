//! Hugging Face `LlamaForCausalLM` checkpoints: `config.json` plus `model.safetensors`
//! or shards listed in `model.safetensors.index.json`. Files are memory-mapped and
//! tensors read one at a time, so the model is never in memory twice.
//!
//! HF stores q_proj/k_proj rows permuted for its rotate-half RoPE: within each head,
//! row `b * head_size/2 + a` holds Meta's (llama2.c's) row `2a + b`. We undo that per
//! head, with n_heads heads for q_proj and n_kv_heads for k_proj (GQA).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use llama::Config;
use memmap2::Mmap;
use safetensors::tensor::{Dtype, Metadata};
use safetensors::SafeTensors;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::writer::{model_tensors, Kind, Tensor, WeightSource};

/// The parts of `config.json` that matter for conversion.
#[derive(Clone, Debug)]
pub struct HfConfig {
    pub config: Config,
    pub tie_word_embeddings: bool,
    pub warnings: Vec<String>,
}

fn get<'a>(j: &'a Value, key: &str) -> Option<&'a Value> {
    j.get(key).filter(|v| !v.is_null())
}

fn usize_key(j: &Value, key: &str) -> Result<usize> {
    let v = get(j, key).ok_or_else(|| Error::Invalid(format!("missing key {key:?}")))?;
    v.as_u64()
        .filter(|&n| n > 0 && n <= u32::MAX as u64)
        .map(|n| n as usize)
        .ok_or_else(|| Error::Invalid(format!("{key:?} is {v}, expected a positive integer")))
}

fn f64_key(j: &Value, key: &str) -> Result<Option<f64>> {
    match get(j, key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| Error::Invalid(format!("{key:?} is {v}, expected a number"))),
    }
}

/// Parse a `config.json` text.
pub fn parse_config(text: &str) -> Result<HfConfig> {
    let j: Value =
        serde_json::from_str(text).map_err(|e| Error::Invalid(format!("not JSON: {e}")))?;
    if !j.is_object() {
        return Err(Error::Invalid("expected a JSON object".into()));
    }
    let mut warnings = Vec::new();
    match get(&j, "model_type").and_then(Value::as_str) {
        Some("llama") => {}
        Some(t) => warnings.push(format!(
            "model_type is {t:?}, not \"llama\": converting it as a Llama model"
        )),
        None => warnings.push("config.json has no model_type; assuming a Llama model".into()),
    }
    if let Some(act) = get(&j, "hidden_act").and_then(Value::as_str) {
        if act != "silu" {
            return Err(Error::Unsupported(format!(
                "hidden_act {act:?}: llama2.c's feed-forward is SwiGLU (silu)"
            )));
        }
    }
    for key in ["attention_bias", "mlp_bias"] {
        if get(&j, key).and_then(Value::as_bool) == Some(true) {
            return Err(Error::Unsupported(format!(
                "{key} is true: llama2.c's format has no bias vectors"
            )));
        }
    }
    let dim = usize_key(&j, "hidden_size")?;
    let n_heads = usize_key(&j, "num_attention_heads")?;
    let n_kv_heads = if get(&j, "num_key_value_heads").is_some() {
        usize_key(&j, "num_key_value_heads")?
    } else {
        n_heads
    };
    if get(&j, "head_dim").is_some() {
        let hd = usize_key(&j, "head_dim")?;
        if hd * n_heads != dim {
            return Err(Error::Unsupported(format!(
                "head_dim {hd} × {n_heads} heads ≠ hidden_size {dim}: llama2.c needs head_dim = hidden_size / heads"
            )));
        }
    }
    // transformers ≥ 4.5x moved rope_theta into rope_parameters (and older ones have rope_scaling).
    let rope = get(&j, "rope_parameters").or_else(|| get(&j, "rope_scaling"));
    let rope_theta = match f64_key(&j, "rope_theta")? {
        Some(t) => t,
        None => rope
            .map(|r| f64_key(r, "rope_theta"))
            .transpose()?
            .flatten()
            .unwrap_or(10000.0),
    };
    if let Some(kind) = rope
        .and_then(|r| r.get("rope_type").or_else(|| r.get("type")))
        .and_then(Value::as_str)
    {
        if kind != "default" {
            warnings.push(format!(
                "rope type {kind:?} (RoPE scaling) cannot be stored in llama2.c's format: the engine will use plain RoPE"
            ));
        }
    }
    let norm_eps = f64_key(&j, "rms_norm_eps")?.unwrap_or(1e-6);
    if n_heads == 0 || dim % n_heads != 0 {
        return Err(Error::Unsupported(format!(
            "the model's shape: dim {dim} is not a multiple of n_heads {n_heads} (llama2.c's format needs head size = dim / n_heads)"
        )));
    }
    let seq_len = usize_key(&j, "max_position_embeddings")?;
    let n_layers = usize_key(&j, "num_hidden_layers")?;
    let config = Config {
        dim,
        hidden_dim: usize_key(&j, "intermediate_size")?,
        n_layers,
        n_heads,
        n_kv_heads,
        vocab_size: usize_key(&j, "vocab_size")?,
        seq_len,
        train_context: seq_len,
        head_dim: dim / n_heads,
        rope_theta: rope_theta as f32,
        rope_scale: 1.0,
        norm_eps: norm_eps as f32,
        blocks: llama::arch::Blocks::llama(n_layers),
    };
    config
        .validate()
        .map_err(|e| Error::Unsupported(format!("the model's shape: {e}")))?;
    let tie_word_embeddings = get(&j, "tie_word_embeddings")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(HfConfig {
        config,
        tie_word_embeddings,
        warnings,
    })
}

/// Warnings for hyper-parameters llama2.c's format cannot store (the engine and
/// run.c assume rms_norm_eps 1e-5 and rope_theta 10000).
pub(crate) fn format_warnings(c: &Config) -> Vec<String> {
    let mut w = Vec::new();
    if c.norm_eps != 1e-5 {
        w.push(format!(
            "rms_norm_eps is {:e}; llama2.c's format cannot store it and runs with 1e-5",
            c.norm_eps
        ));
    }
    if c.rope_theta != 10000.0 {
        w.push(format!(
            "rope_theta is {}; llama2.c's format cannot store it and runs with 10000",
            c.rope_theta
        ));
    }
    w
}

/// One memory-mapped safetensors file with its parsed header.
struct Shard {
    path: PathBuf,
    map: Mmap,
    header_len: usize,
    meta: Metadata,
}

impl Shard {
    fn open(path: &Path) -> Result<Shard> {
        let f = File::open(path).map_err(|e| Error::file(path, e))?;
        // SAFETY: the mapping is read-only; like every mmap reader we assume the file
        // is not truncated by someone else while we convert it.
        let map = unsafe { Mmap::map(&f) }.map_err(|e| Error::file(path, e))?;
        let (header_len, meta) = SafeTensors::read_metadata(&map).map_err(|e| {
            Error::Invalid(format!("{}: not a safetensors file: {e}", path.display()))
        })?;
        Ok(Shard {
            path: path.to_path_buf(),
            map,
            header_len,
            meta,
        })
    }
}

/// An opened Hugging Face checkpoint: config plus memory-mapped tensors.
pub struct HfModel {
    pub hf: HfConfig,
    shards: Vec<Shard>,
    /// Tensor name → shard index.
    index: BTreeMap<String, usize>,
    shared: bool,
}

impl HfModel {
    /// Open `dir` (config.json and the safetensors files); checks every tensor the
    /// model needs is present with the right shape and a supported dtype.
    pub fn open(dir: &Path) -> Result<HfModel> {
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::file(&cfg_path, e))?;
        let hf = parse_config(&text).map_err(|e| e.context(cfg_path.display()))?;

        let index_path = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let mut shards = Vec::new();
        let mut index = BTreeMap::new();
        if index_path.exists() {
            let text =
                std::fs::read_to_string(&index_path).map_err(|e| Error::file(&index_path, e))?;
            let j: Value = serde_json::from_str(&text)
                .map_err(|e| Error::Invalid(format!("{}: not JSON: {e}", index_path.display())))?;
            let map = j
                .get("weight_map")
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "{}: no \"weight_map\" object",
                        index_path.display()
                    ))
                })?;
            let mut files: BTreeMap<String, usize> = BTreeMap::new();
            for (name, file) in map {
                let file = file.as_str().ok_or_else(|| {
                    Error::Invalid(format!(
                        "{}: weight_map[{name:?}] is not a file name",
                        index_path.display()
                    ))
                })?;
                if file.contains('/') || file.contains('\\') || file == ".." {
                    return Err(Error::Invalid(format!(
                        "{}: shard name {file:?} is not a plain file name",
                        index_path.display()
                    )));
                }
                let i = match files.get(file) {
                    Some(&i) => i,
                    None => {
                        shards.push(Shard::open(&dir.join(file))?);
                        files.insert(file.to_string(), shards.len() - 1);
                        shards.len() - 1
                    }
                };
                if shards[i].meta.info(name).is_none() {
                    return Err(Error::Invalid(format!(
                        "the index puts {name} in {file}, which does not contain it"
                    )));
                }
                index.insert(name.clone(), i);
            }
        } else if single.exists() {
            let s = Shard::open(&single)?;
            for name in s.meta.tensors().keys() {
                index.insert(name.clone(), 0);
            }
            shards.push(s);
        } else {
            return Err(Error::Invalid(format!(
                "{}: neither model.safetensors nor model.safetensors.index.json (only safetensors checkpoints are read)",
                dir.display()
            )));
        }

        let mut m = HfModel {
            hf,
            shards,
            index,
            shared: false,
        };
        m.shared = m.hf.tie_word_embeddings || !m.index.contains_key("lm_head.weight");
        let checked = (|| {
            if !m.shared {
                // llama2.c's export shares the classifier when it equals the embeddings.
                m.shared = m.raw("lm_head.weight")?.1 == m.raw("model.embed_tokens.weight")?.1;
            }
            m.check()
        })();
        checked.map_err(|e| e.context(dir.display()))?;
        Ok(m)
    }

    fn tensors(&self) -> Vec<Tensor> {
        model_tensors(self.hf.config.n_layers, self.shared)
    }

    /// Validate names, shapes and dtypes up front, before writing anything.
    fn check(&self) -> Result<()> {
        let c = &self.hf.config;
        for t in self.tensors() {
            let name = hf_name(t);
            let (info, _) = self.raw(&name)?;
            let [rows, cols] = t.shape(c);
            let want: Vec<usize> = if t.is_vector() {
                vec![cols]
            } else {
                vec![rows, cols]
            };
            if info.shape != want {
                return Err(Error::Invalid(format!(
                    "tensor {name} has shape {:?}, expected {want:?}",
                    info.shape
                )));
            }
            dtype_size(info.dtype).ok_or_else(|| {
                Error::Unsupported(format!(
                    "tensor {name} has dtype {:?} (F32, F16 and BF16 are read)",
                    info.dtype
                ))
            })?;
        }
        for name in self.index.keys() {
            if name.contains("bias") {
                return Err(Error::Unsupported(format!(
                    "tensor {name}: llama2.c's format has no bias vectors"
                )));
            }
        }
        Ok(())
    }

    /// A tensor's header entry and raw bytes.
    fn raw(&self, name: &str) -> Result<(&safetensors::tensor::TensorInfo, &[u8])> {
        let &i = self
            .index
            .get(name)
            .ok_or_else(|| Error::Invalid(format!("missing tensor {name}")))?;
        let s = &self.shards[i];
        let info = s
            .meta
            .info(name)
            .ok_or_else(|| Error::Invalid(format!("missing tensor {name}")))?;
        let (a, b) = info.data_offsets;
        let start = 8 + s.header_len;
        let data = s.map.get(start + a..start + b).ok_or_else(|| {
            Error::Invalid(format!(
                "{}: tensor {name} lies past the end of the file",
                s.path.display()
            ))
        })?;
        Ok((info, data))
    }
}

fn dtype_size(d: Dtype) -> Option<usize> {
    match d {
        Dtype::F32 => Some(4),
        Dtype::F16 | Dtype::BF16 => Some(2),
        _ => None,
    }
}

/// The Hugging Face name of a llama2.c tensor.
pub fn hf_name(t: Tensor) -> String {
    let l = t.layer;
    match t.kind {
        Kind::Embed => "model.embed_tokens.weight".into(),
        Kind::FinalNorm => "model.norm.weight".into(),
        Kind::Classifier => "lm_head.weight".into(),
        Kind::AttnNorm => format!("model.layers.{l}.input_layernorm.weight"),
        Kind::FfnNorm => format!("model.layers.{l}.post_attention_layernorm.weight"),
        Kind::Wq => format!("model.layers.{l}.self_attn.q_proj.weight"),
        Kind::Wk => format!("model.layers.{l}.self_attn.k_proj.weight"),
        Kind::Wv => format!("model.layers.{l}.self_attn.v_proj.weight"),
        Kind::Wo => format!("model.layers.{l}.self_attn.o_proj.weight"),
        Kind::W1 => format!("model.layers.{l}.mlp.gate_proj.weight"),
        Kind::W2 => format!("model.layers.{l}.mlp.down_proj.weight"),
        Kind::W3 => format!("model.layers.{l}.mlp.up_proj.weight"),
    }
}

/// Little-endian F32/F16/BF16 bytes to f32 (exact: every value widens losslessly).
pub(crate) fn to_f32(dtype: Dtype, b: &[u8]) -> Result<Vec<f32>> {
    Ok(match dtype {
        Dtype::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => b
            .chunks_exact(2)
            .map(|c| llama::source::f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
        d => return Err(Error::Unsupported(format!("dtype {d:?}"))),
    })
}

/// Undo HF's rotary permutation of a `[n_heads * head_size, cols]` matrix: within each
/// head, HF row `b * head_size/2 + a` becomes row `2a + b` (interleaved pairs).
pub fn unpermute_rotary(w: &[f32], n_heads: usize, head_size: usize, cols: usize) -> Vec<f32> {
    let half = head_size / 2;
    let mut out = vec![0.0f32; w.len()];
    for h in 0..n_heads {
        for a in 0..half {
            for b in 0..2 {
                let src = (h * head_size + b * half + a) * cols;
                let dst = (h * head_size + 2 * a + b) * cols;
                out[dst..dst + cols].copy_from_slice(&w[src..src + cols]);
            }
        }
    }
    out
}

impl WeightSource for HfModel {
    fn config(&self) -> &Config {
        &self.hf.config
    }
    fn shared_classifier(&self) -> bool {
        self.shared
    }
    fn load(&self, t: Tensor) -> Result<Vec<f32>> {
        let name = hf_name(t);
        let (info, data) = self.raw(&name)?;
        let v = to_f32(info.dtype, data).map_err(|e| e.context(&name))?;
        let c = &self.hf.config;
        Ok(match t.kind {
            Kind::Wq => unpermute_rotary(&v, c.n_heads, c.head_size(), c.dim),
            Kind::Wk => unpermute_rotary(&v, c.n_kv_heads, c.head_size(), c.dim),
            _ => v,
        })
    }
}
