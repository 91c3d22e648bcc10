//! Repository tasks, run as `cargo xtask <task>`:
//!
//! - `generate`: regenerates `examples/` from the answers in `xtask/answers/`.
//! - `check-examples`: fails if any example differs by one byte from what the template
//!   generates now.
//! - `new DIR [key=value ...]`: generates one service from the current template into DIR,
//!   recording this checkout's commit as its template revision.
//! - `upgrade SERVICE [--to REVISION] [--from REVISION] [--allow-dirty] [--dry-run]`: merges
//!   what the template changed since SERVICE was generated into it, keeping its team's
//!   changes (see `upgrade.rs`).
//! - `check-upgrades`: the upgrade command end to end, on scratch git repositories (part of
//!   `test`).
//! - `matrix [--list] [--only NAME]`: generates a pairwise cover of the option combinations
//!   outside the workspace and formats, lints and tests each (see `matrix.rs`).
//! - `release VERSION`: records the version in the hooks and the changelog, regenerates the
//!   examples, commits and tags `vVERSION` (see `release.rs`).
//! - `lint`: lints every GitHub workflow (template and generated) with actionlint and zizmor.
//! - `schemathesis`: builds the default example, runs it with its development issuer and
//!   fuzzes every operation of its OpenAPI document (part of `test`).
//! - `book`: builds the guide in `docs/` into `target/book`, failing on a missing include
//!   or item, any mdBook warning and any broken link (part of `test`).
//! - `doc-commands`: runs every shell block of the README, the guide and the generated
//!   READMEs, or checks that it says why not (see `doc_commands.rs`; part of `test`).
//! - `image-steps`: runs the Dockerfile's build steps in a fresh generation, without Docker
//!   (see `image.rs`; part of `test`).
//! - `test`: everything CI runs, in order; the README's test command. It also deletes the
//!   sample modules from a copy of the default example and runs its tests (`removal.rs`).
//! - `bench [--seconds N] [--no-write]`: load tests the default example against a bare
//!   actix-web floor and writes `docs/benchmarks.md` (see `bench.rs`).
//! - `fuzz [--seconds N]`: fuzzes the bearer token path of the default example (see `fuzz.rs`).
//! - `reliability [--debug] [--soak-seconds N]`: soak, SIGTERM, provider outage, unknown-kid
//!   flood and hostile requests against the default example (see `reliability.rs`).
//! - `oidc-provider rotate DIR`: rotates the keys of the provider the end-to-end tests
//!   started (they call it themselves).
//!
//! Tools this needs and a new machine lacks are installed in a cache outside the checkout,
//! pinned, on first use.
//!
//! This file only dispatches. `flags.rs` reads the command line; each task lives in the
//! module named after it. Shared by many:
//!
//! - `shell.rs`: the repository root, the error type, running commands, section headings;
//! - `tree.rs`: scratch directories, walking, copying and comparing file trees;
//! - `generate.rs`: the cargo-generate runner and the examples' recorded answers;
//! - `http.rs`: the loopback HTTP client and JSON reading;
//! - `harness.rs`: the load harness (servers, tokens, wrk, measurements) of `bench` and
//!   `reliability`;
//! - `tools.rs`: the pinned tools, installed on first use.

use std::process::ExitCode;

mod bench;
mod book;
mod doc_commands;
mod flags;
mod fuzz;
mod generate;
mod harness;
mod hooks;
mod http;
mod image;
mod lint;
mod matrix;
mod merge;
mod postgres;
mod provider;
mod release;
mod reliability;
mod removal;
mod rules;
mod schemathesis;
mod shell;
mod snippets;
mod suite;
mod tools;
mod tree;
mod upgrade;

use flags::Task;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = Task::parse(&args).and_then(|task| match task {
        Task::Generate => generate::generate(),
        Task::CheckExamples => generate::check_examples(),
        Task::New {
            destination,
            defines,
        } => generate::new(&destination, &defines),
        Task::Upgrade(flags) => upgrade::upgrade(&flags),
        Task::CheckUpgrades => upgrade::check::check(),
        Task::Matrix(flags) => matrix::matrix(&flags),
        Task::Release { version } => release::release(&version),
        Task::Lint => lint::lint(),
        Task::Test => suite::test(),
        Task::Book => book::build(),
        Task::DocCommands => doc_commands::doc_commands(),
        Task::ImageSteps => image::image_steps(),
        Task::Schemathesis => schemathesis::schemathesis(),
        Task::Bench(flags) => bench::bench(&flags),
        Task::Fuzz(flags) => fuzz::run_for(flags.seconds),
        Task::Reliability(flags) => reliability::reliability(&flags),
        Task::RotateProvider { state } => provider::rotate(&state),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
