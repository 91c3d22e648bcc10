//! `cargo xtask book`: builds the guide in `docs/` with a pinned mdBook (`tools.rs`), into
//! `target/book`.
//!
//! The book shows the template's code by including it from the generated examples, so it
//! cannot drift from what `cargo generate` produces. `{{#include file:selector}}` names an
//! item (`snippets.rs`): the generated services carry no markers for the book. The chapters
//! are copied to `target/book-src` with each include replaced by the text it names, then
//! built. The build fails on anything that would let a reader see stale, missing or
//! misleading content:
//!
//! - an `{{#include}}` whose file or item is missing, or a line-number range (it would
//!   silently show other lines once the file changes);
//! - any warning or error mdBook prints;
//! - a relative link or `#fragment` in the rendered HTML that leads nowhere, or out of the
//!   book. External links are not followed: the build needs no network.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::shell::{Result, root};
use crate::tree::{copy_tree, walk};
use crate::{snippets, tools};

/// Pages mdBook derives from the chapters, with links of their own kind: `print.html`
/// repeats every chapter on one page, `404.html` resolves links against the site's root.
const DERIVED_PAGES: [&str; 2] = ["print.html", "404.html"];

pub fn build() -> Result {
    let book = root().join("docs");
    let source = root().join("target/book-src");
    let output = root().join("target/book");

    if source.exists() {
        fs::remove_dir_all(&source).map_err(|e| format!("{}: {e}", source.display()))?;
    }
    copy_tree(&book, &source)?;
    let mut problems = Vec::new();
    let mut snippets = 0;
    for chapter in walk(&book.join("src"))? {
        if chapter.extension() == Some(OsStr::new("md")) {
            let copy = source.join(chapter.strip_prefix(&book).expect("under docs/"));
            problems.extend(resolve_includes(&chapter, &copy, &mut snippets)?);
        }
    }
    fail_on(&problems, "the book's includes")?;

    // A page left over from an earlier build must not satisfy a link.
    if output.exists() {
        fs::remove_dir_all(&output).map_err(|e| format!("{}: {e}", output.display()))?;
    }
    let built = Command::new(tools::mdbook()?)
        .arg("build")
        .arg(&source)
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

/// Replaces every `{{#include path}}` and `{{#include path:selector}}` of `chapter` in its
/// copy with an include of the text it names, written next to the copy under `_snippets/`.
/// Returns the problems: a missing file or item, a line range.
fn resolve_includes(chapter: &Path, copy: &Path, count: &mut usize) -> Result<Vec<String>> {
    let text = fs::read_to_string(chapter).map_err(|e| format!("{}: {e}", chapter.display()))?;
    let dir = chapter.parent().expect("a chapter is in a directory");
    let name = chapter
        .strip_prefix(root())
        .unwrap_or(chapter)
        .display()
        .to_string();
    let snippet_dir = copy
        .parent()
        .expect("a chapter is in a directory")
        .join("_snippets");
    let mut problems = Vec::new();
    let mut rewritten = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find("{{#") {
        let escaped = rest[..start].ends_with('\\');
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else {
            problems.push(format!("{name}: an unclosed {{{{# directive"));
            break;
        };
        let directive = after[..end].trim();
        rewritten.push_str(&rest[..start]);
        let original = &rest[start..start + 3 + end + 2];
        rest = &after[end + 2..];
        if escaped {
            rewritten.push_str(original);
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
        let file = dir.join(path);
        let text = if selector.is_empty() {
            fs::read_to_string(&file).map_err(|_| "no such file".to_owned())
        } else if selector.starts_with(|c: char| c.is_ascii_digit() || c == ':') {
            Err("line numbers show other lines once the file changes; name an item".into())
        } else {
            snippets::extract(&file, selector)
        };
        match text {
            Ok(text) if text.trim().is_empty() => {
                problems.push(format!("{shown}: nothing to show"))
            }
            Ok(text) => {
                *count += 1;
                let extension = file.extension().and_then(OsStr::to_str).unwrap_or("txt");
                let snippet = format!("{count}.{extension}");
                fs::create_dir_all(&snippet_dir).map_err(|e| e.to_string())?;
                fs::write(snippet_dir.join(&snippet), text.trim_end_matches('\n'))
                    .map_err(|e| e.to_string())?;
                rewritten.push_str(&format!("{{{{#include _snippets/{snippet}}}}}"));
            }
            Err(problem) => problems.push(format!("{shown}: {problem}")),
        }
    }
    rewritten.push_str(rest);
    fs::write(copy, rewritten).map_err(|e| format!("{}: {e}", copy.display()))?;
    Ok(problems)
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
