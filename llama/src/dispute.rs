//! Settling a dispute over a version 2 trace by recomputing one step (opML's design).
//!
//! A claimant and a challenger each hold a version 2 trace (see [`crate::trace`]) of
//! the same request, with different roots. Bisecting their Merkle trees isolates the
//! first entry where they differ: every entry before it is agreed. That entry is one
//! layer at one position (or one sampling step), and each of its inputs is committed
//! by an agreed entry, so the arbiter asks for those entries opened with Merkle
//! proofs ([`needs`], [`open`]), recomputes the one step with the engine's own layer
//! function ([`check`]) and sees whose leaf it matches.
//!
//! # Openings (`AOSLOP02`)
//! Little-endian: magic `"AOSLOP02"`, u32 count, then per entry: u64 leaf index, a kind
//! byte — `L`: u8 1 + u32 n + n f32 (the residual stream) or u8 0 + its 32-byte digest,
//! then u32 n + n f32 key row + n f32 value row; `H`: u32 token + 32-byte logits digest
//! — and u32 proof length + that many 32-byte hashes (the audit path of
//! [`crate::trace::inclusion_proof`]).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::kernels::Backend;
use crate::model::{Model, State};
use crate::sampler::{Sampler, SamplerConfig};
use crate::session::{prompt_tokens, LayerVectors};
use crate::trace::{digest_f32, inclusion_proof, root_from_proof, Entry, Hash};

/// Where each entry of a version 2 trace sits: `P` prompt tokens, `L` layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub prompt_tokens: usize,
    pub layers: usize,
    pub leaves: usize,
}

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Layer { position: usize, layer: usize },
    /// The `sample`-th sampled token (from 0), from the logits at `position`.
    Head { position: usize, sample: usize },
}

impl core::fmt::Display for Slot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Slot::Layer { position, layer } => write!(f, "position {position}, layer {layer}"),
            Slot::Head { position, sample } => write!(f, "position {position}, sampled token {sample}"),
        }
    }
}

impl Layout {
    /// The layout of a trace of `leaves` entries, or why no generation has that many.
    pub fn new(prompt_tokens: usize, layers: usize, leaves: usize) -> Result<Layout> {
        let bad = |why: &str| Error::Usage(format!("a trace of {leaves} entries cannot cover a prompt of {prompt_tokens} tokens through {layers} layers: {why}"));
        if prompt_tokens == 0 || layers == 0 {
            return Err(bad("empty prompt or model"));
        }
        let prefix = (prompt_tokens - 1) * layers;
        if leaves <= prefix || (leaves - prefix) % (layers + 1) != 0 {
            return Err(bad("it is not (P-1)·L + T·(L+1) for any T ≥ 1"));
        }
        Ok(Layout { prompt_tokens, layers, leaves })
    }

    /// Tokens sampled (`T`).
    pub fn samples(&self) -> usize {
        (self.leaves - (self.prompt_tokens - 1) * self.layers) / (self.layers + 1)
    }

    pub fn slot(&self, index: usize) -> Option<Slot> {
        if index >= self.leaves {
            return None;
        }
        let prefix = (self.prompt_tokens - 1) * self.layers;
        Some(if index < prefix {
            Slot::Layer { position: index / self.layers, layer: index % self.layers }
        } else {
            let (sample, within) = ((index - prefix) / (self.layers + 1), (index - prefix) % (self.layers + 1));
            let position = self.prompt_tokens - 1 + sample;
            if within == self.layers {
                Slot::Head { position, sample }
            } else {
                Slot::Layer { position, layer: within }
            }
        })
    }

    pub fn index(&self, slot: Slot) -> usize {
        let prefix = (self.prompt_tokens - 1) * self.layers;
        let (position, within) = match slot {
            Slot::Layer { position, layer } => (position, layer),
            Slot::Head { position, .. } => (position, self.layers),
        };
        if position < self.prompt_tokens - 1 {
            position * self.layers + within
        } else {
            prefix + (position - (self.prompt_tokens - 1)) * (self.layers + 1) + within
        }
    }
}

