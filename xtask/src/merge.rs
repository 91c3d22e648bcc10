//! A three-way merge of file trees, for upgrading a generated service: `base` is what the
//! template gave the service, `new` what it gives now, `ours` the service as its team has it.
//!
//! Per file: what only the template changed is taken; what only the team changed is kept;
//! what both changed is merged line by line with `git merge-file`, with conflict markers
//! where the changes overlap. A file the template added is added, and one it removed is
//! removed, unless the team changed it: then the team decides, and the upgrade fails until it
//! has. A file the template moved (`git diff --find-renames` between its two versions) moves
//! with the team's changes merged in.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::shell::Result;
use crate::tree::{File, Scratch, Snapshot, read};

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
    /// The team removed it and the template changed it: it stays removed.
    Keep(&'static str),
    /// The template removed (or moved) it and the team changed it: the team's version stays,
    /// and the team must decide.
    Orphan,
    /// Both changed a file that is not text: the team's version stays, the template's is
    /// written beside it as `PATH.template-new`.
    Binary,
    /// The template moved it from the path it names: the team's version is merged into the
    /// new path, and the old one removed.
    Move(String),
}

impl Action {
    /// Whether the team must act before the upgrade is done.
    pub fn needs_you(&self) -> bool {
        matches!(self, Self::Conflict | Self::Orphan | Self::Binary)
    }
}

/// One file's outcome: its path, the action, and the bytes and mode to write (`None`:
/// remove, or leave as it is).
pub struct Outcome {
    pub path: String,
    pub action: Action,
    pub contents: Option<(Vec<u8>, bool)>,
}

/// Plans the merge of every file that `base`, `new` or `ours` holds; `moves` maps the paths
/// the template moved (from `base` to `new`) to their new paths. Files unchanged by the
/// template are left out: nothing happens to them.
pub fn plan(
    base: &Snapshot,
    new: &Snapshot,
    ours: &Snapshot,
    moves: &BTreeMap<String, String>,
) -> Result<Vec<Outcome>> {
    let scratch = Scratch::new("merge")?;
    let mut outcomes = Vec::new();
    // A moved file the team still has at its old path (and not yet at the new one): merged
    // into the new path, the old one removed.
    let mut moved_here = BTreeMap::new();
    for (from, to) in moves {
        if let (Some(b), Some(n), Some(o), None) =
            (base.get(from), new.get(to), ours.get(from), ours.get(to))
        {
            moved_here.insert(to.clone(), (b, o));
            let contents = if b == o {
                Some((n.contents.clone(), n.executable))
            } else {
                let (merged, clean) =
                    merge_file(&scratch, to, &b.contents, &n.contents, &o.contents)?;
                if !clean {
                    outcomes.push(Outcome {
                        path: to.clone(),
                        action: Action::Conflict,
                        contents: Some((merged, executable(Some(b), n, o))),
                    });
                    None
                } else {
                    Some((merged, executable(Some(b), n, o)))
                }
            };
            if let Some(contents) = contents {
                outcomes.push(Outcome {
                    path: to.clone(),
                    action: Action::Move(from.clone()),
                    contents: Some(contents),
                });
            }
            outcomes.push(Outcome {
                path: from.clone(),
                action: Action::Remove,
                contents: None,
            });
        }
    }
    let moved_from: BTreeSet<&String> = moves
        .iter()
        .filter(|(_, to)| moved_here.contains_key(*to))
        .map(|(from, _)| from)
        .collect();
    let paths: BTreeSet<&String> = base.keys().chain(new.keys()).chain(ours.keys()).collect();
    for path in paths {
        if moved_from.contains(path) || moved_here.contains_key(path) {
            continue;
        }
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
            (Some(_), None, Some(_)) => outcome(Action::Orphan, None),
            // Both sides changed it (or added it, differently): merge line by line.
            (b, Some(n), Some(o)) => {
                if [b.map(|b| &b.contents), Some(&n.contents), Some(&o.contents)]
                    .into_iter()
                    .flatten()
                    .any(|bytes| bytes.contains(&0))
                {
                    outcome(Action::Binary, Some((n.contents.clone(), n.executable)))
                } else {
                    let empty = Vec::new();
                    let base_bytes = b.map_or(&empty, |b| &b.contents);
                    let (merged, clean) =
                        merge_file(&scratch, path, base_bytes, &n.contents, &o.contents)?;
                    let action = if clean {
                        Action::Merge
                    } else {
                        Action::Conflict
                    };
                    outcome(action, Some((merged, executable(b, n, o))))
                }
            }
            (None, None, _) | (_, None, None) => continue,
        });
    }
    outcomes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(outcomes)
}

