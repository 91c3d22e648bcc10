//! What every task uses, as a shell script would: the repository root, the error type (a
//! message for `xtask: ...`), running a command and failing when it fails, and a heading
//! for each section of a long task.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

pub type Result<T = ()> = std::result::Result<T, String>;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_owned()
}

/// The cargo that runs xtask (`$CARGO`), or the one on PATH.
pub fn cargo_program() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A cargo command run in the repository root.
pub fn cargo() -> Command {
    let mut command = Command::new(cargo_program());
    command.current_dir(root());
    command
}

/// Gives `dir`, a Rust project outside the workspace (a generated service, a copy of an
/// example), this repository's lock file: the versions the examples are checked with.
pub fn share_lock(dir: &Path) -> Result {
    std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock"))
        .map(drop)
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// A cargo command run in `dir`, a project outside the workspace, building into this
/// repository's target directory, so that only the project itself is compiled.
pub fn cargo_in(dir: &Path) -> Command {
    let mut command = cargo();
    command
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", root().join("target"));
    command
}

/// Runs `command`, its output shown as it comes; fails unless it exits 0.
pub fn run(command: &mut Command) -> Result {
    let status = command
        .status()
        .map_err(|e| format!("{:?}: {e}", command.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed: {status}", command.get_program()))
    }
}

/// Announces the next part of a long task.
pub fn section(title: &str) {
    println!("\n==> {title}");
}

/// The text of the file at `path`, or an error naming it.
pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// `git ARGS` in `dir`: its standard output, or its error.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|e| format!("git: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