/// The agreed entries the arbiter needs opened to recompute one entry: `entries`
/// with their key and value rows, and `vector` (the step's input residual stream)
/// with its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Needs {
    pub entries: Vec<usize>,
    pub vector: Option<usize>,
}

/// What recomputing entry `index` reads.
pub fn needs(model: &Model, layout: &Layout, index: usize) -> Result<Needs> {
    let slot = layout.slot(index).ok_or_else(|| Error::Usage(format!("entry {index} is past the trace's {} entries", layout.leaves)))?;
    Ok(match slot {
        Slot::Layer { position, layer } => {
            let first = model.first_attended(layer, position);
            let mut entries: Vec<usize> = (first..position).map(|q| layout.index(Slot::Layer { position: q, layer })).collect();
            let mut vector = None;
            if layer > 0 {
                vector = Some(index - 1);
            } else if position >= layout.prompt_tokens {
                entries.push(index - 1); // the head entry that sampled this position's token
            }
            Needs { entries, vector }
        }
        Slot::Head { .. } => Needs { entries: Vec::new(), vector: Some(index - 1) },
    })
}

/// An entry opened to the arbiter.
#[derive(Clone, Debug, PartialEq)]
pub struct Opened {
    pub index: usize,
    pub content: Content,
    pub proof: Vec<Hash>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    /// A layer entry: its output (values, or only the digest) and its cached rows.
    Layer { out: Out, key: Vec<f32>, value: Vec<f32> },
    Head { token: u32, logits: Hash },
}

/// A layer entry's output: opened with its values, or as its digest only.
#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    Values(Vec<f32>),
    Digest(Hash),
}

impl Opened {
    /// The leaf this opening claims to be, at its slot.
    fn entry(&self, slot: Slot) -> Option<Entry> {
        Some(match (&self.content, slot) {
            (Content::Layer { out, key, value }, Slot::Layer { position, layer }) => Entry::Layer {
                position: position as u32,
                layer: layer as u32,
                out: match out {
                    Out::Values(v) => digest_f32(v),
                    Out::Digest(d) => *d,
                },
                key: digest_f32(key),
                value: digest_f32(value),
            },
            (Content::Head { token, logits }, Slot::Head { position, .. }) => {
                Entry::Head { position: position as u32, token: *token, logits: *logits }
            }
            _ => return None,
        })
    }
}

const OPENINGS_MAGIC: &[u8; 8] = b"AOSLOP02";

/// A party's side: open the entries `needs` asks for, from its whole trace.
pub fn open(entries: &[Entry], vectors: &[Option<LayerVectors>], needs: &Needs) -> Result<Vec<u8>> {
    let leaves: Vec<Hash> = entries.iter().map(Entry::leaf).collect();
    let mut wanted: Vec<(usize, bool)> = needs.entries.iter().map(|&i| (i, false)).collect();
    if let Some(v) = needs.vector {
        wanted.push((v, true));
    }
    let mut out = Vec::new();
    out.extend_from_slice(OPENINGS_MAGIC);
    out.extend_from_slice(&(wanted.len() as u32).to_le_bytes());
    let f32s = |out: &mut Vec<u8>, v: &[f32]| {
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
    };
    for (i, with_vector) in wanted {
        let missing = || Error::Usage(format!("entry {i} is not in this trace (of {} entries)", entries.len()));
        out.extend_from_slice(&(i as u64).to_le_bytes());
        match entries.get(i).ok_or_else(missing)? {
            Entry::Layer { out: digest, .. } => {
                let vs = vectors.get(i).and_then(Option::as_ref).ok_or_else(missing)?;
                out.push(b'L');
                if with_vector {
                    out.push(1);
                    out.extend_from_slice(&(vs.out.len() as u32).to_le_bytes());
                    f32s(&mut out, &vs.out);
                } else {
                    out.push(0);
                    out.extend_from_slice(digest);
                }
                out.extend_from_slice(&(vs.key.len() as u32).to_le_bytes());
                f32s(&mut out, &vs.key);
                f32s(&mut out, &vs.value);
            }
            Entry::Head { token, logits, .. } => {
                out.push(b'H');
                out.extend_from_slice(&token.to_le_bytes());
                out.extend_from_slice(logits);
            }
        }
        let proof = inclusion_proof(&leaves, i);
        out.extend_from_slice(&(proof.len() as u32).to_le_bytes());
        for h in proof {
            out.extend_from_slice(&h);
        }
    }
    Ok(out)
}

