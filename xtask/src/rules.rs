//! The rules the template's files keep, so a generated service reads as plain code:
//!
//! - options reach Rust code as Cargo features: no Liquid tag (`{% ... %}`) inside a
//!   function body of a Rust file, and at most two Liquid markers in `src/main.rs`;
//! - nothing in a generated service serves the template's book (`ANCHOR:` markers) or points
//!   outside the project ("the original guide").

use std::fs;

use crate::shell::{Result, root};
use crate::tree::walk;

/// What a generated service must not say: it speaks to its new owner.
const FOREIGN_PHRASES: [&str; 3] = ["ANCHOR:", "ANCHOR_END:", "original guide"];

pub fn check() -> Result {
    let template = root().join("template");
    let mut problems = Vec::new();
    for file in walk(&template)? {
        let relative = file
            .strip_prefix(&template)
            .expect("under template/")
            .display()
            .to_string();
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for (number, line) in text.lines().enumerate() {
            if let Some(phrase) = FOREIGN_PHRASES.iter().find(|phrase| line.contains(*phrase)) {
                problems.push(format!("{relative}:{}: {phrase:?}", number + 1));
            }
        }
        if file.extension().is_some_and(|extension| extension == "rs") {
            problems.extend(
                tags_in_function_bodies(&text)
                    .into_iter()
                    .map(|line| format!("{relative}:{line}: a Liquid tag inside a function body")),
            );
        }
    }
    let main = template.join("src/main.rs");
    let markers = liquid_markers(&fs::read_to_string(&main).map_err(|e| e.to_string())?);
    if markers > 2 {
        problems.push(format!("src/main.rs: {markers} Liquid markers, at most 2"));
    }
    if problems.is_empty() {
        println!(
            "no Liquid tag in a function body, main.rs has {markers} marker(s), no foreign markers"
        );
        return Ok(());
    }
    for problem in &problems {
        eprintln!("template/{problem}");
    }
    Err(format!(
        "{} place(s) break the template's rules",
        problems.len()
    ))
}

/// Every `{{ ... }}` and `{% ... %}` in `text`.
fn liquid_markers(text: &str) -> usize {
    text.matches("{{").count() + text.matches("{%").count()
}

/// The lines (from 1) where a `{%` tag sits inside a function body: the body is open at the
/// start or at the end of the line. Braces are counted in the code only (`snippets::code_only`
/// blanks strings, raw strings included, characters and comments), with Liquid's own markers
/// blanked first.
fn tags_in_function_bodies(text: &str) -> Vec<usize> {
    let blanked: Vec<String> = text.lines().map(blank_liquid).collect();
    let lines: Vec<&str> = blanked.iter().map(String::as_str).collect();
    let code = crate::snippets::code_only(&lines);
    let mut found = Vec::new();
    // For each open brace: whether it opened a function body.
    let mut braces: Vec<bool> = Vec::new();
    let mut fn_pending = false;
    for (number, (raw, line)) in text.lines().zip(&code).enumerate() {
        let in_body_before = braces.iter().any(|&body| body);
        let mut word = String::new();
        for c in line.chars().chain([' ']) {
            if c.is_alphanumeric() || c == '_' {
                word.push(c);
                continue;
            }
            if word == "fn" {
                fn_pending = true;
            }
            word.clear();
            match c {
                '{' => {
                    braces.push(fn_pending);
                    fn_pending = false;
                }
                '}' => {
                    braces.pop();
                }
                ';' => fn_pending = false,
                _ => {}
            }
        }
        let in_body_after = braces.iter().any(|&body| body);
        if raw.contains("{%") && (in_body_before || in_body_after) {
            found.push(number + 1);
        }
    }
    found
}

/// `line` with every Liquid marker (`{{ ... }}`, `{% ... %}`) replaced by spaces.
fn blank_liquid(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("{{").into_iter().chain(rest.find("{%")).min() {
        out.push_str(&rest[..start]);
        let close = if rest[start..].starts_with("{{") {
            "}}"
        } else {
            "%}"
        };
        let end = rest[start..]
            .find(close)
            .map_or(rest.len(), |at| start + at + 2);
        out.extend(rest[start..end].chars().map(|_| ' '));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_allowed_between_items_but_not_in_bodies() {
        let text = "{% if a -%}\npub mod a;\n{% endif -%}\nfn f() {\n    let x = \"{\";\n{% if b %}\n    g();\n{% endif %}\n}\nstruct S {\n{% if c %}\n    c: u8,\n{% endif %}\n}\n";
        assert_eq!(tags_in_function_bodies(text), [6, 8]);
        // A string over several lines, and a raw string, holding braces: only code counts.
        let strings =
            "fn f() {\n    let s = \"}\n}\";\n    let r = r#\"}\"#;\n{% if b %}\n}\n{% if c %}\n";
        assert_eq!(tags_in_function_bodies(strings), [5]);
    }
}
