//! AO messages, environments and results as JSON (see ../shared/notes/ao-contract.md).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One `{name, value}` tag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub name: String,
    pub value: String,
}

impl Tag {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Tag {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A message as the compute unit hands it to `handle` (JSON field names as on AO).
///
/// Fields left `None`/empty are filled by [`crate::Process::send`]: `Id` (a txid-shaped id),
/// `From`/`Owner` (the process owner), `Target` (the process), `Timestamp`, `Block-Height`,
/// `Nonce`, `Epoch`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    #[serde(rename = "Id", default)]
    pub id: String,
    #[serde(rename = "Signature", default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(rename = "Data", default)]
    pub data: String,
    #[serde(rename = "Owner", default)]
    pub owner: String,
    #[serde(rename = "Target", default)]
    pub target: String,
    #[serde(rename = "Anchor", default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    #[serde(rename = "From", default)]
    pub from: String,
    #[serde(
        rename = "Forwarded-By",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub forwarded_by: Option<String>,
    #[serde(rename = "Tags", default)]
    pub tags: Vec<Tag>,
    #[serde(rename = "Epoch", default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    #[serde(rename = "Nonce", default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<u64>,
    #[serde(rename = "Timestamp", default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    #[serde(
        rename = "Block-Height",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub block_height: Option<u64>,
    #[serde(
        rename = "Hash-Chain",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub hash_chain: Option<String>,
    #[serde(rename = "Cron", default)]
    pub cron: bool,
    /// Any further top-level fields, passed through as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Message {
    /// An empty message; `send` fills in the rest.
    pub fn new() -> Self {
        Self::default()
    }
    /// A message with an `Action` tag.
    pub fn action(action: impl Into<String>) -> Self {
        Self::default().tag("Action", action)
    }
    pub fn tag(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push(Tag::new(name, value));
        self
    }
    pub fn data(mut self, data: impl Into<String>) -> Self {
        self.data = data.into();
        self
    }
    pub fn from(mut self, from: impl Into<String>) -> Self {
        self.from = from.into();
        self
    }
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }
    pub fn timestamp(mut self, ms: u64) -> Self {
        self.timestamp = Some(ms);
        self
    }
    /// The value of the last tag with this name.
    pub fn tag_value(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .rev()
            .find(|t| t.name == name)
            .map(|t| t.value.as_str())
    }
}

/// `env.Process` / `env.Module`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvEntity {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Owner")]
    pub owner: String,
    #[serde(rename = "Tags")]
    pub tags: Vec<Tag>,
}

/// The second argument of `handle`: `{Process: {Id, Owner, Tags}, Module: {Id, Owner, Tags}}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Env {
    #[serde(rename = "Process")]
    pub process: EnvEntity,
    #[serde(rename = "Module")]
    pub module: EnvEntity,
}

/// What one message produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// The module's `ok`. When false the process memory was restored to its state before
    /// the message (the real loader throws `response` and the CU keeps the previous memory).
    pub ok: bool,
    /// `response.Output` as the module returned it.
    pub output: Value,
    /// `Output.data` as text: a JSON string as is, other JSON values serialized, `""` if absent
    /// (and `Output` itself when it is a plain string).
    pub output_data: String,
    /// `response.Error` as text, if present and not null/empty.
    pub error: Option<String>,
    pub messages: Vec<Value>,
    pub spawns: Vec<Value>,
    pub assignments: Vec<Value>,
    pub patches: Vec<Value>,
    /// Text the module wrote to fd 1 / fd 2 (and `emscripten_err`) during this message.
    pub stdout: String,
    pub stderr: String,
    /// The whole parsed result `{"ok": ..., "response": {...}}`.
    pub raw: Value,
    /// Linear memory size after the message, in bytes.
    pub memory_size: u64,
    /// Wall time of the `handle` call.
    pub elapsed: std::time::Duration,
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn value_list(v: Option<&Value>) -> Vec<Value> {
    match v {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(Value::Object(o)) if o.is_empty() => Vec::new(),
        Some(other) => vec![other.clone()],
    }
}

impl Outcome {
    /// Builds an outcome from the parsed result JSON.
    pub fn from_result(raw: Value) -> Self {
        let ok = raw.get("ok").and_then(Value::as_bool).unwrap_or(false);
        let response = raw.get("response").cloned().unwrap_or(Value::Null);
        let output = response.get("Output").cloned().unwrap_or(Value::Null);
        let output_data = match &output {
            Value::Object(o) => o.get("data").map(value_text).unwrap_or_default(),
            other => value_text(other),
        };
        let error = match response.get("Error") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(v) => Some(value_text(v)),
        };
        Outcome {
            ok,
            output,
            output_data,
            error,
            messages: value_list(response.get("Messages")),
            spawns: value_list(response.get("Spawns")),
            assignments: value_list(response.get("Assignments")),
            patches: value_list(response.get("Patches")),
            raw,
            ..Default::default()
        }
    }

    /// `Tags` of an outgoing message as pairs, for assertions.
    pub fn message_tags(msg: &Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(Value::Array(tags)) = msg.get("Tags") {
            for t in tags {
                if let (Some(n), Some(v)) = (t.get("name"), t.get("value")) {
                    out.push((value_text(n), value_text(v)));
                }
            }
        }
        out
    }
}

/// A deterministic, txid-shaped (43 base64url characters) id from a seed string.
pub fn txid_from(seed: &str) -> String {
    const ALPHA: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // splitmix64 over an FNV-1a hash of the seed.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in seed.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    let mut out = String::with_capacity(43);
    let mut state = h;
    let mut word = 0u64;
    for i in 0..43 {
        if i % 10 == 0 {
            state = state.wrapping_add(0x9e3779b97f4a7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
            word = z ^ (z >> 31);
        }
        out.push(ALPHA[(word & 63) as usize] as char);
        word >>= 6;
    }
    out
}