/// A cursor over untrusted bytes: every read is bounded by what is there.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::Usage("malformed openings: truncated".into()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn hash(&mut self) -> Result<Hash> {
        Ok(self.take(32)?.try_into().unwrap())
    }
    fn f32s(&mut self, n: usize) -> Result<Vec<f32>> {
        let b = self.take(n.saturating_mul(4))?;
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
    }
}

/// Parse openings (bounded by the bytes present: an absurd count or length fails).
pub fn parse_openings(bytes: &[u8]) -> Result<Vec<Opened>> {
    let bad = |m: &str| Error::Usage(format!("malformed openings: {m}"));
    let mut r = Reader(bytes);
    if r.take(8)? != OPENINGS_MAGIC {
        return Err(bad("not AOSLOP02"));
    }
    let count = r.u32()? as usize;
    let mut opened = Vec::new();
    for _ in 0..count {
        let index = u64::from_le_bytes(r.take(8)?.try_into().unwrap()) as usize;
        let content = match r.take(1)?[0] {
            b'L' => {
                let out = match r.take(1)?[0] {
                    1 => {
                        let n = r.u32()? as usize;
                        Out::Values(r.f32s(n)?)
                    }
                    0 => Out::Digest(r.hash()?),
                    _ => return Err(bad("vector flag")),
                };
                let n = r.u32()? as usize;
                let key = r.f32s(n)?;
                let value = r.f32s(n)?;
                Content::Layer { out, key, value }
            }
            b'H' => {
                let token = r.u32()?;
                Content::Head { token, logits: r.hash()? }
            }
            _ => return Err(bad("entry kind")),
        };
        let n = r.u32()? as usize;
        let proof = r.take(n.saturating_mul(32))?.chunks_exact(32).map(|c| c.try_into().unwrap()).collect();
        opened.push(Opened { index, content, proof });
    }
    if !r.0.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok(opened)
}

/// The arbiter's recomputation of one entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Recomputed {
    pub slot: Slot,
    /// The leaf an honest trace has at this index.
    pub leaf: Hash,
    /// For a head entry, the token sampled.
    pub token: Option<u32>,
}

/// The request a trace answers: the prompt and the sampling settings.
pub struct Request<'a> {
    pub prompt: &'a [u8],
    pub sampler: SamplerConfig,
}

/// The layout of a request's trace of `leaves` entries on `model`.
pub fn layout(model: &Model, prompt: &[u8], leaves: usize) -> Result<Layout> {
    layout_of(model, &prompt_tokens(model, prompt), leaves)
}

fn layout_of(model: &Model, tokens: &[u32], leaves: usize) -> Result<Layout> {
    let layout = Layout::new(tokens.len(), model.config.n_layers, leaves)?;
    if tokens.len() + layout.samples() - 1 > model.config.seq_len {
        return Err(Error::Usage(format!("a trace of {leaves} entries runs past the context ({} positions)", model.config.seq_len)));
    }
    Ok(layout)
}

