//! The architectures the engine runs, each described by the shared blocks it uses:
//! one forward pass in [`crate::model`] reads these switches, so adding an
//! architecture is an entry here and its hyperparameter keys in [`crate::gguf`], not
//! a copy of the forward pass.
//!
//! What differs between the families, as llama.cpp's graphs for them do it:
//!
//! | | llama | qwen2 | phi3 | gemma3 |
//! |---|---|---|---|---|
//! | RoPE | pairs (i, i+1) | halves (i, i+d/2) | halves | halves |
//! | Q/K/V biases | if present | yes | – | – |
//! | fused weights | `attn_qkv` if present | – | `attn_qkv`, `ffn_up` = gate ‖ up | – |
//! | FFN | SwiGLU | SwiGLU | SwiGLU | GeGLU (tanh GELU) |
//! | extra norms | – | – | – | Q/K per head, after attention and FFN |
//! | embeddings | – | – | – | × √dim |
//! | attention | all positions | all | all | sliding window on 5 of 6 layers, local RoPE base |

use alloc::vec::Vec;

/// `general.architecture`, the families this engine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Llama 1/2/3, TinyLlama, SmolLM2, Mistral (and llama2.c checkpoints).
    Llama,
    Qwen2,
    Phi3,
    Gemma3,
}

impl Arch {
    pub const ALL: &'static [Arch] = &[Arch::Llama, Arch::Qwen2, Arch::Phi3, Arch::Gemma3];

    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Phi3 => "phi3",
            Arch::Gemma3 => "gemma3",
        }
    }

    pub fn from_name(name: &str) -> Option<Arch> {
        Arch::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// Which two values of a head RoPE rotates together (llama.cpp's rope type).
    pub fn rope_style(self) -> RopeStyle {
        match self {
            Arch::Llama => RopeStyle::Pairs,
            Arch::Qwen2 | Arch::Phi3 | Arch::Gemma3 => RopeStyle::Halves,
        }
    }

    pub fn activation(self) -> Activation {
        match self {
            Arch::Gemma3 => Activation::GeluTanh,
            _ => Activation::Silu,
        }
    }

    /// Gate and up projections stored as one `ffn_up` matrix (gate rows first).
    pub fn fused_gate_up(self) -> bool {
        self == Arch::Phi3
    }

    /// Per-head RMSNorm of queries and keys, and RMSNorm of the attention and FFN
    /// outputs before they join the residual stream (Gemma's "sandwich" norms).
    pub fn gemma_norms(self) -> bool {
        self == Arch::Gemma3
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Rotate (v[2i], v[2i+1]) by angle i (llama.cpp's `LLAMA_ROPE_TYPE_NORM`).
    Pairs,
    /// Rotate (v[i], v[i + d/2]) by angle i (`LLAMA_ROPE_TYPE_NEOX`).
    Halves,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `silu(gate) * up` (SwiGLU).
    Silu,
    /// `gelu(gate) * up` with the tanh GELU, evaluated as ggml's CPU backend does: the
    /// input rounded to f16 and the result to f16 (its `GGML_GELU_FP16` table).
    GeluTanh,
}

/// The architecture-dependent numbers of a model, next to [`crate::Config`]'s shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct Blocks {
    pub arch: Arch,
    /// Multiply the embedding row by this (Gemma: √dim).
    pub embed_scale: Option<f32>,
    /// Multiply queries by this before the scores, instead of dividing the scores by
    /// √head_size (Gemma and Phi-3 scale the queries, as llama.cpp's graphs do).
    pub query_scale: Option<f32>,
    /// Sliding-window attention: a layer marked in `local_layers` attends to the last
    /// `window` positions only, and uses `rope_theta_local` for its RoPE angles.
    pub window: Option<usize>,
    pub local_layers: Vec<bool>,
    pub rope_theta_local: f32,
    /// RoPE magnitude factor (`rope.scaling.attn_factor`: Phi-3's long-context mscale).
    pub rope_attn_factor: f32,
    /// The context the rope factors were made for: a context longer than this uses
    /// `rope_factors_long`, otherwise `rope_factors_short` (Phi-3's longrope).
    pub rope_original_context: usize,
    /// `tanh(logits / c) * c` on the final logits when set.
    pub final_softcap: Option<f32>,
}

impl Blocks {
    /// Plain Llama: no switches on.
    pub fn llama(n_layers: usize) -> Blocks {
        Blocks {
            arch: Arch::Llama,
            embed_scale: None,
            query_scale: None,
            window: None,
            local_layers: alloc::vec![false; n_layers],
            rope_theta_local: 10000.0,
            rope_attn_factor: 1.0,
            rope_original_context: 0,
            final_softcap: None,
        }
    }

    /// The switches that are on, in words (for `inspect`); empty for plain Llama.
    pub fn describe(&self) -> Vec<alloc::string::String> {
        use alloc::format;
        let mut out = Vec::new();
        if self.arch.rope_style() == RopeStyle::Halves {
            out.push("NeoX RoPE".into());
        }
        if self.arch.activation() == Activation::GeluTanh {
            out.push("GeGLU".into());
        }
        if self.arch.fused_gate_up() {
            out.push("fused gate|up".into());
        }
        if self.arch.gemma_norms() {
            out.push("Q/K and post norms".into());
        }
        if let Some(k) = self.embed_scale {
            out.push(format!("embeddings x{k}"));
        }
        if let Some(k) = self.query_scale {
            out.push(format!("queries x{k}"));
        }
        if let Some(w) = self.window {
            let n = self.local_layers.iter().filter(|&&l| l).count();
            out.push(format!(
                "sliding window {w} on {n} of {} layers (local rope theta {})",
                self.local_layers.len(),
                self.rope_theta_local
            ));
        }
        if self.rope_attn_factor != 1.0 {
            out.push(format!("rope magnitude x{}", self.rope_attn_factor));
        }
        if let Some(c) = self.final_softcap {
            out.push(format!("logit softcap {c}"));
        }
        out
    }

    pub fn is_local(&self, layer: usize) -> bool {
        self.window.is_some() && self.local_layers.get(layer).copied().unwrap_or(false)
    }
}
