//! What a team deletes on day one: the sample routes (`src/api.rs`), or the users module with
//! the database kept. In a scratch copy of the default example each goes, with the lines that
//! name it, and the OpenAPI document is exported again, as a team would do; the service's
//! tests must then compile and pass with no other change.

use std::fs;

use crate::shell::{Result, cargo_in, root, run, share_lock};
use crate::tree::{Scratch, copy_tree};

/// A module a team may delete, and what names it elsewhere.
struct Removal {
    what: &'static str,
    /// Files and folders that go.
    paths: &'static [&'static str],
    /// By file, the line that names the module; the `#[cfg(...)]` line above it goes too.
    lines: &'static [(&'static str, &'static str)],
}

const REMOVALS: [Removal; 2] = [
    Removal {
        what: "the sample routes (src/api.rs)",
        paths: &["src/api.rs", "tests/api/sample.rs"],
        lines: &[
            ("src/lib.rs", "pub mod api;"),
            ("src/server.rs", "crate::api::routes,"),
            (
                "src/openapi.rs",
                "document.merge(crate::api::ApiDoc::openapi());",
            ),
            ("tests/api/main.rs", "mod sample;"),
        ],
    },
    Removal {
        what: "the users module, the database kept",
        paths: &["src/users", "tests/api/users.rs"],
        lines: &[
            ("src/lib.rs", "pub mod users;"),
            ("src/server.rs", "crate::users::routes,"),
            (
                "src/openapi.rs",
                "document.merge(crate::users::ApiDoc::openapi());",
            ),
            ("tests/api/main.rs", "mod users;"),
        ],
    },
];

pub fn check() -> Result {
    for removal in &REMOVALS {
        let scratch = Scratch::new("removal")?;
        let service = scratch.path.join("default-service");
        copy_tree(&root().join("examples/default"), &service)?;
        share_lock(&service)?;
        for path in removal.paths {
            let path = service.join(path);
            if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            }
            .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        for (file, line) in removal.lines {
            let path = service.join(file);
            let text = fs::read_to_string(&path).map_err(|e| format!("{file}: {e}"))?;
            fs::write(
                &path,
                without_line(&text, line).ok_or(format!("{file}: no `{line}`"))?,
            )
            .map_err(|e| e.to_string())?;
        }
        let exported = cargo_in(&service)
            .args(["run", "--quiet", "--bin", "openapi"])
            .output()
            .map_err(|e| e.to_string())?;
        if !exported.status.success() {
            return Err(format!(
                "without {}, `cargo run --bin openapi` failed:\n{}",
                removal.what,
                String::from_utf8_lossy(&exported.stderr)
            ));
        }
        fs::write(service.join("openapi.json"), &exported.stdout).map_err(|e| e.to_string())?;
        run(cargo_in(&service).args(["test", "--quiet"]))
            .map_err(|e| format!("without {}: {e}", removal.what))?;
        println!(
            "examples/default without {}: it builds and its tests pass",
            removal.what
        );
    }
    Ok(())
}

/// `text` without the line that is `line` once trimmed, nor the `#[cfg(...)]` line just
/// above it; `None` if no line is `line`.
fn without_line(text: &str, line: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| l.trim() == line)?;
    let from = if at > 0 && lines[at - 1].trim().starts_with("#[cfg(") {
        at - 1
    } else {
        at
    };
    let mut kept: Vec<&str> = lines[..from].to_vec();
    kept.extend_from_slice(&lines[at + 1..]);
    Some(kept.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_goes_with_its_cfg_attribute() {
        let text = "a\n#[cfg(feature = \"auth\")]\npub mod api;\nb\n";
        assert_eq!(without_line(text, "pub mod api;").unwrap(), "a\nb\n");
        assert_eq!(without_line("x\n    mod y;\n", "mod y;").unwrap(), "x\n");
        assert_eq!(without_line(text, "pub mod users;"), None);
    }
}
