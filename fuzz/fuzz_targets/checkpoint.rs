//! Any bytes read as a llama2.c checkpoint: an error or a model, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Without a magic the loader reads a legacy v0 header; prefix the versioned
    // magic half of the time so v1/v2 headers are explored too.
    let mut with_magic = b"ak42".iter().rev().copied().collect::<Vec<u8>>();
    with_magic.extend_from_slice(data);
    for bytes in [data, &with_magic[..]] {
        let mut src = bytes;
        if let Ok(model) = llama::load_untokenized(&mut src, &mut |_, _| {}) {
            if model.config.kv_cache_bytes() < 64 << 20 {
                let mut s = llama::Session::new(model).unwrap();
                let _ = s.add_tokens(&[0]);
                let _ = s.next_token();
            }
        }
    }
});
