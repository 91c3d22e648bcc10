//! `cargo xtask upgrade SERVICE [--to REVISION] [--dry-run]`: brings a service generated
//! from this template up to a newer template, keeping what its team changed.
//!
//! The service records what it was generated from (`template-answers.toml`: the template's
//! revision, and the answers). The command generates the service twice, with the same name:
//! `base` from the recorded revision with the answers it was generated with, and `new` from
//! `REVISION` (by default this checkout, as it is) with the answers the file holds now; then
//! it merges (`merge.rs`) what the template changed from `base` to `new` into the service.
//! An answer changed in the file is thus an upgrade too: the option's files and wiring arrive
//! through the same merge.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::flags;
use crate::generate::{TEMPLATE_PARTS, copy_template, generate_from};
use crate::merge::{self, Action};
use crate::shell::{Result, root};
use crate::tools::CargoGenerate;
use crate::tree::Scratch;

/// The file a service records its template revision and answers in.
pub const ANSWERS: &str = "template-answers.toml";

pub mod check;

/// `cargo xtask upgrade`, with this repository as the template.
pub fn upgrade(flags: &flags::Upgrade) -> Result {
    upgrade_from(&root(), flags)
}

/// Upgrades `flags.service` with the template repository at `repo`.
pub fn upgrade_from(repo: &Path, flags: &flags::Upgrade) -> Result {
    let service = fs::canonicalize(&flags.service)
        .map_err(|e| format!("{}: {e}", flags.service.display()))?;
    let tracked = git(&service, &["ls-files", "-z"])
        .map_err(|e| format!("{} is not a git repository: {e}", service.display()))?;
    if !git(&service, &["status", "--porcelain"])?.trim().is_empty() {
        return Err(format!(
            "{} has uncommitted changes: commit or stash them first, so the upgrade can be reviewed and undone",
            service.display()
        ));
    }
    let recorded = fs::read_to_string(service.join(ANSWERS))
        .map_err(|e| format!("{}: {e}", service.join(ANSWERS).display()))?;
    let from = toml_string(&recorded, "revision")
        .ok_or_else(|| format!("{ANSWERS} records no template revision"))?;
    let name = toml_string(&read(&service.join("Cargo.toml"))?, "name")
        .ok_or("Cargo.toml names no package")?;
    let to = match &flags.to {
        Some(revision) => recordable(repo, revision)?,
        None => checkout_revision(repo)?,
    };

    let scratch = Scratch::new("upgrade")?;
    // What the service was generated with: the answers file as of the commit that recorded
    // the revision (its generation, or its last upgrade); later commits may change answers.
    let generated_with = scratch.path.join("base-answers.toml");
    fs::write(&generated_with, answers_when_recorded(&service, &from)?)
        .map_err(|e| e.to_string())?;
    let template = Template {
        repo,
        scratch: &scratch,
        name: &name,
    };
    let base = template.generate("base", Some(&from), &generated_with, &from)?;
    let new = template.generate("new", flags.to.as_deref(), &service.join(ANSWERS), &to)?;

    let paths: Vec<String> = tracked
        .split('\0')
        .filter(|path| !path.is_empty())
        .map(str::to_owned)
        .collect();
    let outcomes = merge::plan(
        &crate::tree::snapshot(&base)?,
        &crate::tree::snapshot(&new)?,
        &merge::snapshot_of(&service, &paths)?,
    )?;
    if !flags.dry_run {
        merge::apply(&service, &outcomes)?;
    }
    report(&outcomes, &from, &to, flags.dry_run)
}

/// Prints what the merge did (or would do), and fails when a file conflicts.
fn report(outcomes: &[merge::Outcome], from: &str, to: &str, dry_run: bool) -> Result {
    let would = if dry_run { "would be " } else { "" };
    println!("template {from} -> {to}");
    for outcome in outcomes {
        let (label, why) = match &outcome.action {
            Action::Update => ("updated", String::new()),
            Action::Merge => ("merged", String::new()),
            Action::Conflict => ("conflicted", " (resolve the <<<<<<< markers)".to_owned()),
            Action::Add => ("added", String::new()),
            Action::Remove => ("removed", String::new()),
            Action::Keep(why) => ("kept", format!(" ({why})")),
        };
        println!("  {would}{label:<10} {}{why}", outcome.path);
    }
    let count = |wanted: fn(&Action) -> bool| outcomes.iter().filter(|o| wanted(&o.action)).count();
    let conflicted = count(|a| *a == Action::Conflict);
    println!(
        "{} updated, {} merged, {conflicted} conflicted, {} added, {} removed, {} kept",
        count(|a| *a == Action::Update),
        count(|a| *a == Action::Merge),
        count(|a| *a == Action::Add),
        count(|a| *a == Action::Remove),
        count(|a| matches!(a, Action::Keep(_))),
    );
    if conflicted > 0 {
        return Err(format!(
            "{conflicted} file(s) conflict: resolve them, run the tests, then commit"
        ));
    }
    if !dry_run && !outcomes.is_empty() {
        println!("review with `git diff`, run the tests, then commit");
    }
    Ok(())
}

