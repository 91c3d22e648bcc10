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

/// The lines (from 1) where a `{%` tag sits inside a function body. Strings, characters and
/// comments are skipped; Liquid markers do not count as braces.
fn tags_in_function_bodies(text: &str) -> Vec<usize> {
    let mut found = Vec::new();
    // For each open brace: whether it opened a function body.
    let mut braces: Vec<bool> = Vec::new();
    let mut fn_pending = false;
    let mut word = String::new();
    for (number, line) in text.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        let mut in_string = false;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            if in_string {
                match c {
                    '\\' => i += 1,
                    '"' => in_string = false,
                    _ => {}
                }
                i += 1;
                continue;
            }
            if c == '{' && matches!(next, Some('%' | '{')) {
                if next == Some('%') && braces.iter().any(|&body| body) {
                    found.push(number + 1);
                }
                // Skip the whole marker: its braces are Liquid's.
                let close = if next == Some('%') { "%}" } else { "}}" };
                let rest: String = chars[i..].iter().collect();
                i += rest.find(close).map_or(chars.len(), |end| end + 2);
                continue;
            }
            if c.is_alphanumeric() || c == '_' {
                word.push(c);
                i += 1;
                continue;
            }
            if word == "fn" {
                fn_pending = true;
            }
            word.clear();
            match c {
                '/' if next == Some('/') => break,
                '"' => in_string = true,
                '\'' if chars.get(i + 2) == Some(&'\'') => i += 2,
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
            i += 1;
        }
        if word == "fn" {
            fn_pending = true;
        }
        word.clear();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_allowed_between_items_but_not_in_bodies() {
        let text = "{% if a -%}\npub mod a;\n{% endif -%}\nfn f() {\n    let x = \"{\";\n{% if b %}\n    g();\n{% endif %}\n}\nstruct S {\n{% if c %}\n    c: u8,\n{% endif %}\n}\n";
        assert_eq!(tags_in_function_bodies(text), [6, 8]);
    }
}
