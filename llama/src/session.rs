//! The incremental API the Lua side needs: one sequence over a loaded model — set a
//! prompt, take the next token, add text, run n tokens — with its state (KV cache,
//! position, RNG) serializable for a later save/restore.
//!
//! Generation is lazy like llama2.c's loop: `next` samples from the logits of the last
//! fed token and feeds the sampled token only when the following token is asked
//! for, so `n` tokens cost `n - 1` forward passes after the prompt.

use alloc::format;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::kernels::Backend;
use crate::model::{Model, State};
use crate::sampler::{Rng, Sampler, SamplerConfig};
use crate::trace::{digest_f32, merkle_root, Entry, Hash, StepRecord};

pub struct Session {
    model: Model,
    state: State,
    backend: Backend,
    sampler: Sampler,
    /// Tokens fed through the network, in order (position i holds tokens[i]).
    tokens: Vec<u32>,
    /// Sampled but not yet fed.
    pending: Option<u32>,
    /// Generation reached an end token or the end of the context.
    finished: bool,
    /// Trace commitments, when enabled.
    trace: Option<Tracer>,
    /// Stop at an end token (`false`: sample on, as a challenger rebuilding a claim
    /// that went past one must).
    stop_at_end: bool,
}

#[derive(Default)]
struct Tracer {
    steps: Vec<StepRecord>,
    /// Per-layer digests of the last forward pass.
    layers: Vec<Hash>,
    /// Version 2 entries (see [`crate::trace`]) since the prompt.
    entries: Vec<Entry>,
    /// With [`Session::enable_step_vectors`]: each entry's vectors (`None` for heads),
    /// what a party to a dispute opens to the arbiter.
    vectors: Option<Vec<Option<LayerVectors>>>,
}

/// The values a layer entry commits to.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerVectors {
    pub out: Vec<f32>,
    pub key: Vec<f32>,
    pub value: Vec<f32>,
}

impl Session {
    pub fn new(model: Model) -> Result<Session> {
        let state = State::new(&model.config)?;
        Ok(Session {
            model,
            state,
            backend: Backend::best(),
            sampler: Sampler::new(SamplerConfig::default()),
            tokens: Vec::new(),
            pending: None,
            finished: false,
            trace: None,
            stop_at_end: true,
        })
    }

    /// Record a [`StepRecord`] for every sampled token from now on (see [`crate::trace`]).
    pub fn enable_trace(&mut self) {
        self.trace.get_or_insert_with(Tracer::default);
    }

    /// Also keep every layer entry's vectors (natively, for `aos-llama trace`: they
    /// are what a dispute opens; an AO process keeps only the digests).
    pub fn enable_step_vectors(&mut self) {
        self.enable_trace();
        if let Some(t) = self.trace.as_mut() {
            t.vectors.get_or_insert_with(Vec::new);
        }
    }

    /// Whether an end token ends generation (default `true`).
    pub fn set_stop_at_end(&mut self, stop: bool) {
        self.stop_at_end = stop;
    }

    /// Version 2 entries since the last prompt (empty if tracing is off).
    pub fn step_entries(&self) -> &[Entry] {
        self.trace.as_ref().map_or(&[], |t| &t.entries)
    }

    /// The vectors of [`Session::step_entries`], if kept.
    pub fn step_vectors(&self) -> Option<&[Option<LayerVectors>]> {
        self.trace.as_ref().and_then(|t| t.vectors.as_deref())
    }

    /// Merkle root over the version 2 entries.
    pub fn step_root(&self) -> Hash {
        let leaves: Vec<Hash> = self.step_entries().iter().map(Entry::leaf).collect();
        merkle_root(&leaves)
    }

    /// The steps recorded since the last prompt (empty if tracing is off).
    pub fn trace_steps(&self) -> &[StepRecord] {
        self.trace.as_ref().map_or(&[], |t| &t.steps)
    }

    /// Merkle root over the recorded steps' leaves.
    pub fn trace_root(&self) -> Hash {
        let leaves: Vec<Hash> = self.trace_steps().iter().map(|s| s.leaf()).collect();
        merkle_root(&leaves)
    }

