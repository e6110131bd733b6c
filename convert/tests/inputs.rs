//! Other Hugging Face inputs (sharded, F16, BF16) and bad inputs.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::*;
use llama_convert::{gguf_to_llama2c, hf_to_llama2c, Error, Format};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

/// A copy of stories260K's HF dir with `model.safetensors` rewritten by `f`
/// (name, dtype, shape, f32 values) → Some(new tensor) or None (drop it), split into
/// `shards` files with an index when `shards > 1`.
type Tensor = (Dtype, Vec<usize>, Vec<u8>);
type Rewrite<'a> = &'a dyn Fn(&str, Vec<usize>, Vec<f32>) -> Option<Tensor>;

fn rewrite(dst: &Path, shards: usize, f: Rewrite) {
    std::fs::copy(stories().join("hf/config.json"), dst.join("config.json")).unwrap();
    let bytes = std::fs::read(stories().join("hf/model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort();
    let mut out: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for name in names {
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), Dtype::F32);
        let vals = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        if let Some((dt, shape, data)) = f(name, t.shape().to_vec(), vals) {
            out.push((name.to_string(), dt, shape, data));
        }
    }
    if shards == 1 {
        let views: Vec<(String, TensorView)> = out
            .iter()
            .map(|(n, dt, s, d)| (n.clone(), TensorView::new(*dt, s.clone(), d).unwrap()))
            .collect();
        safetensors::serialize_to_file(views, None, &dst.join("model.safetensors")).unwrap();
        return;
    }
    let per = out.len().div_ceil(shards);
    let mut weight_map = serde_json::Map::new();
    for (i, chunk) in out.chunks(per).enumerate() {
        let file = format!("model-{:05}-of-{shards:05}.safetensors", i + 1);
        let views: Vec<(String, TensorView)> = chunk
            .iter()
            .map(|(n, dt, s, d)| (n.clone(), TensorView::new(*dt, s.clone(), d).unwrap()))
            .collect();
        safetensors::serialize_to_file(views, None, &dst.join(&file)).unwrap();
        for (n, ..) in chunk {
            weight_map.insert(n.clone(), file.clone().into());
        }
    }
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": weight_map});
    std::fs::write(dst.join("model.safetensors.index.json"), index.to_string()).unwrap();
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn keep(_: &str, shape: Vec<usize>, v: Vec<f32>) -> Option<Tensor> {
    Some((Dtype::F32, shape, f32_bytes(&v)))
}

fn convert_dir(dir: &Path, format: Format) -> Result<Vec<u8>, Error> {
    let out = dir.join("out.bin");
    hf_to_llama2c(dir, &out, format, &mut no_progress())?;
    Ok(std::fs::read(out).unwrap())
}

#[test]
fn sharded_checkpoint_converts_to_the_same_bytes() {
    let d = tempfile::tempdir().unwrap();
    rewrite(d.path(), 2, &keep);
    assert!(d.path().join("model-00002-of-00002.safetensors").exists());
    assert!(!d.path().join("model.safetensors").exists());
    let ours = convert_dir(d.path(), Format::V0).unwrap();
    assert!(ours == std::fs::read(stories().join("stories260K.bin")).unwrap());
}

/// F16/BF16 inputs widen exactly: the output equals the f32 conversion with every
/// weight rounded the same way.
#[test]
fn f16_and_bf16_checkpoints_widen_exactly() {
    let reference = {
        let d = tempfile::tempdir().unwrap();
        rewrite(d.path(), 1, &keep);
        convert_dir(d.path(), Format::V1).unwrap()
    };
    type Round = fn(f32) -> (f32, [u8; 2]);
    let f16: Round = |x| {
        let h = half::f16::from_f32(x);
        (h.to_f32(), h.to_le_bytes())
    };
    let bf16: Round = |x| {
        let h = half::bf16::from_f32(x);
        (h.to_f32(), h.to_le_bytes())
    };
    for (dtype, round) in [(Dtype::F16, f16), (Dtype::BF16, bf16)] {
        let d = tempfile::tempdir().unwrap();
        rewrite(d.path(), 1, &|_, shape, v| {
            Some((dtype, shape, v.iter().flat_map(|&x| round(x).1).collect()))
        });
        let ours = convert_dir(d.path(), Format::V1).unwrap();
        let mut expected = reference[..256].to_vec();
        for c in reference[256..].chunks_exact(4) {
            expected.extend(
                round(f32::from_le_bytes(c.try_into().unwrap()))
                    .0
                    .to_le_bytes(),
            );
        }
        assert!(ours == expected, "{dtype:?}");
        let story = greedy(load_with_tok512(&d.path().join("out.bin")), 50);
        assert!(!story.is_empty());
    }
}

#[test]
fn untied_classifier_is_written() {
    let d = tempfile::tempdir().unwrap();
    rewrite(d.path(), 1, &keep);
    // Add lm_head = 2 × embeddings.
    let bytes = std::fs::read(d.path().join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: HashMap<String, (Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, (t.dtype(), t.shape().to_vec(), t.data().to_vec())))
        .collect();
    let (dt, shape, e) = tensors["model.embed_tokens.weight"].clone();
    let doubled: Vec<u8> = e
        .chunks_exact(4)
        .flat_map(|c| (2.0 * f32::from_le_bytes(c.try_into().unwrap())).to_le_bytes())
        .collect();
    tensors.insert("lm_head.weight".into(), (dt, shape, doubled));
    drop(st);
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, (dt, s, d))| (n.clone(), TensorView::new(*dt, s.clone(), d).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &d.path().join("model.safetensors")).unwrap();
    let cfg = std::fs::read_to_string(d.path().join("config.json"))
        .unwrap()
        .replace(
            "\"tie_word_embeddings\": true",
            "\"tie_word_embeddings\": false",
        );
    std::fs::write(d.path().join("config.json"), cfg).unwrap();

    let out = d.path().join("untied.bin");
    let s = hf_to_llama2c(d.path(), &out, Format::V0, &mut no_progress()).unwrap();
    assert!(!s.shared_classifier);
    let m = load_with_tok512(&out);
    assert!(m.weights.classifier.is_some());
    let v0 = std::fs::read(&out).unwrap();
    assert_eq!(
        i32::from_le_bytes(v0[20..24].try_into().unwrap()),
        -512,
        "v0 marks a separate classifier with -vocab"
    );
    let s = hf_to_llama2c(
        d.path(),
        &out,
        Format::Q8 { group_size: None },
        &mut no_progress(),
    )
    .unwrap();
    assert!(!s.shared_classifier);
    assert!(load_with_tok512(&out).weights.classifier.is_some());
}