/// The executable bit of a merged file: the team's, if the team changed it; else the
/// template's (so either side can turn it off).
fn executable(base: Option<&File>, new: &File, ours: &File) -> bool {
    match base {
        Some(base) if base.executable != ours.executable => ours.executable,
        Some(_) => new.executable,
        None => ours.executable || new.executable,
    }
}

/// The files the template moved from `base` to `new`, old path to new path, as
/// `git diff --find-renames` sees them (similar content, not only identical).
pub fn moves(base: &Path, new: &Path) -> Result<BTreeMap<String, String>> {
    let output = Command::new("git")
        .args([
            "diff",
            "--no-index",
            "--find-renames",
            "--name-status",
            "-z",
        ])
        .arg(base)
        .arg(new)
        .output()
        .map_err(|e| format!("git diff: {e}"))?;
    // Exit status 1: there are differences.
    if !matches!(output.status.code(), Some(0 | 1)) {
        return Err(format!(
            "git diff --no-index: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let strip = |path: &str, dir: &Path| -> Option<String> {
        let dir = format!("{}/", dir.display());
        path.strip_prefix(dir.trim_start_matches('/'))
            .or_else(|| path.strip_prefix(&dir))
            .map(str::to_owned)
    };
    let mut fields = text.split('\0');
    let mut moves = BTreeMap::new();
    while let Some(status) = fields.next() {
        if status.starts_with('R') {
            let (Some(from), Some(to)) = (fields.next(), fields.next()) else {
                break;
            };
            if let (Some(from), Some(to)) = (strip(from, base), strip(to, new)) {
                moves.insert(from, to);
            }
        } else if !status.is_empty() {
            fields.next();
        }
    }
    Ok(moves)
}

/// Writes the outcomes into the service at `dir`.
pub fn apply(dir: &Path, outcomes: &[Outcome]) -> Result {
    for outcome in outcomes {
        let path = dir.join(&outcome.path);
        match (&outcome.action, &outcome.contents) {
            (Action::Binary, Some((contents, _))) => {
                let beside = dir.join(format!("{}.template-new", outcome.path));
                fs::write(&beside, contents).map_err(|e| format!("{}: {e}", beside.display()))?;
            }
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
/// merged without a conflict.
fn merge_file(
    scratch: &Scratch,
    path: &str,
    base: &[u8],
    new: &[u8],
    ours: &[u8],
) -> Result<(Vec<u8>, bool)> {
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
    // Its exit status is the number of conflicts (at most 127); an error is -1, which the
    // shell sees as 255.
    match output.status.code() {
        Some(0) => Ok((output.stdout, true)),
        Some(1..=127) => Ok((output.stdout, false)),
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
        let outcomes = plan(&base, &new, &ours, &BTreeMap::new()).unwrap();
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

    fn file(text: &[u8], executable: bool) -> File {
        File {
            contents: text.to_vec(),
            executable,
        }
    }

    fn actions(outcomes: &[Outcome]) -> Vec<(&str, &Action)> {
        outcomes
            .iter()
            .map(|o| (o.path.as_str(), &o.action))
            .collect()
    }

    #[test]
    fn either_side_can_change_the_executable_bit() {
        let base = Snapshot::from([
            ("run.sh".to_owned(), file(b"a\nb\nc\n", true)),
            ("tool.sh".to_owned(), file(b"a\nb\nc\n", false)),
        ]);
        // The template drops +x from run.sh; the team adds it to tool.sh; both edit both.
        let new = Snapshot::from([
            ("run.sh".to_owned(), file(b"A\nb\nc\n", false)),
            ("tool.sh".to_owned(), file(b"A\nb\nc\n", false)),
        ]);
        let ours = Snapshot::from([
            ("run.sh".to_owned(), file(b"a\nb\nC\n", true)),
            ("tool.sh".to_owned(), file(b"a\nb\nC\n", true)),
        ]);
        let outcomes = plan(&base, &new, &ours, &BTreeMap::new()).unwrap();
        let bits: Vec<(&str, bool)> = outcomes
            .iter()
            .map(|o| (o.path.as_str(), o.contents.as_ref().unwrap().1))
            .collect();
        assert_eq!(bits, [("run.sh", false), ("tool.sh", true)]);
    }

    #[test]
    fn what_the_team_must_decide_is_flagged() {
        let base = Snapshot::from([
            ("logo.png".to_owned(), file(b"\0base", false)),
            ("old.rs".to_owned(), file(b"old\n", false)),
            ("unwanted.rs".to_owned(), file(b"u\n", false)),
        ]);
        let new = Snapshot::from([
            ("logo.png".to_owned(), file(b"\0template", false)),
            ("unwanted.rs".to_owned(), file(b"u2\n", false)),
        ]);
        let ours = Snapshot::from([
            ("logo.png".to_owned(), file(b"\0team", false)),
            ("old.rs".to_owned(), file(b"old, and ours\n", false)),
        ]);
        let outcomes = plan(&base, &new, &ours, &BTreeMap::new()).unwrap();
        assert_eq!(
            actions(&outcomes),
            [
                ("logo.png", &Action::Binary),
                ("old.rs", &Action::Orphan),
                (
                    "unwanted.rs",
                    &Action::Keep("you removed it; the template changed it")
                ),
            ]
        );
        assert!(outcomes[0].action.needs_you() && outcomes[1].action.needs_you());
        assert!(!outcomes[2].action.needs_you());
        assert_eq!(outcomes[0].contents.as_ref().unwrap().0, b"\0template");
    }

    #[test]
    fn a_moved_file_takes_the_teams_changes_along() {
        let text = "1\n2\n3\n4\n5\n6\n";
        let base = tree(&[("src/users.rs", text)]);
        let new = tree(&[("src/users/mod.rs", "1\n2\n3\n4\n5\nsix\n")]);
        let ours = tree(&[("src/users.rs", "one\n2\n3\n4\n5\n6\n")]);
        let moves = BTreeMap::from([("src/users.rs".to_owned(), "src/users/mod.rs".to_owned())]);
        let outcomes = plan(&base, &new, &ours, &moves).unwrap();
        assert_eq!(
            actions(&outcomes),
            [
                ("src/users.rs", &Action::Remove),
                ("src/users/mod.rs", &Action::Move("src/users.rs".to_owned())),
            ]
        );
        let merged = &outcomes[1].contents.as_ref().unwrap().0;
        assert_eq!(String::from_utf8_lossy(merged), "one\n2\n3\n4\n5\nsix\n");
    }

    #[test]
    fn moves_are_found_between_two_trees() {
        let scratch = Scratch::new("moves").unwrap();
        let (base, new) = (scratch.path.join("base"), scratch.path.join("new"));
        let body: String = (0..40).map(|i| format!("line {i}\n")).collect();
        fs::create_dir_all(&base).unwrap();
        fs::create_dir_all(new.join("src/users")).unwrap();
        fs::write(base.join("users.rs"), &body).unwrap();
        fs::write(
            new.join("src/users/mod.rs"),
            body.replace("line 3\n", "line three\n"),
        )
        .unwrap();
        fs::write(base.join("same.rs"), "x\n").unwrap();
        fs::write(new.join("same.rs"), "x\n").unwrap();
        assert_eq!(
            moves(&base, &new).unwrap(),
            BTreeMap::from([("users.rs".to_owned(), "src/users/mod.rs".to_owned())])
        );
    }
}
