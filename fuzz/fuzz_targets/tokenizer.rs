//! Any bytes as a llama2.c tokenizer.bin (vocabulary size from the first two bytes),
//! then encoding and decoding any text with it: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let vocab = 3 + u16::from_le_bytes([data[0], data[1]]) as usize % 600;
    let split = data[2] as usize % (data.len() - 2);
    let (text, file) = data[3..].split_at(split.min(data.len() - 3));
    let mut src = file;
    let mut none = |_: u64, _: u64| {};
    let mut r = llama::source::Reader::new(&mut src, &mut none);
    if let Ok(t) = llama::Tokenizer::from_llama2c(&mut r, vocab) {
        let ids = t.encode(text, true, true);
        let mut out = Vec::new();
        for w in ids.windows(2) {
            out.extend_from_slice(t.decode(w[0], w[1]));
        }
    }
});