#[test]
fn hyperparameters_llama2c_cannot_store_are_warned_about() {
    let d = tempfile::tempdir().unwrap();
    rewrite(d.path(), 1, &keep);
    let cfg = std::fs::read_to_string(d.path().join("config.json"))
        .unwrap()
        .replace("\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": 1e-06")
        .replace("\"rope_theta\": 10000.0", "\"rope_theta\": 500000.0");
    std::fs::write(d.path().join("config.json"), cfg).unwrap();
    let s = hf_to_llama2c(
        d.path(),
        &d.path().join("o.bin"),
        Format::V1,
        &mut no_progress(),
    )
    .unwrap();
    assert_eq!(s.config.rope_theta, 500000.0);
    assert!(
        s.warnings.iter().any(|w| w.contains("rms_norm_eps")),
        "{:?}",
        s.warnings
    );
    assert!(
        s.warnings.iter().any(|w| w.contains("rope_theta")),
        "{:?}",
        s.warnings
    );
}

fn err(dir: &Path, format: Format) -> String {
    let out = dir.join("bad.bin");
    let e = hf_to_llama2c(dir, &out, format, &mut no_progress())
        .unwrap_err()
        .to_string();
    eprintln!("{e}");
    assert!(!out.exists(), "no output after an error");
    assert!(
        !dir.join(".bad.bin.partial").exists(),
        "no partial file after an error"
    );
    e
}

#[test]
fn bad_inputs_give_clear_errors() {
    // Missing config.json.
    let d = tempfile::tempdir().unwrap();
    let e = err(d.path(), Format::V0);
    assert!(
        e.contains("config.json") && e.contains("No such file"),
        "{e}"
    );

    // No weights.
    std::fs::copy(
        stories().join("hf/config.json"),
        d.path().join("config.json"),
    )
    .unwrap();
    let e = err(d.path(), Format::V0);
    assert!(e.contains("model.safetensors"), "{e}");

    // A missing tensor.
    let d = tempfile::tempdir().unwrap();
    rewrite(d.path(), 1, &|n, s, v| {
        if n == "model.layers.3.mlp.up_proj.weight" {
            None
        } else {
            keep(n, s, v)
        }
    });
    let e = err(d.path(), Format::V1);
    assert!(
        e.contains("missing tensor model.layers.3.mlp.up_proj.weight"),
        "{e}"
    );

    // A wrong shape (config says hidden 176, tensors have 172).
    let d = tempfile::tempdir().unwrap();
    rewrite(d.path(), 1, &keep);
    let cfg = std::fs::read_to_string(d.path().join("config.json"))
        .unwrap()
        .replace("172", "176");
    std::fs::write(d.path().join("config.json"), cfg).unwrap();
    let e = err(d.path(), Format::V1);
    assert!(e.contains("has shape [172, 64], expected [176, 64]"), "{e}");

    // Bad group sizes.
    let d = tempfile::tempdir().unwrap();
    rewrite(d.path(), 1, &keep);
    for g in [0, 3, 8, 64] {
        let e = err(
            d.path(),
            Format::Q8 {
                group_size: Some(g),
            },
        );
        assert!(
            e.contains(&format!("group size {g}")) && e.contains("divide"),
            "{e}"
        );
    }

    // Malformed config.json / unsupported settings.
    let d = tempfile::tempdir().unwrap();
    rewrite(d.path(), 1, &keep);
    std::fs::write(d.path().join("config.json"), "{ nope").unwrap();
    assert!(err(d.path(), Format::V1).contains("not JSON"));
    std::fs::write(d.path().join("config.json"), r#"{"hidden_size": 64}"#).unwrap();
    assert!(err(d.path(), Format::V1).contains("num_attention_heads"));
    let cfg = std::fs::read_to_string(stories().join("hf/config.json"))
        .unwrap()
        .replace("\"silu\"", "\"gelu\"");
    std::fs::write(d.path().join("config.json"), cfg).unwrap();
    assert!(err(d.path(), Format::V1).contains("gelu"));

    // A truncated safetensors file.
    let d = tempfile::tempdir().unwrap();
    std::fs::copy(
        stories().join("hf/config.json"),
        d.path().join("config.json"),
    )
    .unwrap();
    let bytes = std::fs::read(stories().join("hf/model.safetensors")).unwrap();
    std::fs::write(
        d.path().join("model.safetensors"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let e = err(d.path(), Format::V1);
    assert!(e.contains("model.safetensors"), "{e}");
}

#[test]
fn bad_gguf_inputs_give_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o.bin");
    let bytes = std::fs::read(stories().join("stories260K-f32.gguf")).unwrap();
    for (name, data) in [
        ("truncated.gguf", &bytes[..bytes.len() - 1000]),
        ("header.gguf", &bytes[..100]),
        ("empty.gguf", &[][..]),
    ] {
        let p = d.path().join(name);
        std::fs::write(&p, data).unwrap();
        let e = gguf_to_llama2c(&p, &out, Format::V1, &mut no_progress())
            .unwrap_err()
            .to_string();
        assert!(e.contains(name), "{e}");
        assert!(!out.exists());
    }
    let e = gguf_to_llama2c(
        &stories().join("stories260K.bin"),
        &out,
        Format::V1,
        &mut no_progress(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not a GGUF"), "{e}");
}