    pub fn model(&self) -> &Model {
        &self.model
    }
    pub fn into_model(self) -> Model {
        self.model
    }
    pub fn backend(&self) -> Backend {
        self.backend
    }
    /// Choose the kernels (all give identical bits; this is for tests and benchmarks).
    pub fn set_backend(&mut self, b: Backend) {
        self.backend = b;
    }
    /// Threads per matrix-vector product (natively; identical bits for every count).
    pub fn set_threads(&mut self, n: usize) {
        self.state.set_threads(n);
    }
    pub fn sampler_config(&self) -> SamplerConfig {
        self.sampler.config
    }
    /// Set sampling; resets the RNG to the seed.
    pub fn set_sampler(&mut self, cfg: SamplerConfig) -> Result<()> {
        cfg.validate()?;
        self.sampler = Sampler::new(cfg);
        Ok(())
    }

    /// Tokens in the context so far (fed, plus a sampled one waiting to be fed).
    pub fn position(&self) -> usize {
        self.tokens.len() + self.pending.is_some() as usize
    }
    pub fn context_length(&self) -> usize {
        self.model.config.seq_len
    }
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }
    /// Logits after the last fed token.
    pub fn logits(&self) -> &[f32] {
        self.state.logits()
    }

    /// Forget the context (keeps the model and sampler settings; re-seeds the RNG).
    pub fn reset(&mut self) {
        self.tokens.clear();
        self.pending = None;
        self.finished = false;
        self.sampler = Sampler::new(self.sampler.config);
        if let Some(t) = self.trace.as_mut() {
            t.steps.clear();
            t.entries.clear();
            if let Some(v) = t.vectors.as_mut() {
                v.clear();
            }
        }
    }

    /// Run `toks` through the network at the next positions, batched (the bits are
    /// those of one token at a time; see [`Model::forward_batch`]); the logits are the
    /// last token's. With a trace, every layer of every token gets its entry, in
    /// position order.
    fn feed(&mut self, toks: &[u32]) {
        let pos = self.tokens.len();
        debug_assert!(pos + toks.len() <= self.model.config.seq_len);
        if toks.is_empty() {
            return;
        }
        match self.trace.as_mut() {
            Some(tr) => {
                let layers = self.model.config.n_layers;
                let keep = tr.vectors.is_some();
                // (token, layer) → digest and (if kept) vector of the layer's output.
                let mut digests = alloc::vec![Hash::default(); toks.len() * layers];
                let mut outs: Vec<Vec<f32>> = Vec::new();
                if keep {
                    outs.resize(toks.len() * layers, Vec::new());
                }
                let mut observe = |l: usize, t: usize, x: &[f32]| {
                    digests[t * layers + l] = digest_f32(x);
                    if keep {
                        outs[t * layers + l] = x.to_vec();
                    }
                };
                self.model.forward_batch(&mut self.state, self.backend, toks, pos, Some(&mut observe));
                let mut outs = outs.into_iter();
                for t in 0..toks.len() {
                    let p = pos + t;
                    for l in 0..layers {
                        let (k, v) = self.state.kv_rows(l, p);
                        let out = digests[t * layers + l];
                        tr.entries.push(Entry::Layer { position: p as u32, layer: l as u32, out, key: digest_f32(k), value: digest_f32(v) });
                        if let Some(vs) = tr.vectors.as_mut() {
                            let out = outs.next().unwrap_or_default();
                            vs.push(Some(LayerVectors { out, key: k.to_vec(), value: v.to_vec() }));
                        }
                    }
                }
                tr.layers.clear();
                tr.layers.extend_from_slice(&digests[(toks.len() - 1) * layers..]);
            }
            None => self.model.forward_batch(&mut self.state, self.backend, toks, pos, None),
        }
        self.tokens.extend_from_slice(toks);
    }

    fn check_room(&self, extra: usize) -> Result<()> {
        let needed = self.position() + extra;
        if needed > self.context_length() {
            return Err(Error::ContextFull { needed, context_length: self.context_length() });
        }
        Ok(())
    }

    /// Reset, then feed BOS and the prompt (with SentencePiece's leading space). A
    /// GGUF vocabulary tokenizes it as llama.cpp does: BOS/EOS as the file says, and
    /// special tokens written in the prompt (`<|im_start|>`) become their ids.
    /// Fails without changing anything if the prompt does not fit.
    pub fn set_prompt(&mut self, text: &[u8]) -> Result<()> {
        let toks = prompt_tokens(&self.model, text);
        if toks.len() > self.context_length() {
            return Err(Error::ContextFull { needed: toks.len(), context_length: self.context_length() });
        }
        self.reset();
        self.add_tokens(&toks)
    }

    /// Append text to the context (no BOS, no leading space added; for a GGUF
    /// vocabulary, llama.cpp's tokenization with special tokens parsed).
    pub fn add(&mut self, text: &[u8]) -> Result<()> {
        let t = &self.model.tokenizer;
        let toks = if t.is_gguf() { t.tokenize(text, false, true) } else { t.encode(text, false, false) };
        self.add_tokens(&toks)
    }

    /// Append token ids to the context. Fails without changing anything if they do
    /// not fit or are outside the vocabulary.
    pub fn add_tokens(&mut self, toks: &[u32]) -> Result<()> {
        if let Some(&bad) = toks.iter().find(|&&t| t as usize >= self.model.config.vocab_size) {
            return Err(Error::Usage(format!("token id {bad} is outside the vocabulary ({})", self.model.config.vocab_size)));
        }
        self.check_room(toks.len())?;
        // The pending token (sampled, not yet fed) goes first, in the same batch.
        let batch: Vec<u32> = self.pending.take().into_iter().chain(toks.iter().copied()).collect();
        self.feed(&batch);
        self.finished = false;
        Ok(())
    }

    /// Sample the next token; `None` at an end token or when the context is full.
    pub fn next_token(&mut self) -> Result<Option<u32>> {
        if self.finished {
            return Ok(None);
        }
        if let Some(p) = self.pending {
            if self.tokens.len() >= self.context_length() {
                self.finished = true;
                return Ok(None);
            }
            self.pending = None;
            self.feed(&[p]);
        }
        if self.tokens.is_empty() {
            return Err(Error::Usage("no prompt: set a prompt before generating".into()));
        }
        let token = self.sampler.sample(self.state.logits());
        if let Some(tr) = self.trace.as_mut() {
            tr.steps.push(StepRecord {
                position: self.tokens.len() as u32,
                token,
                logits_digest: digest_f32(self.state.logits()),
                layer_digests: tr.layers.clone(),
            });
            let position = self.tokens.len() as u32 - 1;
            tr.entries.push(Entry::Head { position, token, logits: digest_f32(self.state.logits()) });
            if let Some(vs) = tr.vectors.as_mut() {
                vs.push(None);
            }
        }
        if self.stop_at_end && self.model.tokenizer.ends_generation(token) {
            self.finished = true;
            return Ok(None);
        }
        self.pending = Some(token);
        Ok(Some(token))
    }

    /// The text of the last token in the context after the one before it.
    fn piece_of_pending(&self, token: u32) -> Vec<u8> {
        let prev = self.tokens.last().copied().unwrap_or(self.model.tokenizer.bos);
        self.model.tokenizer.decode(prev, token).to_vec()
    }

    /// Generate one token and return its bytes (a piece may be part of a UTF-8
    /// character), or `None` at the end.
    pub fn next(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(match self.next_token()? {
            Some(t) => Some(self.piece_of_pending(t)),
            None => None,
        })
    }

    /// Generate up to `n` tokens and return their bytes.
    pub fn run(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for _ in 0..n {
            match self.next()? {
                Some(p) => out.extend_from_slice(&p),
                None => break,
            }
        }
        Ok(out)
    }

    // ------------------------------------------------------------ state snapshots

    /// Serialize the sequence state: position, tokens, pending token, RNG and the KV
    /// cache rows in use. Restoring it on the same model continues bit-identically.
    pub fn save_state(&self) -> Vec<u8> {
        let c = &self.model.config;
        let kv_dim = c.kv_dim();
        let mut out = Vec::new();
        out.extend_from_slice(STATE_MAGIC);
        for v in [c.dim, c.n_layers, c.kv_dim(), c.seq_len, c.vocab_size, self.tokens.len()] {
            out.extend_from_slice(&(v as u64).to_le_bytes());
        }
        out.extend_from_slice(&self.pending.map_or(u64::MAX, |p| p as u64).to_le_bytes());
        out.push(self.finished as u8);
        let sc = self.sampler.config;
        out.extend_from_slice(&sc.temperature.to_bits().to_le_bytes());
        out.extend_from_slice(&sc.topp.to_bits().to_le_bytes());
        out.extend_from_slice(&sc.seed.to_le_bytes());
        out.extend_from_slice(&self.sampler.rng.0.to_le_bytes());
        for t in &self.tokens {
            out.extend_from_slice(&t.to_le_bytes());
        }
        for v in self.state.logits() {
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        for cache in [&self.state.key_cache, &self.state.value_cache] {
            for l in 0..c.n_layers {
                let start = l * c.seq_len * kv_dim;
                for v in &cache[start..start + self.tokens.len() * kv_dim] {
                    out.extend_from_slice(&v.to_bits().to_le_bytes());
                }
            }
        }
        out
    }

    /// Restore a state saved by [`save_state`] on the same model.
    pub fn restore_state(&mut self, bytes: &[u8]) -> Result<()> {
        let bad = |m: &str| Error::Usage(format!("cannot restore state: {m}"));
        let mut r = bytes;
        let mut take = |n: usize| -> Result<&[u8]> {
            if r.len() < n {
                return Err(bad("truncated"));
            }
            let (a, b) = r.split_at(n);
            r = b;
            Ok(a)
        };
        if take(8)? != STATE_MAGIC {
            return Err(bad("not a session state"));
        }
        let mut u64s = [0u64; 6];
        for v in &mut u64s {
            *v = u64::from_le_bytes(take(8)?.try_into().unwrap());
        }
        let c = self.model.config.clone();
        if u64s[..5] != [c.dim as u64, c.n_layers as u64, c.kv_dim() as u64, c.seq_len as u64, c.vocab_size as u64] {
            return Err(bad("it was saved with a different model"));
        }
        let n = u64s[5] as usize;
        let pending = u64::from_le_bytes(take(8)?.try_into().unwrap());
        if n > c.seq_len || (pending != u64::MAX && (pending >= c.vocab_size as u64 || n >= c.seq_len)) {
            return Err(bad("position out of range"));
        }
        let finished = take(1)?[0] != 0;
        let f = |b: &[u8]| f32::from_bits(u32::from_le_bytes(b.try_into().unwrap()));
        let temperature = f(take(4)?);
        let topp = f(take(4)?);
        let seed = u64::from_le_bytes(take(8)?.try_into().unwrap());
        let rng = u64::from_le_bytes(take(8)?.try_into().unwrap());
        let kv_dim = c.kv_dim();
        let expected = n * 4 + c.vocab_size * 4 + 2 * c.n_layers * n * kv_dim * 4;
        if r.len() != expected {
            return Err(bad("wrong size"));
        }
        let cfg = SamplerConfig { temperature, topp, seed };
        cfg.validate()?;
        // Everything is validated: now mutate.
        let words = |b: &[u8]| b.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>();
        let (tok_b, rest) = r.split_at(n * 4);
        let (log_b, kv_b) = rest.split_at(c.vocab_size * 4);
        self.tokens = words(tok_b);
        if self.tokens.iter().any(|&t| t as usize >= c.vocab_size) {
            self.tokens.clear();
            return Err(bad("token out of range"));
        }
        for (d, w) in self.state.logits.iter_mut().zip(words(log_b)) {
            *d = f32::from_bits(w);
        }
        let per_layer = n * kv_dim * 4;
        for (i, cache) in [&mut self.state.key_cache, &mut self.state.value_cache].into_iter().enumerate() {
            for l in 0..c.n_layers {
                let src = &kv_b[(i * c.n_layers + l) * per_layer..(i * c.n_layers + l + 1) * per_layer];
                let start = l * c.seq_len * kv_dim;
                for (d, w) in cache[start..start + n * kv_dim].iter_mut().zip(src.chunks_exact(4)) {
                    *d = f32::from_bits(u32::from_le_bytes(w.try_into().unwrap()));
                }
            }
        }
        self.pending = (pending != u64::MAX).then_some(pending as u32);
        self.finished = finished;
        self.sampler = Sampler::new(cfg);
        self.sampler.rng = Rng(rng);
        Ok(())
    }
}

/// The tokens [`Session::set_prompt`] feeds for `text`.
pub fn prompt_tokens(model: &Model, text: &[u8]) -> Vec<u32> {
    let t = &model.tokenizer;
    if t.is_gguf() {
        t.tokenize(text, true, true)
    } else {
        t.encode(text, true, true)
    }
}

const STATE_MAGIC: &[u8; 8] = b"AOSLKV01";

#[cfg(feature = "std")]
impl Session {
    /// With [`Session::set_threads`]: split only the products of at least `bytes` weight
    /// bytes × vectors between the threads (default 1 MiB, below which one thread is
    /// faster; 0 splits every one, as the tests of thread counts do on small models).
    pub fn set_thread_split_bytes(&mut self, bytes: usize) {
        self.state.set_thread_split_bytes(bytes);
    }
}
