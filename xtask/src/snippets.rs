//! Named parts of source files, for the book: it shows code by naming it, so the generated
//! services carry no markers for it, and a renamed or removed item fails the build instead
//! of showing something else.
//!
//! A selector names one part, or several joined by `+` (shown in file order):
//! - Rust: an item by name (`fn`, `struct`, `enum`, `trait`, `type`, `const`, `static`,
//!   `mod`, `macro_rules!`), `Type::name` for an item inside `impl Type` or
//!   `impl Trait for Type`, or `impl Trait for Type` for that whole block. The part runs
//!   from its doc comments and attributes to its closing brace or semicolon.
//! - YAML: a key by its path (`spec.template.spec.securityContext`, a number for a list
//!   item), or `path.first..last` for sibling keys from `first` to `last`, with the comments
//!   above them.

use std::path::Path;

use crate::shell::Result;

/// The text `selector` names in the file at `path`.
pub fn extract(path: &Path, selector: &str) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    let mut ranges = Vec::new();
    for part in selector.split('+').map(str::trim) {
        let range = if yaml {
            yaml_block(&lines, part)
        } else {
            rust_item(&lines, part)
        };
        ranges.push(range.map_err(|problem| format!("`{part}`: {problem}"))?);
    }
    ranges.sort_unstable();
    let parts: Vec<String> = ranges
        .into_iter()
        .map(|(start, end)| dedent(&lines[start..=end]))
        .collect();
    Ok(parts.join("\n\n"))
}

