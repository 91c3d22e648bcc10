//! `cargo xtask doc-commands` (part of `cargo xtask test`): every shell block a reader is told
//! to run, in `README.md`, the guide (`docs/src/**`) and the generated READMEs
//! (`examples/*/README.md`), is run here, or says in the Markdown why it is not.
//!
//! The line before a ` ```sh ` (or `bash`, `shell`, `console`) fence says which:
//!
//! - `<!-- run in: PLACE -->`, optionally `<!-- run in: PLACE; expect: TEXT; expect: TEXT -->`:
//!   the block runs with `bash -euo pipefail` in a scratch copy of PLACE, and fails on a
//!   non-zero exit or an expected text missing from its output. PLACE is `repository` (this
//!   repository), `home` (a folder holding a copy of it as `rust-microservice/`, where a new
//!   user starts), `service NAME` (the generated service `examples/NAME`, in a git
//!   repository of its own) or `this service` (in a generated README: that service). Background jobs (`cargo run &`) are stopped when the block ends.
//! - `<!-- not run by the tests: REASON -->`: needs what this machine has not (Docker, a
//!   cluster, GitHub); the reason is required.
//!
//! An unmarked block fails the check. Every block, run or not, is also read for what it
//! names: a `cargo xtask` command, a route of the service, a setting, a path of the repository
//! or of a generated service; one that does not exist fails the check.
//!
//! The blocks run against the real things: cargo-generate (the newest release the template is
//! tested with, on `PATH`, with `cargo install` pointed at its folder so the documented install
//! finds it installed), the services' own binaries, their development issuer, `curl` and `jq`.
//! Builds share this repository's lock file and target directory.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::shell::{Result, git, root, section, share_lock};
use crate::tools::{self, CargoGenerate};
use crate::tree::{Scratch, copy_tree, walk};
use names::Names;

mod names;

/// The longest a block may run: a first build of a generated service, and its tests.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// Fence languages that are shell.
const SHELLS: [&str; 4] = ["sh", "bash", "shell", "console"];

/// One shell block of a Markdown file.
struct Block {
    /// `README.md:22`.
    at: String,
    marker: Marker,
    body: String,
}

enum Marker {
    Run { place: String, expect: Vec<String> },
    NotRun,
    Missing(String),
}

pub fn doc_commands() -> Result {
    let blocks = all_blocks()?;
    let mut problems: Vec<String> = Vec::new();
    let names = Names::read()?;
    for block in &blocks {
        if let Marker::Missing(problem) = &block.marker {
            problems.push(format!("{}: {problem}", block.at));
        }
        problems.extend(
            names
                .unknown(&block.body)
                .into_iter()
                .map(|name| format!("{}: names {name}, which does not exist", block.at)),
        );
    }
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("{problem}");
        }
        return Err(format!(
            "{} problem(s) in the documented commands",
            problems.len()
        ));
    }
    let runnable: Vec<&Block> = blocks
        .iter()
        .filter(|block| matches!(block.marker, Marker::Run { .. }))
        .collect();
    println!(
        "{} shell blocks: {} run, {} not runnable here (each says why); every name they use exists",
        blocks.len(),
        runnable.len(),
        blocks.len() - runnable.len()
    );
    let places = Places::new()?;
    for block in runnable {
        let Marker::Run { place, expect } = &block.marker else {
            continue;
        };
        section(&format!("{} (in {place})", block.at));
        let dir = places.prepare(place)?;
        let started = Instant::now();
        let output =
            run_block(&block.body, &dir, &places).map_err(|e| format!("{}: {e}", block.at))?;
        for text in expect {
            if !output.contains(text.as_str()) {
                return Err(format!(
                    "{}: the output lacks {text:?}:\n{output}",
                    block.at
                ));
            }
        }
        println!("ok in {:.0} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Every shell block of the documentation.
fn all_blocks() -> Result<Vec<Block>> {
    let repo = root();
    let mut files = vec![repo.join("README.md")];
    files.extend(
        walk(&repo.join("docs/src"))?
            .into_iter()
            .filter(|path| path.extension().is_some_and(|e| e == "md")),
    );
    for example in fs::read_dir(repo.join("examples")).map_err(|e| e.to_string())? {
        let readme = example.map_err(|e| e.to_string())?.path().join("README.md");
        if readme.exists() {
            files.push(readme);
        }
    }
    files.sort();
    let mut blocks = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let shown = file
            .strip_prefix(&repo)
            .unwrap_or(&file)
            .display()
            .to_string();
        blocks.extend(blocks_of(&text, &shown));
    }
    Ok(blocks)
}

/// The shell blocks of one Markdown text, with the marker on the line before each.
fn blocks_of(text: &str, file: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_start();
        let Some(lang) = fence.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].trim_start().starts_with("```"))
            .unwrap_or(lines.len());
        if SHELLS.contains(&lang.trim()) {
            let previous = if i > 0 { lines[i - 1].trim() } else { "" };
            // In a generated README (`examples/NAME/README.md`), "this service" is NAME.
            let this_service = file
                .strip_prefix("examples/")
                .and_then(|rest| rest.split('/').next())
                .map(|name| format!("service {name}"));
            let previous = match &this_service {
                Some(service) => {
                    previous.replace("run in: this service", &format!("run in: {service}"))
                }
                None => previous.to_owned(),
            };
            blocks.push(Block {
                at: format!("{file}:{}", i + 1),
                marker: marker(&previous),
                body: lines[i + 1..end.min(lines.len())].join("\n") + "\n",
            });
        }
        i = end + 1;
    }
    blocks
}

