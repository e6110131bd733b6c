//! `aos-llama`: run, inspect and benchmark llama models natively, with the same
//! engine AOS.wasm embeds.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod ao;
mod bench;
mod chat;
mod convert;
mod dispute;
mod inspect;
mod model_files;
mod progress;
mod publish;
mod run;
mod tokenize;
mod verify;

#[derive(Parser)]
#[command(name = "aos-llama", version, about = "Run, inspect and benchmark llama models for AO processes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text from a prompt (output exactly as llama2.c's `run` prints it).
    Run(run::RunArgs),
    /// One chat turn through the model's chat template; prints the reply only.
    Chat(chat::ChatArgs),
    /// Print the logits for a list of token ids as JSON (a parity and debugging tool).
    Logits(run::LogitsArgs),
    /// Describe a model file: format, config, tensor types, size, sha256.
    Inspect(inspect::InspectArgs),
    /// Print the token ids of a text, as llama.cpp's llama-tokenize (a vocabulary-only GGUF works).
    Tokenize(tokenize::TokenizeArgs),
    /// Benchmark random-weight models of the llama2.c 15M/42M/110M shapes.
    Bench(bench::BenchArgs),
    /// Spawn a process from AOS.wasm in the local compute unit, send one Eval, print Output.data.
    Eval(ao::EvalArgs),
    /// A long-lived local process: a REPL (or script on stdin) of Evals and messages.
    Process(ao::ProcessArgs),
    /// Convert Hugging Face / GGUF checkpoints and tokenizers to llama2.c formats.
    #[command(subcommand)]
    Convert(convert::ConvertCommand),
    /// Generate natively with trace commitments: write the trace, print the claim.
    Trace(verify::TraceArgs),
    /// Check an inference claim by re-running it natively (exit 0 confirmed, 1 refuted, 2 bad input).
    Verify(verify::VerifyArgs),
    /// Be a party to a Dispute settled by an AO process: open one, answer the arbiter's rounds.
    #[command(subcommand)]
    Dispute(dispute::DisputeCommand),
    /// Publish a file (a model, AOS.wasm) to Arweave, in chunks, resumable.
    Publish(publish::PublishArgs),
    /// Create an Arweave wallet or print its address.
    #[command(subcommand)]
    Wallet(publish::WalletCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Chat(a) => chat::chat(a),
        Command::Logits(a) => run::logits(a),
        Command::Inspect(a) => inspect::inspect(a),
        Command::Tokenize(a) => tokenize::tokenize(a),
        Command::Bench(a) => bench::bench(a),
        Command::Eval(a) => ao::eval(a),
        Command::Process(a) => ao::process(a),
        Command::Convert(c) => convert::convert(c),
        Command::Trace(a) => verify::trace(a),
        Command::Verify(a) => verify::verify(a),
        Command::Dispute(c) => dispute::dispute(c),
        Command::Publish(a) => publish::publish(a),
        Command::Wallet(c) => publish::wallet(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
