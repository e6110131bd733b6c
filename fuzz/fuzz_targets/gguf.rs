//! Any bytes after the GGUF magic: an error or a model, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(data);
    let mut src = &bytes[..];
    if let Ok(model) = llama::load_untokenized(&mut src, &mut |_, _| {}) {
        let _ = model.tokenizer.encode(b"hello world", true, true);
    }
});
