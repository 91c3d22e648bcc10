//! `cargo xtask release VERSION`: cuts a release of the template, so the services generated
//! from it record a version and a revision `cargo xtask upgrade` can check out.
//!
//! From a clean working tree, with entries under `## Unreleased` in `CHANGELOG.md`:
//! 1. `hooks/pre.rhai` records VERSION and the tag `vVERSION` as the template's revision;
//! 2. the changelog's `## Unreleased` becomes `## VERSION (date)`, under a new empty one;
//! 3. the examples are generated again (their `template-answers.toml` records the release);
//! 4. all of it is committed as `Release VERSION` and tagged `vVERSION`;
//! 5. a second commit records `vVERSION+main` again, for what is generated from the branch
//!    until the next release (`cargo xtask upgrade` takes the release as its base).
//!
//! Then push both: `git push origin HEAD vVERSION`.

use std::fs;
use std::path::Path;

use crate::generate::generate_examples;
use crate::shell::{Result, git, read, root};
use crate::upgrade::BRANCH_SUFFIX;

pub fn release(version: &str) -> Result {
    release_in(&root(), version, &today()?)
}

/// Cuts the release `version` of the template repository at `repo`, dated `date`.
pub fn release_in(repo: &Path, version: &str, date: &str) -> Result {
    let parsed = parse_version(version)
        .ok_or_else(|| format!("{version:?} is not a version such as 0.3.0 (MAJOR.MINOR.PATCH)"))?;
    if !git(repo, &["status", "--porcelain"])?.trim().is_empty() {
        return Err(
            "the working tree has uncommitted changes: a release is made from a commit".into(),
        );
    }
    let tag = format!("v{version}");
    if git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/tags/{tag}"),
        ],
    )
    .is_ok()
    {
        return Err(format!("the tag {tag} exists already"));
    }
    let hook_path = repo.join("hooks/pre.rhai");
    let hook = read(&hook_path)?;
    let current = between(&hook, "variable::set(\"template_version\", \"", "\"")
        .ok_or("hooks/pre.rhai sets no template_version")?;
    if parsed <= parse_version(current).unwrap_or_default() {
        return Err(format!(
            "{version} is not newer than the current version {current}"
        ));
    }
    let changelog_path = repo.join("CHANGELOG.md");
    let changelog = read(&changelog_path)?;
    let (before, unreleased) = changelog
        .split_once("## Unreleased\n")
        .ok_or("CHANGELOG.md has no `## Unreleased` section")?;
    let entries = unreleased.split("\n## ").next().unwrap_or_default();
    if !entries.lines().any(|line| line.starts_with("- ")) {
        return Err(
            "CHANGELOG.md lists nothing under `## Unreleased`: say what a service gains".into(),
        );
    }

    let released = replace_once(
        &hook,
        &format!("variable::set(\"template_version\", \"{current}\")"),
        &format!("variable::set(\"template_version\", \"{version}\")"),
    )?;
    let released = replace_once(
        &released,
        &revision_line(&format!("v{current}{BRANCH_SUFFIX}")),
        &revision_line(&tag),
    )?;
    fs::write(&hook_path, &released).map_err(|e| e.to_string())?;
    let changelog = format!("{before}## Unreleased\n\n## {version} ({date})\n{unreleased}");
    fs::write(&changelog_path, changelog).map_err(|e| e.to_string())?;
    commit_with_examples(repo, &format!("Release {version}"))?;
    git(repo, &["tag", &tag])?;

    let branch = replace_once(
        &released,
        &revision_line(&tag),
        &revision_line(&format!("{tag}{BRANCH_SUFFIX}")),
    )?;
    fs::write(&hook_path, branch).map_err(|e| e.to_string())?;
    commit_with_examples(
        repo,
        &format!("After {version}: generations from the branch record {tag}{BRANCH_SUFFIX}"),
    )?;
    println!("released {version}, tagged {tag}; push both: git push origin HEAD {tag}");
    Ok(())
}

/// The line of `hooks/pre.rhai` that records `revision` when a generation names none.
fn revision_line(revision: &str) -> String {
    format!("variable::set(\"template_revision\", \"{revision}\")")
}

/// `text` with its one `from` replaced, or an error naming what is missing.
fn replace_once(text: &str, from: &str, to: &str) -> Result<String> {
    if text.matches(from).count() != 1 {
        return Err(format!("hooks/pre.rhai does not hold `{from}` once"));
    }
    Ok(text.replacen(from, to, 1))
}

/// Generates the examples again and commits everything as `message`.
fn commit_with_examples(repo: &Path, message: &str) -> Result {
    generate_examples(repo)?;
    git(repo, &["add", "--all"])?;
    git(repo, &["commit", "--quiet", "-m", message]).map(drop)
}

fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text.split('.').map(|part| part.parse().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

/// The text between `start` and the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = from + text[from..].find(end)?;
    Some(&text[from..to])
}

/// Today's date, `YYYY-MM-DD`, from `date` (the one thing the standard library lacks).
fn today() -> Result<String> {
    let output = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map_err(|e| format!("date: {e}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_three_numbers() {
        assert_eq!(parse_version("0.3.10"), Some((0, 3, 10)));
        assert!(parse_version("0.3").is_none() && parse_version("v0.3.0").is_none());
        assert!(parse_version("0.10.0") > parse_version("0.9.9"));
        assert_eq!(between("a \"x\" b", "a \"", "\""), Some("x"));
    }
}