/// `lines` joined, without the indentation they all share (a method out of its `impl`).
fn dedent(lines: &[&str]) -> String {
    let shared = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|line| line.get(shared..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- Rust

/// Each line's code with string and character literals and comments blanked out, so
/// braces inside them do not count.
pub(crate) fn code_only(lines: &[&str]) -> Vec<String> {
    let mut code = Vec::with_capacity(lines.len());
    let mut in_string: Option<usize> = None; // Some(hashes) inside a (raw) string
    for line in lines {
        let chars: Vec<char> = line.chars().collect();
        let mut out = String::with_capacity(line.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if let Some(hashes) = in_string {
                let closes = c == '"'
                    && chars[i + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == '#')
                        .count()
                        == hashes;
                if c == '\\' && hashes == 0 {
                    i += 2;
                    out.push_str("  ");
                    continue;
                }
                if closes {
                    in_string = None;
                    i += 1 + hashes;
                    out.push('"');
                    continue;
                }
                out.push(' ');
                i += 1;
                continue;
            }
            match c {
                '/' if chars.get(i + 1) == Some(&'/') => break,
                '"' => {
                    in_string = Some(0);
                    out.push('"');
                }
                'r' if matches!(chars.get(i + 1), Some('"' | '#'))
                    && (i == 0 || !chars[i - 1].is_alphanumeric()) =>
                {
                    let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
                    if chars.get(i + 1 + hashes) == Some(&'"') {
                        in_string = Some(hashes);
                        i += 2 + hashes;
                        out.push('"');
                        continue;
                    }
                    out.push(c);
                }
                '\'' => {
                    // A character literal ('x', '\n', '{'), not a lifetime ('a).
                    let end = if chars.get(i + 1) == Some(&'\\') {
                        chars[i + 2..]
                            .iter()
                            .position(|&q| q == '\'')
                            .map(|p| i + 2 + p)
                    } else if chars.get(i + 2) == Some(&'\'') {
                        Some(i + 2)
                    } else {
                        None
                    };
                    match end {
                        Some(end) => {
                            out.push_str(&" ".repeat(end - i + 1));
                            i = end + 1;
                            continue;
                        }
                        None => out.push(c),
                    }
                }
                _ => out.push(c),
            }
            i += 1;
        }
        code.push(out);
    }
    code
}

const ITEM_KINDS: [&str; 10] = [
    "fn", "struct", "enum", "trait", "type", "const", "static", "mod", "union", "impl",
];

/// Whether `code` (a trimmed line) starts the item `name`.
fn starts_item(code: &str, name: &str) -> bool {
    if let Some(rest) = code.strip_prefix("macro_rules!") {
        return word_is(rest.trim_start(), name);
    }
    let mut words = code;
    loop {
        let word: String = words
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '(' || *c == ')')
            .collect();
        if word.is_empty() {
            return false;
        }
        let rest = words[word.len()..].trim_start();
        if ITEM_KINDS.contains(&word.as_str()) && word != "impl" {
            return word_is(rest, name);
        }
        // Qualifiers that may come before the kind.
        if !(word.starts_with("pub")
            || ["async", "unsafe", "extern", "default"].contains(&word.as_str()))
        {
            return false;
        }
        words = rest;
    }
}

/// Whether `text` starts with the identifier `name`, as a whole word.
fn word_is(text: &str, name: &str) -> bool {
    text.strip_prefix(name)
        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
}

/// The line range of the Rust item `selector`.
fn rust_item(lines: &[&str], selector: &str) -> std::result::Result<(usize, usize), String> {
    let code = code_only(lines);
    let (within, name) = match selector.split_once("::") {
        Some((owner, name)) => (Some(owner), name),
        None => (None, selector),
    };
    let scopes: Vec<(usize, usize)> = match within {
        None => vec![(0, lines.len().saturating_sub(1))],
        Some(owner) => (0..lines.len())
            .filter(|&i| impl_of(code[i].trim(), owner))
            .map(|i| (i, item_end(&code, i)))
            .collect(),
    };
    let starts: Vec<usize> = scopes
        .iter()
        .flat_map(|&(from, to)| from..=to)
        .filter(|&i| {
            let line = code[i].trim();
            if let Some(header) = selector.strip_prefix("impl ") {
                within.is_none() && line.starts_with("impl") && line.contains(header)
            } else {
                starts_item(line, name)
            }
        })
        .collect();
    match starts.as_slice() {
        [start] => Ok((item_top(lines, *start), item_end(&code, *start))),
        [] => Err("no such item".into()),
        _ => Err(format!("{} items have that name", starts.len())),
    }
}

/// Whether `line` opens an `impl` block for the type `owner`.
fn impl_of(line: &str, owner: &str) -> bool {
    let Some(header) = line.strip_prefix("impl") else {
        return false;
    };
    let header = header.split('{').next().unwrap_or_default();
    let self_type = header.rsplit(" for ").next().unwrap_or(header).trim();
    let self_type = self_type.trim_start_matches(|c: char| c == '<' || c.is_whitespace());
    // `impl<T> Type<T>`: skip the generics, then compare the type's name.
    let self_type = match self_type.find('>') {
        Some(close) if header.trim_start().starts_with('<') && !header.contains(" for ") => {
            self_type[close + 1..].trim()
        }
        _ => self_type,
    };
    word_is(self_type, owner)
}

/// The first line of the item starting at `start`: its doc comments, attributes and the
/// comments right above it.
fn item_top(lines: &[&str], start: usize) -> usize {
    let mut top = start;
    let mut in_attribute = false;
    while top > 0 {
        let above = lines[top - 1].trim();
        if in_attribute {
            top -= 1;
            if above.starts_with("#[") {
                in_attribute = false;
            }
            continue;
        }
        let comment = above.starts_with("//") && !above.starts_with("//!");
        if comment || above.starts_with("#[") {
            top -= 1;
        } else if above.ends_with(")]") || above == ")]" {
            // The end of an attribute over several lines.
            in_attribute = true;
            top -= 1;
        } else {
            break;
        }
    }
    top
}

/// The last line of the item starting at `start`: where its braces close, or its `;`.
fn item_end(code: &[String], start: usize) -> usize {
    let mut depth = 0i32;
    let mut opened = false;
    for (i, line) in code.iter().enumerate().skip(start) {
        for c in line.chars() {
            match c {
                '{' | '(' | '[' => {
                    if c == '{' && depth == 0 {
                        opened = true;
                    }
                    depth += 1;
                }
                '}' | ')' | ']' => {
                    depth -= 1;
                    if depth == 0 && c == '}' && opened {
                        return i;
                    }
                }
                ';' if depth == 0 && !opened => return i,
                _ => {}
            }
        }
    }
    code.len() - 1
}

// ---- YAML

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Where a line's key starts: after the dash of a list item.
fn key_indent(line: &str) -> usize {
    indent(line)
        + if line.trim_start().starts_with("- ") {
            2
        } else {
            0
        }
}

/// The line range of the YAML key path `selector` (`a.b.c` or `a.b.first..last`).
fn yaml_block(lines: &[&str], selector: &str) -> std::result::Result<(usize, usize), String> {
    let (path, last) = match selector.split_once("..") {
        Some((path, last)) => (path, Some(last)),
        None => (selector, None),
    };
    let keys: Vec<&str> = path.split('.').collect();
    let (mut from, mut to) = (0, lines.len());
    let mut level: Option<usize> = None;
    let mut found = 0;
    for key in &keys {
        let index: Option<usize> = key.parse().ok();
        let mut seen_items = 0;
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().take(to).skip(from) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            // A list item's first key sits after its dash.
            let at = key_indent(line);
            let this_level = *level.get_or_insert(at);
            if at < this_level {
                break;
            }
            if at != this_level {
                continue;
            }
            let matches = match index {
                Some(n) => {
                    let item = trimmed.starts_with("- ");
                    if item {
                        seen_items += 1;
                    }
                    item && seen_items == n + 1
                }
                None => trimmed
                    .trim_start_matches("- ")
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with(':')),
            };
            if matches {
                hit = Some(i);
                break;
            }
        }
        let Some(i) = hit else {
            return Err(format!("no key `{key}`"));
        };
        found = i;
        let end = yaml_end(lines, i);
        // A list item's keys start on its dash line; a key's children on the next lines.
        let child_level = if index.is_some() {
            key_indent(lines[i])
        } else {
            lines[i + 1..=end]
                .iter()
                .find(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
                .map_or(indent(lines[i]) + 2, |line| key_indent(line))
        };
        level = Some(child_level);
        from = if index.is_some() { i } else { i + 1 };
        to = end + 1;
    }
    let mut end = yaml_end(lines, found);
    if let Some(last) = last {
        let sibling = indent(lines[found]);
        let last_line = (found..lines.len())
            .take_while(|&i| lines[i].trim().is_empty() || indent(lines[i]) >= sibling)
            .find(|&i| {
                indent(lines[i]) == sibling
                    && lines[i]
                        .trim_start()
                        .strip_prefix(last)
                        .is_some_and(|rest| rest.starts_with(':'))
            })
            .ok_or_else(|| format!("no sibling key `{last}` after `{path}`"))?;
        end = yaml_end(lines, last_line);
    }
    let mut top = found;
    while top > 0 && lines[top - 1].trim_start().starts_with('#') {
        top -= 1;
    }
    Ok((top, end))
}

