//! The Lua process runtime embedded in AOS.wasm (see ../../lua/README.md).
//!
//! On the first message `lib.rs` runs these chunks, in this order, in a fresh Lua state
//! with all standard libraries open. The last one defines the global
//! `handle(msgJson, envJson) -> resultJson`. To change what is embedded, edit this list.

/// (chunk name, source). Chunk names start with `=` so error messages show them as is.
pub const RUNTIME: &[(&str, &str)] = &[
    ("=lua/json.lua", include_str!("../../lua/json.lua")),
    ("=lua/utils.lua", include_str!("../../lua/utils.lua")),
    ("=lua/stringify.lua", include_str!("../../lua/stringify.lua")),
    ("=lua/base64.lua", include_str!("../../lua/base64.lua")),
    ("=lua/bint.lua", include_str!("../../lua/bint.lua")),
    ("=lua/crypto.lua", include_str!("../../lua/crypto.lua")),
    ("=lua/handlers.lua", include_str!("../../lua/handlers.lua")),
    ("=lua/ao.lua", include_str!("../../lua/ao.lua")),
    ("=lua/llama.lua", include_str!("../../lua/llama.lua")),
    ("=lua/inference.lua", include_str!("../../lua/inference.lua")),
    ("=lua/dispute.lua", include_str!("../../lua/dispute.lua")),
    ("=lua/process.lua", include_str!("../../lua/process.lua")),
];