fn marker(line: &str) -> Marker {
    let Some(comment) = line
        .strip_prefix("<!--")
        .and_then(|rest| rest.strip_suffix("-->"))
        .map(str::trim)
    else {
        return Marker::Missing(
            "a shell block without `<!-- run in: ... -->` or `<!-- not run by the tests: ... -->` on the line before".into(),
        );
    };
    if let Some(reason) = comment
        .strip_prefix("not run by the tests")
        .and_then(|rest| rest.trim_start_matches(" here").strip_prefix(':'))
    {
        return if reason.trim().is_empty() {
            Marker::Missing("not run, without saying why".into())
        } else {
            Marker::NotRun
        };
    }
    if let Some(rest) = comment.strip_prefix("run in:") {
        let mut parts = rest.split(';').map(str::trim);
        let place = parts.next().unwrap_or_default().to_owned();
        let expect = parts
            .filter_map(|part| part.strip_prefix("expect:"))
            .map(|text| text.trim().to_owned())
            .collect();
        let known = place == "repository"
            || place == "home"
            || place
                .strip_prefix("service ")
                .is_some_and(|name| root().join("examples").join(name).is_dir());
        return if known {
            Marker::Run { place, expect }
        } else {
            Marker::Missing(format!("no such place to run in: {place:?}"))
        };
    }
    Marker::Missing(format!("an unknown marker: <!-- {comment} -->"))
}

/// Runs `body` in `dir`; its output, or why it failed.
fn run_block(body: &str, dir: &Path, places: &Places) -> Result<String> {
    let log = places.scratch.path.join("block.log");
    let file = fs::File::create(&log).map_err(|e| e.to_string())?;
    let path = format!(
        "{}:{}",
        places.cargo_generate_dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", body])
        .current_dir(dir)
        .env("PATH", path)
        .env("CARGO_INSTALL_ROOT", &places.cargo_generate_dir)
        .env("CARGO_TARGET_DIR", root().join("target"))
        .env_remove("CARGO")
        .env_remove("RUSTFLAGS")
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(|e| e.to_string())?)
        .stderr(file)
        // Its own process group, so whatever it leaves running is stopped with it.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("bash: {e}"))?;
    let group = child.id();
    let deadline = Instant::now() + BLOCK_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    let mut output = String::new();
    fs::File::open(&log)
        .and_then(|mut file| file.read_to_string(&mut output))
        .map_err(|e| e.to_string())?;
    match status {
        Some(status) if status.success() => Ok(output),
        Some(status) => Err(format!("exited with {status}:\n{output}")),
        None => Err(format!(
            "still running after {} s:\n{output}",
            BLOCK_TIMEOUT.as_secs()
        )),
    }
}

/// The places blocks run in, made on first use.
struct Places {
    scratch: Scratch,
    cargo_generate_dir: PathBuf,
}

impl Places {
    fn new() -> Result<Self> {
        let newest = tools::cargo_generate_release(CargoGenerate::Newest)?;
        let cargo_generate_dir = newest
            .parent()
            .and_then(Path::parent)
            .ok_or("cargo-generate is not in a bin/ folder")?
            .to_owned();
        tools::jq()?;
        Ok(Self {
            scratch: Scratch::new("doc-commands")?,
            cargo_generate_dir,
        })
    }

    /// A fresh copy of `place` for one block.
    fn prepare(&self, place: &str) -> Result<PathBuf> {
        let dir = self.scratch.path.join(format!("place-{}", unique()));
        match place {
            "repository" => copy_repository(&dir)?,
            "home" => copy_repository(&dir.join("rust-microservice"))?,
            service => {
                let name = service.trim_start_matches("service ");
                copy_tree(&root().join("examples").join(name), &dir)?;
                share_lock(&dir)?;
                commit_all(&dir)?;
            }
        }
        Ok(dir)
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// This repository's files as a clone would have them (tracked and new files; no `target/`).
fn copy_repository(to: &Path) -> Result {
    let repo = root();
    let listed = git(
        &repo,
        &[
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
    )?;
    for path in listed.split('\0').filter(|path| !path.is_empty()) {
        let from = repo.join(path);
        if !from.is_file() {
            continue;
        }
        let dest = to.join(path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        fs::copy(&from, &dest).map_err(|e| format!("{}: {e}", from.display()))?;
    }
    commit_all(to)
}

/// A git repository at `dir` with everything in it committed, as a clone would be.
fn commit_all(dir: &Path) -> Result {
    git(dir, &["init", "--quiet"])?;
    git(dir, &["add", "--all"])?;
    git(
        dir,
        &[
            "-c",
            "user.name=doc-commands",
            "-c",
            "user.email=doc-commands@example.invalid",
            "commit",
            "--quiet",
            "--message",
            "as documented",
        ],
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_carry_the_marker_above_them() {
        let text = "Intro\n\n<!-- run in: service default; expect: alive -->\n```sh\ncurl x\n```\n\n<!-- not run by the tests: needs Docker -->\n```bash\ndocker ps\n```\n\n```sh\nls\n```\n\n```rust\nfn main() {}\n```\n\n<!-- not run by the tests: -->\n```sh\nls\n```\n";
        let blocks = blocks_of(text, "x.md");
        assert_eq!(blocks.len(), 4);
        assert!(
            matches!(&blocks[0].marker, Marker::Run { place, expect } if place == "service default" && expect == &["alive"])
        );
        assert_eq!(blocks[0].body, "curl x\n");
        assert!(matches!(blocks[1].marker, Marker::NotRun));
        assert!(matches!(blocks[2].marker, Marker::Missing(_)), "unmarked");
        assert!(matches!(blocks[3].marker, Marker::Missing(_)), "no reason");
        assert_eq!(blocks[2].at, "x.md:13");
    }
}
