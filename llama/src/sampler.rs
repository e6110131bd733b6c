//! Token sampling: greedy, temperature, top-p — llama2.c's algorithms with its
//! xorshift RNG, so a seed gives the same tokens on every platform (the logits being
//! bit-identical, see `kernels`).

use alloc::format;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::model::softmax;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerConfig {
    /// 0 = greedy (argmax).
    pub temperature: f32,
    /// Nucleus sampling threshold in (0, 1); values outside it sample from the whole distribution.
    pub topp: f32,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig { temperature: 0.0, topp: 0.9, seed: 42 }
    }
}

impl SamplerConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(Error::Usage(format!("temperature must be a number >= 0, got {}", self.temperature)));
        }
        if !(self.topp.is_finite() && (0.0..=1.0).contains(&self.topp)) {
            return Err(Error::Usage(format!("top-p must be between 0 and 1, got {}", self.topp)));
        }
        Ok(())
    }
}

/// llama2.c's xorshift64* generator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // A zero state would stay zero forever; llama2.c replaces 0 by the time,
        // we replace it by a fixed odd constant to stay deterministic.
        Rng(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }
    pub fn next_u32(&mut self) -> u32 {
        let s = &mut self.0;
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }
    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / 16_777_216.0
    }
}

pub struct Sampler {
    pub config: SamplerConfig,
    pub rng: Rng,
    probs: Vec<f32>,
    candidates: Vec<(f32, u32)>,
}

impl Sampler {
    pub fn new(config: SamplerConfig) -> Sampler {
        Sampler { config, rng: Rng::new(config.seed), probs: Vec::new(), candidates: Vec::new() }
    }

    /// Choose the next token from `logits` (left untouched).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.config.temperature == 0.0 {
            return argmax(logits);
        }
        self.probs.clear();
        self.probs.extend(logits.iter().map(|&l| l / self.config.temperature));
        softmax(crate::Backend::best(), &mut self.probs);
        let coin = self.rng.next_f32();
        let topp = self.config.topp;
        if topp <= 0.0 || topp >= 1.0 {
            sample_mult(&self.probs, coin)
        } else {
            sample_topp(&self.probs, topp, coin, &mut self.candidates)
        }
    }
}

/// Index of the largest value (the first one on ties).
pub fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

fn sample_mult(probs: &[f32], coin: f32) -> u32 {
    let mut cdf = 0.0f32;
    for (i, &p) in probs.iter().enumerate() {
        cdf = cdf + p;
        if coin < cdf {
            return i as u32;
        }
    }
    probs.len() as u32 - 1
}

fn sample_topp(probs: &[f32], topp: f32, coin: f32, cand: &mut Vec<(f32, u32)>) -> u32 {
    if probs.len() < 2 {
        return 0;
    }
    // Tokens below this cannot be in the nucleus: skip them before sorting.
    let cutoff = (1.0 - topp) / (probs.len() - 1) as f32;
    cand.clear();
    cand.extend(probs.iter().enumerate().filter(|(_, &p)| p >= cutoff).map(|(i, &p)| (p, i as u32)));
    // Descending probability; equal probabilities by id, so the order never depends
    // on the sort algorithm (llama2.c's qsort leaves it unspecified).
    cand.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    if cand.is_empty() {
        return argmax(probs); // only with non-finite logits
    }
    let mut cumulative = 0.0f32;
    let mut last = cand.len() - 1;
    for (i, &(p, _)) in cand.iter().enumerate() {
        cumulative = cumulative + p;
        if cumulative > topp {
            last = i;
            break;
        }
    }
    let r = coin * cumulative;
    let mut cdf = 0.0f32;
    for &(p, id) in &cand[..=last] {
        cdf = cdf + p;
        if r < cdf {
            return id;
        }
    }
    cand[last].1
}