/// A template repository, and what the upgrade generates from it.
struct Template<'a> {
    repo: &'a Path,
    scratch: &'a Scratch,
    name: &'a str,
}

impl Template<'_> {
    /// Generates the service from the template at `revision` (the repository's working tree
    /// for `None`) with the answers in `answers`, recording `recorded_revision`.
    fn generate(
        &self,
        side: &str,
        revision: Option<&str>,
        answers: &Path,
        recorded_revision: &str,
    ) -> Result<PathBuf> {
        let source = self.scratch.path.join(format!("{side}-template"));
        match revision {
            Some(revision) => archive(self.repo, revision, &source)?,
            None => copy_template(self.repo, &source)?,
        }
        let define = format!("template_revision={recorded_revision}");
        generate_from(
            CargoGenerate::Oldest,
            &source,
            &self.scratch.path.join(side),
            self.name,
            Some(answers),
            &[define],
        )
    }
}

/// Extracts the template's files at `revision` of the repository `repo` into `to`.
fn archive(repo: &Path, revision: &str, to: &Path) -> Result {
    fs::create_dir_all(to).map_err(|e| e.to_string())?;
    let archive = Command::new("git")
        .current_dir(repo)
        .arg("archive")
        .arg(revision)
        .args(TEMPLATE_PARTS)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("git archive: {e}"))?;
    let output = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(to)
        .stdin(archive.stdout.ok_or("git archive has no output")?)
        .output()
        .map_err(|e| format!("tar: {e}"))?;
    if !output.status.success() || !to.join("template").exists() {
        return Err(format!(
            "cannot read the template at revision {revision:?} in {}: is it a tag or commit of that repository? (git fetch --tags)",
            repo.display()
        ));
    }
    Ok(())
}

/// This checkout's commit (its template files' uncommitted changes included in the upgrade).
fn checkout_revision(repo: &Path) -> Result<String> {
    let head = git(repo, &["rev-parse", "HEAD"])?.trim().to_owned();
    let mut args = vec!["status", "--porcelain", "--"];
    args.extend(TEMPLATE_PARTS);
    if !git(repo, &args)?.trim().is_empty() {
        println!(
            "note: the template has uncommitted changes; they are merged in, and the service records {head}"
        );
    }
    Ok(head)
}

/// What the service records for `revision`: a tag as it is, anything else (a branch moves)
/// as its commit.
fn recordable(repo: &Path, revision: &str) -> Result<String> {
    let tag = format!("refs/tags/{revision}");
    if git(repo, &["rev-parse", "--verify", "--quiet", &tag]).is_ok() {
        return Ok(revision.to_owned());
    }
    git(
        repo,
        &["rev-parse", "--verify", &format!("{revision}^{{commit}}")],
    )
    .map(|commit| commit.trim().to_owned())
    .map_err(|_| format!("{revision:?} is no tag or commit of {}", repo.display()))
}

/// The answers file of `service` as the commit that recorded `revision` wrote it.
fn answers_when_recorded(service: &Path, revision: &str) -> Result<String> {
    let pattern = format!("^revision = \"{}\"$", regex_escape(revision));
    let commit = git(
        service,
        &["log", "-n1", "--format=%H", "-G", &pattern, "--", ANSWERS],
    )?;
    let commit = commit.trim();
    if commit.is_empty() {
        return Err(format!(
            "no commit of the service records revision {revision} in {ANSWERS}: commit the generated service before upgrading it"
        ));
    }
    git(service, &["show", &format!("{commit}:{ANSWERS}")])
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.^$|?*+()[]{}".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// The string value of the first `key = "value"` line of a TOML file.
fn toml_string(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        (name.trim() == key).then(|| value.trim().trim_matches('"').to_owned())
    })
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_and_revisions_are_read() {
        let text = "# x\n[template]\nversion = \"0.2.0\"\nrevision = \"v0.2.0\"\n";
        assert_eq!(toml_string(text, "revision").as_deref(), Some("v0.2.0"));
        assert_eq!(toml_string(text, "name"), None);
        assert_eq!(regex_escape("v0.2.0"), "v0\\.2\\.0");
    }
}
