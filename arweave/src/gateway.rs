//! A small blocking client for an Arweave gateway (arweave.net, an Arweave node, or arlocal).
//!
//! Only what publishing needs: anchor and price, posting transactions and chunks (with retries
//! and backoff, since public gateways shed load with 429/503), status, data, GraphQL, and
//! arlocal's test-only `/mint` and `/mine`.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use crate::merkle::ChunkProof;
use crate::{b64, Error, Result, Transaction};

/// How often, and how patiently, failed posts are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total tries per request (1 = no retry).
    pub attempts: u32,
    /// Wait before the first retry; doubled after each failure, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Where a transaction is, as `GET /tx/{id}/status` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStatus {
    NotFound,
    Pending,
    Confirmed {
        block_height: u64,
        confirmations: u64,
    },
}

/// A transaction found by a GraphQL query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundTx {
    pub id: String,
    pub tags: Vec<(String, String)>,
}

/// The body of `POST /chunk`.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkUpload {
    pub data_root: String,
    pub data_size: String,
    pub data_path: String,
    pub offset: String,
    pub chunk: String,
}

impl ChunkUpload {
    /// Builds the body for one chunk of a transaction's data.
    pub fn new(data_root: &[u8], data_size: u64, proof: &ChunkProof, chunk: &[u8]) -> Self {
        ChunkUpload {
            data_root: b64::encode(data_root),
            data_size: data_size.to_string(),
            data_path: b64::encode(&proof.data_path),
            offset: proof.offset.to_string(),
            chunk: b64::encode(chunk),
        }
    }
}

/// A gateway at a base URL such as `https://arweave.net` or `http://127.0.0.1:1984`.
#[derive(Debug)]
pub struct Gateway {
    base: String,
    agent: ureq::Agent,
    retry: RetryPolicy,
    tx_posts: AtomicUsize,
    chunk_posts: AtomicUsize,
}

impl Gateway {
    pub fn new(url: &str) -> Self {
        Self::with_retry(url, RetryPolicy::default())
    }