/// Recompute entry `index` of the trace whose root is `root` from `openings` (the
/// agreed entries [`needs`] names, proven against `root`). An error means the
/// openings do not prove what is needed: the party that sent them loses.
pub fn check(model: &Model, request: &Request, leaves: usize, index: usize, root: &Hash, openings: &[u8]) -> Result<Recomputed> {
    request.sampler.validate()?;
    let tokens = prompt_tokens(model, request.prompt);
    let layout = layout_of(model, &tokens, leaves)?;
    let needs = needs(model, &layout, index)?;
    let slot = layout.slot(index).expect("needs checked the index");
    let c = &model.config;
    let mut opened: BTreeMap<usize, Opened> = BTreeMap::new();
    for o in parse_openings(openings)? {
        let s = layout.slot(o.index).ok_or_else(|| Error::Usage(format!("opened entry {} is past the trace", o.index)))?;
        let entry = o.entry(s).ok_or_else(|| Error::Usage(format!("opened entry {} is of the wrong kind for {s}", o.index)))?;
        if let Content::Layer { key, value, out } = &o.content {
            if key.len() != c.kv_dim() || value.len() != c.kv_dim() || matches!(out, Out::Values(v) if v.len() != c.dim) {
                return Err(Error::Usage(format!("opened entry {} has vectors of the wrong size for this model", o.index)));
            }
        }
        if root_from_proof(entry.leaf(), o.index, leaves, &o.proof).as_ref() != Some(root) {
            return Err(Error::Usage(format!("the proof of opened entry {} ({s}) does not lead to the root", o.index)));
        }
        opened.insert(o.index, o);
    }
    let get = |i: usize| opened.get(&i).ok_or_else(|| Error::Usage(format!("entry {i} was not opened")));
    for &i in &needs.entries {
        get(i)?;
    }
    let input_vector = match needs.vector {
        Some(i) => match &get(i)?.content {
            Content::Layer { out: Out::Values(v), .. } => Some(v.clone()),
            _ => return Err(Error::Usage(format!("entry {i} was opened without its residual stream"))),
        },
        None => None,
    };

    let backend = Backend::best();
    let mut state = State::one_layer(c)?;
    match slot {
        Slot::Layer { position, layer } => {
            match input_vector {
                Some(x) => state.residual_mut().copy_from_slice(&x),
                None => {
                    let token = if position < layout.prompt_tokens {
                        tokens[position]
                    } else {
                        match &get(index - 1)?.content {
                            Content::Head { token, .. } => *token,
                            Content::Layer { .. } => unreachable!("the layout puts a head before layer 0"),
                        }
                    };
                    if token as usize >= c.vocab_size {
                        return Err(Error::Usage(format!("token {token} is outside the vocabulary")));
                    }
                    model.embed(&mut state, token);
                }
            }
            for q in model.first_attended(layer, position)..position {
                if let Content::Layer { key, value, .. } = &get(layout.index(Slot::Layer { position: q, layer }))?.content {
                    state.set_kv_rows(layer, q, key, value);
                }
            }
            model.prepare_position(&mut state, position);
            model.forward_layer(&mut state, backend, layer, position);
            let (k, v) = state.kv_rows(layer, position);
            let entry = Entry::Layer {
                position: position as u32,
                layer: layer as u32,
                out: digest_f32(state.residual()),
                key: digest_f32(k),
                value: digest_f32(v),
            };
            Ok(Recomputed { slot, leaf: entry.leaf(), token: None })
        }
        Slot::Head { position, sample } => {
            state.residual_mut().copy_from_slice(&input_vector.expect("a head needs its input"));
            model.forward_head(&mut state, backend);
            // The sampler's RNG as it stands at this sample: one draw per earlier sample.
            let mut sampler = Sampler::new(request.sampler);
            if request.sampler.temperature != 0.0 {
                for _ in 0..sample {
                    sampler.rng.next_f32();
                }
            }
            let token = sampler.sample(state.logits());
            let entry = Entry::Head { position: position as u32, token, logits: digest_f32(state.logits()) };
            Ok(Recomputed { slot, leaf: entry.leaf(), token: Some(token) })
        }
    }
}