/// The last line of the block that starts at `start`: the lines indented deeper than it.
fn yaml_end(lines: &[&str], start: usize) -> usize {
    let own = indent(lines[start]) + usize::from(lines[start].trim_start().starts_with("- "));
    let mut end = start;
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        if line.trim().is_empty() {
            continue;
        }
        if indent(line) <= own && !(indent(line) == own && line.trim_start().starts_with('#')) {
            break;
        }
        end = i;
    }
    // A comment that belongs to the next key is not part of this block.
    while end > start && lines[end].trim_start().starts_with('#') {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUST: &str = r#"//! A module.

/// Doc.
#[derive(Debug)]
pub struct Thing {
    field: u8,
}

impl Thing {
    /// Makes one; braces in strings and chars do not count: "{", '{'.
    pub async fn new() -> Self {
        let _ = format!("{{}}");
        let _ = '}';
        Self { field: 0 }
    }
}

#[cfg_attr(
    feature = "x",
    derive(Clone)
)]
const LIST: &[u8] = &[
    1, // }
    2,
];

impl Display for Thing {
    fn fmt(&self) {}
}
"#;

    fn pick(selector: &str) -> String {
        let lines: Vec<&str> = RUST.lines().collect();
        let (from, to) = rust_item(&lines, selector).unwrap();
        lines[from..=to].join("\n")
    }

    #[test]
    fn rust_items_are_found_with_their_docs_and_attributes() {
        assert!(pick("Thing").starts_with("/// Doc.\n#[derive(Debug)]\npub struct Thing {"));
        assert!(pick("Thing").ends_with("field: u8,\n}"));
        let new = pick("Thing::new");
        assert!(new.starts_with("    /// Makes one"), "{new}");
        assert!(new.ends_with("Self { field: 0 }\n    }"), "{new}");
        let list = pick("LIST");
        assert!(list.starts_with("#[cfg_attr("), "{list}");
        assert!(list.ends_with("];"), "{list}");
        assert!(pick("impl Display for Thing").ends_with("fn fmt(&self) {}\n}"));
        let lines: Vec<&str> = RUST.lines().collect();
        assert!(rust_item(&lines, "Missing").is_err());
        assert!(rust_item(&lines, "Other::new").is_err());
    }

    const YAML: &str = "spec:
  template:
    spec:
      # Why.
      grace: 45
      securityContext:
        runAsNonRoot: true
      containers:
        - name: service
          image: x
          # Probes.
          startupProbe:
            path: /a
          livenessProbe:
            path: /b
          resources:
            limits: {}
";

    fn pick_yaml(selector: &str) -> String {
        let lines: Vec<&str> = YAML.lines().collect();
        let (from, to) = yaml_block(&lines, selector).unwrap();
        lines[from..=to].join("\n")
    }

    #[test]
    fn yaml_blocks_are_found_by_path() {
        assert_eq!(
            pick_yaml("spec.template.spec.grace..securityContext"),
            "      # Why.\n      grace: 45\n      securityContext:\n        runAsNonRoot: true"
        );
        assert_eq!(
            pick_yaml("spec.template.spec.containers.0.startupProbe..livenessProbe"),
            "          # Probes.\n          startupProbe:\n            path: /a\n          livenessProbe:\n            path: /b"
        );
        assert_eq!(
            pick_yaml("spec.template.spec.containers.0.resources"),
            "          resources:\n            limits: {}"
        );
    }
}
