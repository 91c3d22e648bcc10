//! `cargo xtask image-steps` (part of `cargo xtask test`): the container image's build steps,
//! without Docker. The build context is a fresh generation (the default example, as
//! `cargo generate` writes it: no `Cargo.lock`, no `target/`), and each build stage of the
//! Dockerfile gets a folder of its own standing for its `/app`: `COPY . .` copies the context
//! in, `COPY --from=STAGE /app/X Y` copies from that stage's folder, and every `RUN` runs
//! there, in order, with the cargo-chef release the Dockerfile installs (`/data` becomes a
//! folder of the scratch space). Then what the runtime stage copies out of the builder must
//! exist. Installing cargo-chef (the `chef` stage's only step) is what the pinned tool does.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::shell::{Result, read, root, run};
use crate::tools;
use crate::tree::{Scratch, copy_tree};

pub fn image_steps() -> Result {
    let example = root().join("examples/default");
    let dockerfile = read(&example.join("Dockerfile"))?;
    let instructions = instructions(&dockerfile);
    let chef_version = instructions
        .iter()
        .find_map(|(_, _, text)| text.split("cargo-chef --version ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or("the Dockerfile installs no pinned cargo-chef")?;
    let chef = tools::cargo_chef(chef_version)?;
    let scratch = Scratch::new("image")?;
    let context = scratch.path.join("context");
    copy_tree(&example, &context)?;
    let _ = std::fs::remove_file(context.join("Cargo.lock"));
    let data = scratch.path.join("data").display().to_string();
    let path = format!(
        "{}:{}",
        chef.parent().ok_or("cargo-chef has no folder")?.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut stages: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (stage, instruction, text) in &instructions {
        let app = stages
            .entry(stage.clone())
            .or_insert_with(|| scratch.path.join(format!("stage-{stage}")))
            .clone();
        std::fs::create_dir_all(&app).map_err(|e| e.to_string())?;
        let inside = |path: &str, base: &PathBuf| match path.strip_prefix("/app/") {
            Some(rest) => base.join(rest),
            None if path.starts_with('/') => scratch.path.join(path.trim_start_matches('/')),
            None => base.join(path),
        };
        match instruction.as_str() {
            "RUN" if stage == "chef" => {}
            "RUN" if stage == "runtime" => {
                return Err(format!("a RUN in the runtime stage: {text}"));
            }
            "RUN" => {
                let command = text.replace("/data", &data);
                println!("{stage}: RUN {command}");
                run(Command::new("sh")
                    .args(["-ec", &command])
                    .current_dir(&app)
                    .env("PATH", &path)
                    .env_remove("CARGO_TARGET_DIR")
                    .env_remove("CARGO"))?;
            }
            "COPY" => {
                let words: Vec<&str> = text.split_whitespace().collect();
                let from = words.iter().find_map(|word| word.strip_prefix("--from="));
                let paths: Vec<&str> = words
                    .iter()
                    .copied()
                    .filter(|word| !word.starts_with("--"))
                    .collect();
                let [source, dest] = paths[..] else {
                    return Err(format!("a COPY this check cannot follow: {text}"));
                };
                let source = match from {
                    Some(stage) => {
                        let folder = stages
                            .get(stage)
                            .ok_or_else(|| format!("COPY from the unknown stage {stage}"))?;
                        inside(source, folder)
                    }
                    None if source == "." => context.clone(),
                    None => context.join(source),
                };
                if !source.exists() {
                    return Err(format!(
                        "{stage}: COPY {text}: {} was not made by the build steps",
                        source.display()
                    ));
                }
                if stage == "runtime" {
                    continue;
                }
                println!("{stage}: COPY {text}");
                let dest = inside(dest, &app);
                if source.is_dir() {
                    copy_tree(&source, &dest)?;
                } else {
                    std::fs::copy(&source, &dest).map_err(|e| e.to_string())?;
                }
            }
            _ => {}
        }
    }
    println!("the Dockerfile's build steps pass in a fresh generation, without a Cargo.lock");
    Ok(())
}

/// The Dockerfile's `RUN` and `COPY` instructions (continuation lines joined), with the
/// stage (`FROM ... AS stage`) each belongs to.
fn instructions(dockerfile: &str) -> Vec<(String, String, String)> {
    let mut joined: Vec<String> = Vec::new();
    let mut continued = false;
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') && !continued {
            continue;
        }
        let text = trimmed.trim_end_matches('\\').trim();
        match joined.last_mut() {
            Some(last) if continued => {
                last.push(' ');
                last.push_str(text);
            }
            _ => joined.push(text.to_owned()),
        }
        continued = trimmed.ends_with('\\');
    }
    let mut stage = String::new();
    let mut found = Vec::new();
    for line in joined {
        let Some((instruction, rest)) = line.split_once(' ') else {
            continue;
        };
        match instruction {
            "FROM" => {
                stage = rest
                    .split_once(" AS ")
                    .map_or(rest, |(_, name)| name)
                    .trim()
                    .to_owned();
            }
            "RUN" | "COPY" => found.push((stage.clone(), instruction.to_owned(), rest.to_owned())),
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_are_read_by_stage() {
        let dockerfile = "# syntax\nFROM rust AS chef\nRUN cargo install cargo-chef --version 0.1.78 --locked\nFROM chef AS builder\n# a comment\nRUN a \\\n    && b\nCOPY . .\nFROM distroless AS runtime\nCOPY --from=builder --chown=1:1 /data /data\n";
        let all = instructions(dockerfile);
        let found: Vec<(&str, &str, &str)> = all
            .iter()
            .map(|(stage, instruction, text)| (stage.as_str(), instruction.as_str(), text.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "chef",
                    "RUN",
                    "cargo install cargo-chef --version 0.1.78 --locked"
                ),
                ("builder", "RUN", "a && b"),
                ("builder", "COPY", ". ."),
                ("runtime", "COPY", "--from=builder --chown=1:1 /data /data"),
            ]
        );
    }
}