    pub fn with_retry(url: &str, retry: RetryPolicy) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(15))
            .timeout_read(Duration::from_secs(120))
            .timeout_write(Duration::from_secs(120))
            .user_agent(concat!("arweave-tx/", env!("CARGO_PKG_VERSION")))
            .build();
        Gateway {
            base: url.trim_end_matches('/').to_string(),
            agent,
            retry,
            tx_posts: AtomicUsize::new(0),
            chunk_posts: AtomicUsize::new(0),
        }
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// How many `POST /tx` and `POST /chunk` requests this client has sent successfully.
    pub fn posted(&self) -> (usize, usize) {
        (
            self.tx_posts.load(Ordering::Relaxed),
            self.chunk_posts.load(Ordering::Relaxed),
        )
    }

    /// `GET /tx_anchor`: a recent block hash to use as `last_tx`.
    pub fn tx_anchor(&self) -> Result<Vec<u8>> {
        let text = self.get_text("/tx_anchor")?;
        b64::decode(text.trim(), "tx_anchor")
    }

    /// `GET /price/{bytes}`: the fee in winston for a data transaction of that size.
    pub fn price(&self, bytes: u64) -> Result<u128> {
        let path = format!("/price/{bytes}");
        let text = self.get_text(&path)?;
        text.trim()
            .parse()
            .map_err(|_| self.error(&path, None, format!("price {text:?} is not a number")))
    }

    /// `POST /tx`: the transaction as it is, with its inline data if any (use
    /// [`Transaction::header`] to post without). Retried; re-posting the same id is harmless.
    pub fn post_tx(&self, tx: &Transaction) -> Result<()> {
        let body = tx.to_json();
        self.post_with_retry("/tx", &body)?;
        self.tx_posts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// `POST /chunk`, retried with backoff on network errors, 429 and 5xx.
    pub fn post_chunk(&self, chunk: &ChunkUpload) -> Result<()> {
        let body = serde_json::to_string(chunk).expect("a chunk serializes");
        self.post_with_retry("/chunk", &body)?;
        self.chunk_posts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// `GET /tx/{id}/status`.
    pub fn tx_status(&self, id: &str) -> Result<TxStatus> {
        let path = format!("/tx/{id}/status");
        match self.agent.get(&self.full(&path)).call() {
            Ok(resp) if resp.status() == 202 => Ok(TxStatus::Pending),
            Ok(resp) => {
                let v: Value = resp
                    .into_json()
                    .map_err(|e| self.error(&path, None, format!("status is not JSON: {e}")))?;
                Ok(TxStatus::Confirmed {
                    block_height: v["block_height"].as_u64().unwrap_or(0),
                    confirmations: v["number_of_confirmations"].as_u64().unwrap_or(0),
                })
            }
            Err(ureq::Error::Status(404, _)) => Ok(TxStatus::NotFound),
            Err(e) => Err(self.ureq_error(&path, e)),
        }
    }

    /// `GET /tx/{id}`: the transaction header, or `None` if the gateway does not know it.
    pub fn get_tx(&self, id: &str) -> Result<Option<Transaction>> {
        let path = format!("/tx/{id}");
        match self.agent.get(&self.full(&path)).call() {
            Ok(resp) if resp.status() == 202 => Ok(None),
            Ok(resp) => {
                let text = read_text(resp).map_err(|e| self.error(&path, None, e))?;
                Transaction::from_json(&text).map(Some)
            }
            Err(ureq::Error::Status(404, _)) => Ok(None),
            Err(e) => Err(self.ureq_error(&path, e)),
        }
    }

    /// `GET /{id}`: the transaction's data as raw bytes.
    pub fn data(&self, id: &str) -> Result<Vec<u8>> {
        let path = format!("/{id}");
        let resp = self
            .agent
            .get(&self.full(&path))
            .call()
            .map_err(|e| self.ureq_error(&path, e))?;
        let mut data = Vec::new();
        resp.into_reader()
            .read_to_end(&mut data)
            .map_err(|e| self.error(&path, None, format!("reading data: {e}")))?;
        Ok(data)
    }

    /// `POST /graphql` with a query and variables; returns the `data` member.
    pub fn graphql(&self, query: &str, variables: Value) -> Result<Value> {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let resp = self.post("/graphql", &body)?;
        let v: Value = serde_json::from_str(&resp)
            .map_err(|e| self.error("/graphql", None, format!("answer is not JSON: {e}")))?;
        if let Some(errors) = v.get("errors") {
            return Err(self.error("/graphql", None, format!("query failed: {errors}")));
        }
        Ok(v["data"].clone())
    }

    /// Transactions carrying all of the given tags (name, value), newest first as the gateway
    /// orders them, at most `first`.
    pub fn find_by_tags(&self, tags: &[(&str, &str)], first: u32) -> Result<Vec<FoundTx>> {
        let query = "query($tags: [TagFilter!], $first: Int) {
            transactions(tags: $tags, first: $first) {
                edges { node { id tags { name value } } }
            }
        }";
        let filters: Vec<Value> = tags
            .iter()
            .map(|(n, v)| json!({ "name": n, "values": [v] }))
            .collect();
        let data = self.graphql(query, json!({ "tags": filters, "first": first }))?;
        let edges = data["transactions"]["edges"]
            .as_array()
            .ok_or_else(|| self.error("/graphql", None, format!("unexpected answer: {data}")))?;
        Ok(edges
            .iter()
            .map(|e| FoundTx {
                id: e["node"]["id"].as_str().unwrap_or_default().to_string(),
                tags: e["node"]["tags"]
                    .as_array()
                    .map(|tags| {
                        tags.iter()
                            .map(|t| {
                                let s = |k: &str| t[k].as_str().unwrap_or_default().to_string();
                                (s("name"), s("value"))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// `GET /wallet/{address}/balance` in winston.
    pub fn balance(&self, address: &str) -> Result<u128> {
        let path = format!("/wallet/{address}/balance");
        let text = self.get_text(&path)?;
        text.trim()
            .parse()
            .map_err(|_| self.error(&path, None, format!("balance {text:?} is not a number")))
    }

    /// arlocal only: `GET /mint/{address}/{winston}`.
    pub fn mint(&self, address: &str, winston: u128) -> Result<()> {
        self.get_text(&format!("/mint/{address}/{winston}"))
            .map(drop)
    }

    /// arlocal only: `GET /mine`, putting pending transactions in a block.
    pub fn mine(&self) -> Result<()> {
        self.get_text("/mine").map(drop)
    }

    fn full(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn get_text(&self, path: &str) -> Result<String> {
        let resp = self
            .agent
            .get(&self.full(path))
            .call()
            .map_err(|e| self.ureq_error(path, e))?;
        read_text(resp).map_err(|e| self.error(path, None, e))
    }

    fn post(&self, path: &str, body: &str) -> Result<String> {
        let resp = self
            .agent
            .post(&self.full(path))
            .set("Content-Type", "application/json")
            .send_string(body)
            .map_err(|e| self.ureq_error(path, e))?;
        read_text(resp).map_err(|e| self.error(path, None, e))
    }

    fn post_with_retry(&self, path: &str, body: &str) -> Result<String> {
        let mut wait = self.retry.initial_backoff;
        let mut attempt = 1;
        loop {
            match self.post(path, body) {
                Ok(text) => return Ok(text),
                Err(e) if attempt < self.retry.attempts && is_transient(&e) => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(self.retry.max_backoff);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn error(&self, path: &str, status: Option<u16>, message: impl Into<String>) -> Error {
        Error::Gateway {
            url: self.full(path),
            status,
            message: message.into(),
        }
    }

    fn ureq_error(&self, path: &str, e: ureq::Error) -> Error {
        match e {
            ureq::Error::Status(code, resp) => {
                let body = read_text(resp).unwrap_or_default();
                let body: String = body.chars().take(300).collect();
                self.error(path, Some(code), format!("HTTP {code}: {}", body.trim()))
            }
            ureq::Error::Transport(t) => self.error(path, None, t.to_string()),
        }
    }
}

/// Network errors, rate limiting and server errors are worth retrying; other 4xx are not.
fn is_transient(e: &Error) -> bool {
    match e {
        Error::Gateway { status: None, .. } => true,
        Error::Gateway {
            status: Some(code), ..
        } => *code == 429 || *code >= 500,
        _ => false,
    }
}

fn read_text(resp: ureq::Response) -> std::result::Result<String, String> {
    let mut text = String::new();
    resp.into_reader()
        .take(16 << 20)
        .read_to_string(&mut text)
        .map_err(|e| format!("reading answer: {e}"))?;
    Ok(text)
}
