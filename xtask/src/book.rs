//! `cargo xtask book`: builds the guide in `docs/` with a pinned mdBook, into `target/book`.
//!
//! The book shows the template's code by including it from the generated examples, so it
//! cannot drift from what `cargo generate` produces. The build fails on anything that would
//! let a reader see stale, missing or misleading content:
//!
//! - an `{{#include}}` whose file or anchor is missing (mdBook itself includes nothing and
//!   says nothing for a missing anchor), a line-number range (it would silently show other
//!   lines once the file changes), or a whole file that holds anchors (they would show);
//! - any warning or error mdBook prints;
//! - a relative link or `#fragment` in the rendered HTML that leads nowhere, or out of the
//!   book. External links are not followed: the build needs no network.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::{Result, root, run, walk};

/// The mdBook release the book is built with. 0.5.4 builds with Rust 1.88 and later.
const MDBOOK_VERSION: &str = "0.5.4";

/// Pages mdBook derives from the chapters, with links of their own kind: `print.html`
/// repeats every chapter on one page, `404.html` resolves links against the site's root.
const DERIVED_PAGES: [&str; 2] = ["print.html", "404.html"];

pub fn build() -> Result {
    let book = root().join("docs");
    let output = root().join("target/book");

    let mut problems = Vec::new();
    for chapter in walk(&book.join("src"))? {
        if chapter.extension() == Some(OsStr::new("md")) {
            problems.extend(check_includes(&chapter)?);
        }
    }
    fail_on(&problems, "the book's includes")?;

    // A page left over from an earlier build must not satisfy a link.
    if output.exists() {
        fs::remove_dir_all(&output).map_err(|e| format!("{}: {e}", output.display()))?;
    }
    let built = Command::new(mdbook()?)
        .arg("build")
        .arg(&book)
        .arg("--dest-dir")
        .arg(&output)
        .env("NO_COLOR", "1")
        .output()
        .map_err(|e| format!("mdbook: {e}"))?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    print!("{log}");
    if !built.status.success() {
        return Err(format!("mdbook build failed: {}", built.status));
    }
    let complaints: Vec<String> = log
        .lines()
        .map(without_colours)
        .filter(|line| {
            line.split_whitespace()
                .any(|word| word == "WARN" || word == "ERROR")
        })
        .collect();
    fail_on(&complaints, "mdbook's warnings")?;

    fail_on(&check_links(&output)?, "the book's links")?;
    println!("the book is in {}", output.join("index.html").display());
    Ok(())
}

/// `line` without ANSI colour sequences (`ESC [ ... m`), in case mdBook colours its levels.
fn without_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            plain.push(c);
        }
    }
    plain
}

fn fail_on(problems: &[String], what: &str) -> Result {
    if problems.is_empty() {
        return Ok(());
    }
    for problem in problems {
        eprintln!("book: {problem}");
    }
    Err(format!("{} problem(s) in {what}", problems.len()))
}

/// The pinned mdBook: one already on PATH if it is that version, else installed.
fn mdbook() -> Result<PathBuf> {
    let tools = root().join("target/xtask-tools");
    let installed = tools.join("bin/mdbook");
    for candidate in [PathBuf::from("mdbook"), installed.clone()] {
        let version = Command::new(&candidate).arg("--version").output();
        // It prints "mdbook vX.Y.Z".
        if version.is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .ends_with(&format!(" v{MDBOOK_VERSION}"))
        }) {
            return Ok(candidate);
        }
    }
    println!("installing mdbook {MDBOOK_VERSION} (about 3 minutes, once)");
    // Without the `serve` and `watch` features: the build needs neither a web server nor a
    // file watcher, and they are half of mdBook's dependencies.
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["install", "--locked", "--quiet", "--root"])
            .arg(&tools)
            .args(["--no-default-features", "--features", "search"])
            .arg(format!("mdbook@{MDBOOK_VERSION}")),
    )?;
    Ok(installed)
}

