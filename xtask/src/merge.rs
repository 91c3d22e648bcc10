//! A three-way merge of file trees, for upgrading a generated service: `base` is what the
//! template gave the service, `new` what it gives now, `ours` the service as its team has it.
//!
//! Per file: what only the template changed is taken; what only the team changed is kept;
//! what both changed is merged line by line with `git merge-file`, with conflict markers
//! where the changes overlap. A file the template added is added, and one it removed is
//! removed, unless the team changed it.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::shell::Result;
use crate::tree::{Scratch, Snapshot, read};

/// What the merge does to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Only the template changed it: the template's version.
    Update,
    /// Both changed it, and the changes merge cleanly.
    Merge,
    /// Both changed it where they overlap: the merge, with conflict markers.
    Conflict,
    /// The template added it.
    Add,
    /// The template removed it, and the team had not changed it.
    Remove,
    /// The team's version stays (the template changed it too, but the team removed it, or
    /// the template removed it and the team changed it), with why.
    Keep(&'static str),
}

/// One file's outcome: its path, the action, and the bytes and mode to write (`None`:
/// remove, or leave as it is).
pub struct Outcome {
    pub path: String,
    pub action: Action,
    pub contents: Option<(Vec<u8>, bool)>,
}

/// Plans the merge of every file that `base`, `new` or `ours` holds. Files unchanged by the
/// template are left out: nothing happens to them.
pub fn plan(base: &Snapshot, new: &Snapshot, ours: &Snapshot) -> Result<Vec<Outcome>> {
    let paths: BTreeSet<&String> = base.keys().chain(new.keys()).chain(ours.keys()).collect();
    let scratch = Scratch::new("merge")?;
    let mut outcomes = Vec::new();
    for path in paths {
        let (b, n, o) = (base.get(path), new.get(path), ours.get(path));
        if b == n || n == o {
            // The template changed nothing here, or the team already has its version.
            continue;
        }
        let outcome = |action, contents| Outcome {
            path: path.clone(),
            action,
            contents,
        };
        outcomes.push(match (b, n, o) {
            // The team has the base version: take the template's, whatever it is.
            (Some(_), Some(n), Some(o)) if b == Some(o) => {
                outcome(Action::Update, Some((n.contents.clone(), n.executable)))
            }
            (Some(b), None, Some(o)) if b == o => outcome(Action::Remove, None),
            (None, Some(n), None) => outcome(Action::Add, Some((n.contents.clone(), n.executable))),
            (Some(_), Some(_), None) => outcome(
                Action::Keep("you removed it; the template changed it"),
                None,
            ),
            (Some(_), None, Some(_)) => outcome(
                Action::Keep("the template removed it; you changed it"),
                None,
            ),
            // Both sides changed it (or added it, differently): merge line by line.
            (b, Some(n), Some(o)) => {
                let empty = Vec::new();
                let base_bytes = b.map_or(&empty, |b| &b.contents);
                let (merged, clean) =
                    merge_file(&scratch, path, base_bytes, &n.contents, &o.contents)?;
                let action = if clean {
                    Action::Merge
                } else {
                    Action::Conflict
                };
                outcome(action, Some((merged, o.executable || n.executable)))
            }
            (None, None, _) | (_, None, None) => continue,
        });
    }
    Ok(outcomes)
}

/// Writes the outcomes into the service at `dir`.
pub fn apply(dir: &Path, outcomes: &[Outcome]) -> Result {
    for outcome in outcomes {
        let path = dir.join(&outcome.path);
        match (&outcome.action, &outcome.contents) {
            (Action::Remove, _) => {
                fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            (_, Some((contents, executable))) => {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                }
                fs::write(&path, contents).map_err(|e| format!("{}: {e}", path.display()))?;
                set_executable(&path, *executable)?;
            }
            (_, None) => {}
        }
    }
    Ok(())
}

#[cfg(unix)]
fn set_executable(path: &Path, executable: bool) -> Result {
    use std::os::unix::fs::PermissionsExt;
    let mode = if executable { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())
}