/// A length challenge: every entry of a claim may be computed right and the claim still
/// be wrong, because it went on past an end token or stopped before one. Generation
/// samples up to `max_tokens` tokens and stops after sampling an end token
/// ([`crate::tokenizer::Tokenizer::ends_generation`], recorded as the last head entry)
/// or when the context is full. So a claim of `T` samples is well formed when
/// `T ≤ max_tokens`, no head entry but the last holds an end token, and the last holds
/// one unless `T = max_tokens` or the context is full. Which head entry to open
/// decides it: the one the challenger names, or the last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LengthNeeds {
    /// Decided from the claim's tags alone: the reason it is malformed.
    Malformed(String),
    /// Open this head entry (against the claimant's root).
    Open(usize),
}

/// What a length challenge needs: `at` is the head entry the challenger says holds an
/// end token before the claim's last, or `None` to challenge the last (the claim
/// stopped early).
pub fn length_needs(model: &Model, prompt: &[u8], leaves: usize, max_tokens: usize, at: Option<usize>) -> Result<LengthNeeds> {
    let layout = layout(model, prompt, leaves)?;
    if layout.samples() > max_tokens {
        return Ok(LengthNeeds::Malformed(format!("the claim samples {} tokens where Max-Tokens is {max_tokens}", layout.samples())));
    }
    let index = at.unwrap_or(leaves - 1);
    match layout.slot(index) {
        Some(Slot::Head { .. }) => Ok(LengthNeeds::Open(index)),
        Some(s) => Err(Error::Usage(format!("entry {index} ({s}) is not a sampling step"))),
        None => Err(Error::Usage(format!("entry {index} is past the claim's {leaves} entries"))),
    }
}

/// The arbiter's reading of a length challenge from the opened head entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LengthVerdict {
    /// Whether the claim's length stands.
    pub holds: bool,
    pub reason: String,
    pub slot: Slot,
    pub token: u32,
}

/// Read entry `index` of the claim (root `root`) from the claimant's `openings` and
/// decide the length challenge. An error means the openings do not prove the entry.
pub fn check_length(model: &Model, prompt: &[u8], leaves: usize, max_tokens: usize, index: usize, root: &Hash, openings: &[u8]) -> Result<LengthVerdict> {
    let layout = layout(model, prompt, leaves)?;
    let slot = match layout.slot(index) {
        Some(s @ Slot::Head { .. }) => s,
        _ => return Err(Error::Usage(format!("entry {index} is not a sampling step of the claim"))),
    };
    let opened = parse_openings(openings)?;
    let o = opened.iter().find(|o| o.index == index).ok_or_else(|| Error::Usage(format!("entry {index} was not opened")))?;
    let entry = o.entry(slot).ok_or_else(|| Error::Usage(format!("opened entry {index} is not a sampling step")))?;
    if root_from_proof(entry.leaf(), index, leaves, &o.proof).as_ref() != Some(root) {
        return Err(Error::Usage(format!("the proof of opened entry {index} ({slot}) does not lead to the root")));
    }
    let Content::Head { token, .. } = o.content else { unreachable!("entry() matched a head") };
    let ends = model.tokenizer.ends_generation(token);
    let samples = layout.samples();
    let Slot::Head { position, sample } = slot else { unreachable!() };
    let (holds, reason) = if sample + 1 < samples {
        if ends {
            (false, format!("the claim samples end token {token} at position {position} (sample {sample}) and goes on for {} more", samples - sample - 1))
        } else {
            (true, format!("token {token} sampled at position {position} is not an end token"))
        }
    } else if ends {
        (true, format!("the claim ends with end token {token} at position {position}"))
    } else if samples >= max_tokens {
        (true, format!("the claim stops at Max-Tokens ({max_tokens})"))
    } else if position + 1 >= model.config.seq_len {
        (true, format!("the claim stops where the context ({} positions) is full", model.config.seq_len))
    } else {
        (false, format!("the claim stops after {samples} of Max-Tokens {max_tokens} with token {token}, not an end token, and room left in the context"))
    };
    Ok(LengthVerdict { holds, reason, slot, token })
}
