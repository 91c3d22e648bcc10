//! `cargo xtask upgrade SERVICE [--to REVISION] [--from REVISION] [--allow-dirty]
//! [--dry-run]`: brings a service generated from this template up to a newer template,
//! keeping what its team changed.
//!
//! The service records what it was generated from (`template-answers.toml`): the template's
//! revision, its project name, the answers it was generated with (`[applied]`) and the ones
//! it wants (`[values]`, which the team edits). The command generates the service twice, with
//! the same name: `base` from the recorded revision with the applied answers, and `new` from
//! `REVISION` (by default this checkout's commit) with the wanted ones; then it merges
//! (`merge.rs`) what the template changed from `base` to `new` into the service. An answer
//! changed under `[values]` is thus an upgrade too: the option's files and wiring arrive
//! through the same merge, and `[applied]` follows.
//!
//! A release records its tag (`v0.2.0`); a service generated from a branch between releases
//! records the last tag with `+main` (`v0.2.0+main`), and its base is that release unless
//! `--from` names the exact commit.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::flags;
use crate::generate::{TEMPLATE_PARTS, copy_template, generate_from};
use crate::merge::{self, Action};
use crate::shell::{Result, git, read, root};
use crate::tools::CargoGenerate;
use crate::tree::Scratch;

/// The file a service records its template revision and answers in.
pub const ANSWERS: &str = "template-answers.toml";
/// The suffix of a revision recorded by a generation from a branch after that release.
pub const BRANCH_SUFFIX: &str = "+main";

pub mod check;

/// `cargo xtask upgrade`, with this repository as the template.
pub fn upgrade(flags: &flags::Upgrade) -> Result {
    upgrade_from(&root(), flags)
}

/// Upgrades `flags.service` with the template repository at `repo`.
pub fn upgrade_from(repo: &Path, flags: &flags::Upgrade) -> Result {
    let service = fs::canonicalize(&flags.service)
        .map_err(|e| format!("{}: {e}", flags.service.display()))?;
    let tracked = git(&service, &["ls-files", "-z", "--", "."])
        .map_err(|e| format!("{} is not in a git repository: {e}", service.display()))?;
    if !git(&service, &["status", "--porcelain", "--", "."])?
        .trim()
        .is_empty()
    {
        return Err(format!(
            "{} has uncommitted changes: commit or stash them first, so the upgrade can be reviewed and undone",
            service.display()
        ));
    }
    let recorded = read(&service.join(ANSWERS))?;
    let from = base_revision(repo, &recorded, flags.from.as_deref())?;
    // The name it was generated with; a package renamed since keeps its generated name here.
    let name = match toml_string(&recorded, "project") {
        Some(name) => name,
        None => toml_string(&read(&service.join("Cargo.toml"))?, "name")
            .ok_or("Cargo.toml names no package")?,
    };
    let to = match &flags.to {
        Some(revision) => recordable(repo, revision)?,
        None => checkout_revision(repo, flags.allow_dirty)?,
    };

    let scratch = Scratch::new("upgrade")?;
    let generated_with = scratch.path.join("base-answers.toml");
    fs::write(
        &generated_with,
        applied_answers(&service, &recorded, &from)?,
    )
    .map_err(|e| e.to_string())?;
    let template = Template {
        repo,
        scratch: &scratch,
        name: &name,
    };
    // The base records the revision the service records (a branch's `vX.Y.Z+main`, say), so
    // that line is no change of the team's.
    let recorded_revision = toml_string(&recorded, "revision");
    let base = template.generate(
        "base",
        Some(&from),
        &generated_with,
        recorded_revision.as_deref().unwrap_or(&from),
    )?;
    // Without --to, the checkout as it is (its uncommitted changes, with --allow-dirty).
    let new_revision = flags.to.as_deref().or(if flags.allow_dirty {
        None
    } else {
        Some(to.as_str())
    });
    let new = template.generate("new", new_revision, &service.join(ANSWERS), &to)?;

    let paths: Vec<String> = tracked
        .split('\0')
        .filter(|path| !path.is_empty())
        .map(str::to_owned)
        .collect();
    let outcomes = merge::plan(
        &crate::tree::snapshot(&base)?,
        &crate::tree::snapshot(&new)?,
        &merge::snapshot_of(&service, &paths)?,
        &merge::moves(&base, &new)?,
    )?;
    if !flags.dry_run {
        merge::apply(&service, &outcomes)?;
    }
    report(&outcomes, &from, &to, flags.dry_run)
}

