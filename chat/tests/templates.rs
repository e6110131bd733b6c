//! Templates as real models ship them render the prompts their authors document.

use chat::{render, Message, SpecialTokens};

/// SmolLM2-Instruct's template (ChatML with a default system prompt), as in its GGUF.
const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Llama 3's template (the 8B Instruct one): bos_token, trim filter, header tokens.
const LLAMA3: &str = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

fn tokens() -> SpecialTokens {
    SpecialTokens { bos: "<|begin_of_text|>".into(), eos: "<|eot_id|>".into() }
}

#[test]
fn chatml_with_default_system_prompt() {
    let out = render(SMOLLM2, &[Message::new("user", "What is the capital of France?")], &tokens(), true).unwrap();
    assert_eq!(
        out,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    );
    let with_system = render(SMOLLM2, &[Message::new("system", "Be brief."), Message::new("user", "Hi")], &tokens(), false).unwrap();
    assert_eq!(with_system, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

#[test]
fn llama3_header_tokens_and_trim() {
    let out = render(LLAMA3, &[Message::new("user", "  Hello  ")], &tokens(), true).unwrap();
    assert_eq!(
        out,
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
}

#[test]
fn python_string_methods_and_blocks_trimmed() {
    let t = "{% for m in messages %}\n  {% if m.content.startswith('x') %}\n{{ m.content.strip().upper() }}\n  {% endif %}\n{% endfor %}";
    assert_eq!(render(t, &[Message::new("user", "x y ")], &tokens(), false).unwrap(), "X Y\n");
}

#[test]
fn a_template_that_fails_is_a_clear_error() {
    let raising = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}";
    let e = render(raising, &[Message::new("assistant", "hi")], &tokens(), true).unwrap_err();
    assert!(e.to_string().contains("Conversation roles must alternate"), "{e}");
    let broken = render("{% for m in messages %}{{ m.content }", &[], &tokens(), true).unwrap_err();
    assert!(broken.to_string().starts_with("chat template: "), "{broken}");
    let unknown = render("{{ no_such_function() }}", &[], &tokens(), true).unwrap_err();
    assert!(unknown.to_string().contains("no_such_function") || unknown.to_string().contains("unknown"), "{unknown}");
}

#[test]
fn the_date_is_fixed() {
    let t = "{{ strftime_now('%d %b %Y') }}";
    assert_eq!(render(t, &[], &tokens(), false).unwrap(), "26 Jul 2024");
}
