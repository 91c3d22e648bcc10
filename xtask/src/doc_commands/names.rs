//! What a documented command may name, and whether it exists: `cargo xtask` commands (from
//! the usage line), routes (the probes, the development issuer, and every path of the full
//! example's OpenAPI document), settings (the examples' `.env.example`, and a few variables
//! that belong to the shell, cargo or the tests), and paths of the repository or of a
//! generated service.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use crate::shell::{Result, root};

/// What the documentation may name: xtask commands, routes, settings and paths.
pub struct Names {
    commands: BTreeSet<String>,
    routes: BTreeSet<String>,
    settings: BTreeSet<String>,
    /// Folders a path is looked up in: the repository and each example.
    bases: Vec<PathBuf>,
}

/// Variables that are not the service's settings, but a shell's, cargo's or a tool's.
const OTHER_VARIABLES: [&str; 12] = [
    "TOKEN",
    "PATH",
    "HOME",
    "RUST_BACKTRACE",
    "TEST_LOG",
    "TEST_DATABASE_URL",
    "OIDC_TEST_ISSUER",
    "OIDC_TEST_CLIENT_ID",
    "OIDC_TEST_CLIENT_SECRET",
    "CARGO_TARGET_DIR",
    "RUSTC_BOOTSTRAP",
    "DOCKER_BUILDKIT",
];

impl Names {
    pub fn read() -> Result<Self> {
        let repo = root();
        let usage = crate::flags::USAGE;
        let commands = usage
            .trim_start_matches("usage: cargo xtask <")
            .trim_end_matches('>')
            .split(" | ")
            .filter_map(|command| command.split_whitespace().next())
            .map(str::to_owned)
            .collect();
        let mut routes: BTreeSet<String> = [
            "/health/liveness",
            "/health/readiness",
            "/metrics",
            "/openapi.json",
            "/docs",
            "/dev-issuer/token",
            "/dev-issuer/userinfo",
        ]
        .map(str::to_owned)
        .into();
        let openapi = fs::read_to_string(repo.join("examples/full/openapi.json"))
            .map_err(|e| e.to_string())?;
        let document: serde_json::Value =
            serde_json::from_str(&openapi).map_err(|e| e.to_string())?;
        if let Some(paths) = document["paths"].as_object() {
            routes.extend(paths.keys().cloned());
        }
        let mut settings: BTreeSet<String> = OTHER_VARIABLES.map(str::to_owned).into();
        for example in ["default", "full", "minimal"] {
            let env = fs::read_to_string(repo.join("examples").join(example).join(".env.example"))
                .map_err(|e| e.to_string())?;
            settings.extend(env.lines().filter_map(|line| {
                let line = line.trim_start_matches('#').trim();
                let (name, _) = line.split_once('=')?;
                is_variable(name).then(|| name.to_owned())
            }));
        }
        let mut bases = vec![repo.clone()];
        bases.extend(["default", "full", "minimal"].map(|name| repo.join("examples").join(name)));
        Ok(Self {
            commands,
            routes,
            settings,
            bases,
        })
    }

    /// What `body` names that does not exist.
    pub fn unknown(&self, body: &str) -> Vec<String> {
        let mut unknown = Vec::new();
        let words: Vec<&str> = body
            .split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '(' | ')' | ';'))
            .filter(|word| !word.is_empty())
            .collect();
        for (i, word) in words.iter().enumerate() {
            if *word == "xtask"
                && i > 0
                && words[i - 1] == "cargo"
                && let Some(command) = words.get(i + 1)
                && !self.commands.contains(*command)
            {
                unknown.push(format!("the command `cargo xtask {command}`"));
            }
            if let Some(rest) = word
                .strip_prefix("http://127.0.0.1:8000")
                .or_else(|| word.strip_prefix("http://localhost:8000"))
            {
                let route = rest
                    .split(['?', '#'])
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches([',', '.']);
                if !route.is_empty() && !self.routes.iter().any(|known| matches_route(known, route))
                {
                    unknown.push(format!("the route {route}"));
                }
            }
            let assignment = word.strip_prefix("-e").unwrap_or(word);
            if let Some((name, _)) = assignment.split_once('=')
                && is_variable(name)
                && !self.settings.contains(name)
                && !name.starts_with("OTEL_")
            {
                unknown.push(format!("the setting {name}"));
            }
            let made_here = i >= 2 && words[..i].contains(&"mkdir");
            if looks_like_path(word)
                && !made_here
                && !self.bases.iter().any(|base| base.join(word).exists())
            {
                unknown.push(format!("the path {word}"));
            }
        }
        unknown
    }
}

/// Whether `route` is an instance of the pattern `known` (`/api/v1/users/{id}`).
fn matches_route(known: &str, route: &str) -> bool {
    let (known, route): (Vec<&str>, Vec<&str>) =
        (known.split('/').collect(), route.split('/').collect());
    known.len() == route.len()
        && known.iter().zip(&route).all(|(pattern, segment)| {
            pattern == segment || (pattern.starts_with('{') && !segment.is_empty())
        })
}

fn is_variable(name: &str) -> bool {
    name.len() > 2
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// A relative path into the repository or a service: slashes, no scheme, variable or glob.
fn looks_like_path(word: &str) -> bool {
    let first = word.split('/').next().unwrap_or_default();
    word.contains('/')
        && !word.starts_with(['/', '.', '-', '$', '<', '~', '@', '{'])
        && !word.contains(['$', '<', '>', '*', ':', '=', '@', '{', '%', '\\', ','])
        && [
            "src",
            "docs",
            "xtask",
            "examples",
            "template",
            "hooks",
            "deploy",
            "fuzz",
            "migrations",
            "tests",
            "benches",
            "config",
            "keycloak",
            ".github",
        ]
        .contains(&first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_do_not_exist_are_found() {
        let names = Names::read().unwrap();
        let body = "cargo xtask test\ncargo xtask frobnicate\ncurl http://127.0.0.1:8000/health/readiness\ncurl http://127.0.0.1:8000/api/v1/nowhere\nOIDC_AUDIENCE=x cargo run\nOIDC_AUDIENSE=x cargo run\nls deploy/overlays/staging xtask/answers/minimal.toml deploy/overlays/qa\n";
        let unknown = names.unknown(body);
        assert_eq!(
            unknown,
            [
                "the command `cargo xtask frobnicate`",
                "the route /api/v1/nowhere",
                "the setting OIDC_AUDIENSE",
                "the path deploy/overlays/qa",
            ]
        );
    }
}