/// The revision the service was generated from: `--from`, or what its answers file records
/// (for a generation from a branch, the release before it, with a warning).
fn base_revision(repo: &Path, recorded: &str, from: Option<&str>) -> Result<String> {
    if let Some(from) = from {
        return recordable(repo, from);
    }
    let revision = toml_string(recorded, "revision")
        .ok_or_else(|| format!("{ANSWERS} records no template revision: add `revision = \"vX.Y.Z\"` under [template], naming the release it was generated from, or pass --from"))?;
    match revision.strip_suffix(BRANCH_SUFFIX) {
        Some(release) => {
            println!(
                "note: generated from a branch after {release}, at a commit {ANSWERS} does not name; {release} is taken as the base, so changes the template made between {release} and that commit count as yours too (they merge cleanly where they match). --from COMMIT names the exact commit."
            );
            Ok(release.to_owned())
        }
        None => Ok(revision),
    }
}

/// The answers the service's files were generated with: its `[applied]` table (which
/// generations and upgrades keep in step), as a values file. A service generated before
/// the table existed: the answers file as the commit that recorded `revision` wrote it.
fn applied_answers(service: &Path, recorded: &str, revision: &str) -> Result<String> {
    if let Some(applied) = toml_table(recorded, "applied") {
        return Ok(format!("[values]\n{applied}"));
    }
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
    git(service, &["show", &format!("{commit}:./{ANSWERS}")])
}

/// Prints what the merge did (or would do), and fails when the team must decide something.
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
            Action::Move(from) => ("moved", format!(" (from {from}, with your changes)")),
            Action::Keep(why) => ("kept", format!(" ({why})")),
            Action::Orphan => (
                "orphaned",
                " (the template removed it, and you changed it: delete it, or move your changes where they now belong)".to_owned(),
            ),
            Action::Binary => (
                "conflicted",
                format!(
                    " (not text, changed on both sides: yours stays, the template's is {}.template-new)",
                    outcome.path
                ),
            ),
        };
        println!("  {would}{label:<10} {}{why}", outcome.path);
    }
    let count = |wanted: fn(&Action) -> bool| outcomes.iter().filter(|o| wanted(&o.action)).count();
    let attention = count(Action::needs_you);
    println!(
        "{} updated, {} merged, {} moved, {} added, {} removed, {} kept; {attention} to resolve",
        count(|a| *a == Action::Update),
        count(|a| *a == Action::Merge),
        count(|a| matches!(a, Action::Move(_))),
        count(|a| *a == Action::Add),
        count(|a| *a == Action::Remove),
        count(|a| matches!(a, Action::Keep(_))),
    );
    if attention > 0 {
        return Err(format!(
            "{attention} file(s) to resolve (listed above): resolve them, run the tests, then commit"
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
    let mut archive = Command::new("git")
        .current_dir(repo)
        .arg("archive")
        .arg(revision)
        .args(TEMPLATE_PARTS)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("git archive: {e}"))?;
    let output = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(to)
        .stdin(archive.stdout.take().ok_or("git archive has no output")?)
        .output()
        .map_err(|e| format!("tar: {e}"))?;
    let archived = archive
        .wait_with_output()
        .map_err(|e| format!("git archive: {e}"))?;
    if !archived.status.success() || !output.status.success() || !to.join("template").exists() {
        return Err(format!(
            "cannot read the template at revision {revision:?} in {}: {}{} (a tag needs `git fetch --tags`)",
            repo.display(),
            String::from_utf8_lossy(&archived.stderr).trim(),
            String::from_utf8_lossy(&output.stderr).trim(),
        ));
    }
    Ok(())
}

/// This checkout's commit. Its uncommitted template changes would be merged in but not
/// recorded, so they are refused unless `allow_dirty` says otherwise.
fn checkout_revision(repo: &Path, allow_dirty: bool) -> Result<String> {
    let head = git(repo, &["rev-parse", "HEAD"])?.trim().to_owned();
    let mut args = vec!["status", "--porcelain", "--"];
    args.extend(TEMPLATE_PARTS);
    if !git(repo, &args)?.trim().is_empty() {
        if !allow_dirty {
            return Err(format!(
                "the template in {} has uncommitted changes: commit them, or pass --allow-dirty to merge them in (the service then records {head}, which lacks them, and the next upgrade counts them as yours)",
                repo.display()
            ));
        }
        println!(
            "note: the template's uncommitted changes are merged in; the service records {head}"
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

/// The lines of `[name]` in a TOML file, up to the next table.
fn toml_table(text: &str, name: &str) -> Option<String> {
    let header = format!("[{name}]");
    let mut lines = text.lines().skip_while(|line| line.trim() != header);
    lines.next()?;
    let body: Vec<&str> = lines
        .take_while(|line| !line.trim_start().starts_with('['))
        .collect();
    Some(body.join("\n") + "\n")
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
        let file = "[template]\nrevision = \"v1\"\n\n[values]\nauth = \"oidc\"\n\n[applied]\nauth = \"none\"\n";
        assert_eq!(
            toml_table(file, "applied").as_deref(),
            Some("auth = \"none\"\n")
        );
        assert_eq!(
            toml_table(file, "values").as_deref(),
            Some("auth = \"oidc\"\n\n")
        );
        assert_eq!(toml_table(file, "missing"), None);
    }
}