#[cfg(not(unix))]
fn set_executable(_: &Path, _: bool) -> Result {
    Ok(())
}

/// `git merge-file` of `ours` with `new`, from `base`: the merged bytes, and whether they
/// merged without a conflict. A file that is not text is a conflict, left as the team has it.
fn merge_file(
    scratch: &Scratch,
    path: &str,
    base: &[u8],
    new: &[u8],
    ours: &[u8],
) -> Result<(Vec<u8>, bool)> {
    if [base, new, ours].iter().any(|bytes| bytes.contains(&0)) {
        return Ok((ours.to_vec(), false));
    }
    let write = |name: &str, bytes: &[u8]| -> Result<std::path::PathBuf> {
        let file = scratch.path.join(name);
        fs::write(&file, bytes).map_err(|e| e.to_string())?;
        Ok(file)
    };
    let (o, b, n) = (
        write("ours", ours)?,
        write("base", base)?,
        write("new", new)?,
    );
    let output = Command::new("git")
        .args(["merge-file", "-p", "-L"])
        .arg(format!("yours: {path}"))
        .args(["-L", "template before"])
        .args(["-L", "template now"])
        .args([&o, &b, &n])
        .output()
        .map_err(|e| format!("git merge-file: {e}"))?;
    // Its exit status is the number of conflicts; negative on an error.
    match output.status.code() {
        Some(0) => Ok((output.stdout, true)),
        Some(code) if code > 0 => Ok((output.stdout, false)),
        _ => Err(format!(
            "git merge-file failed on {path}: {}",
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

/// The files `paths` of `dir` (a service's tracked files; its `target/` is not read).
pub fn snapshot_of(dir: &Path, paths: &[String]) -> Result<Snapshot> {
    paths
        .iter()
        .filter(|path| dir.join(path).is_file())
        .map(|path| Ok((path.clone(), read(&dir.join(path))?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::File;

    fn tree(files: &[(&str, &str)]) -> Snapshot {
        files
            .iter()
            .map(|(path, text)| {
                let file = File {
                    contents: text.as_bytes().to_vec(),
                    executable: false,
                };
                ((*path).to_owned(), file)
            })
            .collect()
    }

    #[test]
    fn each_side_keeps_its_own_changes() {
        let base = tree(&[
            ("a", "1\n2\n3\n"),
            ("only-template", "x\n"),
            ("only-team", "y\n"),
            ("gone", "g\n"),
            ("both", "1\n2\n3\n4\n5\n"),
            ("clash", "1\n"),
        ]);
        let new = tree(&[
            ("a", "1\n2\n3\n"),
            ("only-template", "x2\n"),
            ("only-team", "y\n"),
            ("added", "new\n"),
            ("both", "one\n2\n3\n4\n5\n"),
            ("clash", "template\n"),
        ]);
        let ours = tree(&[
            ("a", "1\n2\n3\n"),
            ("only-template", "x\n"),
            ("only-team", "mine\n"),
            ("gone", "g\n"),
            ("both", "1\n2\n3\n4\nfive\n"),
            ("clash", "team\n"),
        ]);
        let outcomes = plan(&base, &new, &ours).unwrap();
        let actions: Vec<(&str, &Action)> = outcomes
            .iter()
            .map(|o| (o.path.as_str(), &o.action))
            .collect();
        assert_eq!(
            actions,
            [
                ("added", &Action::Add),
                ("both", &Action::Merge),
                ("clash", &Action::Conflict),
                ("gone", &Action::Remove),
                ("only-template", &Action::Update),
            ]
        );
        let merged = &outcomes[1].contents.as_ref().unwrap().0;
        assert_eq!(String::from_utf8_lossy(merged), "one\n2\n3\n4\nfive\n");
        let clash = String::from_utf8_lossy(&outcomes[2].contents.as_ref().unwrap().0).into_owned();
        assert!(
            clash.contains("<<<<<<< yours: clash") && clash.contains(">>>>>>> template now"),
            "{clash}"
        );
    }
}