/// Every `{{#include path}}` or `{{#include path:anchor}}` of a chapter must name a file
/// that exists and, with an anchor, an anchor that it holds.
fn check_includes(chapter: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(chapter).map_err(|e| format!("{}: {e}", chapter.display()))?;
    let dir = chapter.parent().expect("a chapter is in a directory");
    let name = chapter
        .strip_prefix(root())
        .unwrap_or(chapter)
        .display()
        .to_string();
    let mut problems = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("{{#") {
        let escaped = rest[..start].ends_with('\\');
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else {
            problems.push(format!("{name}: an unclosed {{{{# directive"));
            break;
        };
        let directive = after[..end].trim();
        rest = &after[end + 2..];
        if escaped {
            continue;
        }
        let Some(target) = directive.strip_prefix("include ") else {
            problems.push(format!(
                "{name}: {{{{#{directive}}}}}: only {{{{#include}}}} is used in this book"
            ));
            continue;
        };
        let target = target.trim();
        let (path, selector) = target.split_once(':').unwrap_or((target, ""));
        let shown = format!("{name}: {{{{#include {target}}}}}");
        let Ok(included) = fs::read_to_string(dir.join(path)) else {
            problems.push(format!("{shown}: no such file"));
            continue;
        };
        if selector.is_empty() {
            if included
                .lines()
                .any(|line| anchor_in(line, "ANCHOR:").is_some())
            {
                problems.push(format!(
                    "{shown}: the file holds anchors, which would show; include one of them"
                ));
            }
        } else if selector.starts_with(|c: char| c.is_ascii_digit() || c == ':') {
            problems.push(format!(
                "{shown}: line numbers show other lines once the file changes; add an anchor"
            ));
        } else if let Err(problem) = anchored_lines(&included, selector) {
            problems.push(format!("{shown}: {problem}"));
        }
    }
    Ok(problems)
}

/// The anchor a line opens or closes, as mdBook reads it: `marker` then a name made of
/// letters, digits, `_` and `-`, anywhere in the line.
fn anchor_in<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let after = &line[line.find(marker)? + marker.len()..];
    let name = after.trim_start();
    let end = name
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(name.len());
    Some(&name[..end]).filter(|name| !name.is_empty())
}

/// Checks that `anchor` opens once, closes after, and holds at least one line.
fn anchored_lines(text: &str, anchor: &str) -> std::result::Result<(), String> {
    let lines: Vec<&str> = text.lines().collect();
    let position = |marker: &str| {
        let found: Vec<usize> = (0..lines.len())
            .filter(|&i| anchor_in(lines[i], marker) == Some(anchor))
            .collect();
        match found.as_slice() {
            [] => Err(format!("no `{marker} {anchor}` line")),
            [one] => Ok(*one),
            _ => Err(format!("`{marker} {anchor}` appears more than once")),
        }
    };
    let (start, end) = (position("ANCHOR:")?, position("ANCHOR_END:")?);
    let content = lines
        .get(start + 1..end)
        .unwrap_or_default()
        .iter()
        .filter(|line| !line.contains("ANCHOR:") && !line.contains("ANCHOR_END:"))
        .count();
    if content == 0 {
        return Err(format!("anchor {anchor} holds no lines"));
    }
    Ok(())
}

/// Every relative `href` of the rendered book must reach a file inside it, and its
/// `#fragment` an element with that `id`.
fn check_links(output: &Path) -> Result<Vec<String>> {
    let pages: Vec<PathBuf> = walk(output)?
        .into_iter()
        .filter(|path| path.extension() == Some(OsStr::new("html")))
        .collect();
    let mut ids: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for page in &pages {
        let html = fs::read_to_string(page).map_err(|e| format!("{}: {e}", page.display()))?;
        ids.insert(
            page.clone(),
            attribute_values(&html, "id").into_iter().collect(),
        );
    }
    let mut problems = Vec::new();
    for page in &pages {
        let name = page.strip_prefix(output).unwrap_or(page).display();
        if DERIVED_PAGES.iter().any(|derived| page.ends_with(derived)) {
            continue;
        }
        let html = fs::read_to_string(page).map_err(|e| format!("{}: {e}", page.display()))?;
        for href in attribute_values(&html, "href") {
            let href = href.replace("&amp;", "&");
            if href.contains("://") || href.starts_with("mailto:") || href.starts_with("//") {
                continue;
            }
            let (path, fragment) = href.split_once('#').unwrap_or((&href, ""));
            let target = if path.is_empty() {
                page.clone()
            } else {
                match resolve(page.parent().expect("a page is in a directory"), path) {
                    Some(target) if target.starts_with(output) && target.is_file() => target,
                    _ => {
                        problems.push(format!("{name}: {href} leads nowhere in the book"));
                        continue;
                    }
                }
            };
            if !fragment.is_empty()
                && target.extension() == Some(OsStr::new("html"))
                && !ids.get(&target).is_some_and(|ids| ids.contains(fragment))
            {
                problems.push(format!(
                    "{name}: {href}: no element with id {fragment:?} there"
                ));
            }
        }
    }
    Ok(problems)
}

/// `from/relative`, with `.` and `..` resolved; `None` for an absolute path.
fn resolve(from: &Path, relative: &str) -> Option<PathBuf> {
    if relative.starts_with('/') {
        return None;
    }
    let mut resolved = from.to_owned();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(part) => resolved.push(part),
            Component::ParentDir => {
                resolved.pop();
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(resolved)
}

/// The values of every `name="..."` attribute in `html`.
fn attribute_values(html: &str, name: &str) -> Vec<String> {
    let needle = format!(" {name}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let value = &html[at + needle.len()..];
            value.find('"').map(|end| value[..end].to_owned())
        })
        .collect()
}
