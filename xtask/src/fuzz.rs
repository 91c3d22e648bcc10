//! `cargo xtask fuzz [--seconds N]`, and the short run in `cargo xtask test`: the default
//! example's cargo-fuzz target (`fuzz/fuzz_targets/bearer_token.rs`: the `Authorization`
//! header, the bearer token and every check of the validator), for a bounded time.
//!
//! cargo-fuzz runs here on stable Rust with `--sanitizer none`: its coverage flags are
//! stable, AddressSanitizer (`-Zsanitizer`) is not. The fuzz crate is its own workspace, so it
//! is built in a copy of the example under `target/` (its Cargo.lock and build output would
//! otherwise land in `examples/`), pinned to the workspace's Cargo.lock, with a corpus kept
//! under `target/xtask-fuzz` from one run to the next.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::shell::{Result, root, run};
use crate::tools;
use crate::tree::walk;

const EXAMPLE: &str = "default";
const TARGET: &str = "bearer_token";

/// Builds the fuzz target and fuzzes for `seconds`; fails on the first crash, leaving the
/// input under `target/xtask-fuzz/default/fuzz/artifacts/`.
pub fn run_for(seconds: u32) -> Result {
    let cargo_fuzz = tools::cargo_fuzz()?;
    let work = root().join("target/xtask-fuzz");
    let project = work.join(EXAMPLE);
    sync_tree(&root().join("examples").join(EXAMPLE), &project)?;
    let fuzz_dir = project.join("fuzz");
    // Same versions as the examples; cargo adds what only the fuzz crate needs.
    fs::copy(root().join("Cargo.lock"), fuzz_dir.join("Cargo.lock")).map_err(|e| e.to_string())?;
    run(Command::new("rustfmt")
        .args(["--edition", "2024", "--check"])
        .arg(fuzz_dir.join("fuzz_targets").join(format!("{TARGET}.rs"))))?;
    let corpus = work.join("corpus").join(TARGET);
    fs::create_dir_all(&corpus).map_err(|e| e.to_string())?;
    println!(
        "fuzzing examples/{EXAMPLE} {TARGET} for {seconds} s (corpus in {})",
        corpus.display()
    );
    run(Command::new(cargo_fuzz)
        .args(["fuzz", "run", "--sanitizer", "none", TARGET])
        .arg(&corpus)
        .arg(fuzz_dir.join("seeds").join(TARGET))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-dict={}", fuzz_dir.join("token.dict").display()))
        .arg("-print_final_stats=1")
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", root().join("target/fuzz")))
}

/// Makes `to` hold exactly the files of `from`, rewriting only those that changed (so
/// Cargo's fingerprints, which look at modification times, rebuild nothing needlessly).
fn sync_tree(from: &Path, to: &Path) -> Result {
    let wanted: Vec<PathBuf> = walk(from)?
        .into_iter()
        .map(|file| file.strip_prefix(from).unwrap().to_owned())
        .collect();
    for relative in &wanted {
        let (source, target) = (from.join(relative), to.join(relative));
        let contents = fs::read(&source).map_err(|e| format!("{}: {e}", source.display()))?;
        if fs::read(&target).ok().as_deref() != Some(contents.as_slice()) {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            fs::write(&target, contents).map_err(|e| format!("{}: {e}", target.display()))?;
        }
    }
    if to.exists() {
        for file in walk(to)? {
            let relative = file.strip_prefix(to).unwrap();
            // What cargo-fuzz wrote: the lock file, and the inputs of any crash.
            let generated =
                relative.starts_with("fuzz/Cargo.lock") || relative.starts_with("fuzz/artifacts");
            if !generated && !wanted.iter().any(|w| w == relative) {
                fs::remove_file(&file).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}
