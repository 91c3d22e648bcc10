//! `cargo xtask matrix [--list] [--only NAME]`: the option combinations every change is
//! checked with. Every pair of answers of any two options appears in at least one of them
//! (a pairwise cover, found greedily and the same every time), refused combinations left
//! out. Each is generated outside the workspace, as a user would, and must pass
//! `cargo fmt --check`, clippy with `-D warnings` and its own tests; they share one target
//! directory. `--list` prints the combinations as JSON for the template's workflow, whose
//! matrix is this list; `--only NAME` checks one of them. Without `--only`, it also checks
//! `examples/full` with no option feature and with each alone.

use std::collections::BTreeSet;
use std::fs;
use std::time::Instant;

use crate::flags;
use crate::generate::generate_service;
use crate::postgres::Postgres;
use crate::shell::{Result, cargo, cargo_in, root, run, section, share_lock};
use crate::tree::{Scratch, copy_tree};

/// Every question of the template that changes what is generated, and its answers.
const OPTIONS: [(&str, &[&str]); 10] = [
    ("auth", &["oidc", "none"]),
    ("database", &["sqlite", "postgres", "none"]),
    ("scheduler", &["true", "false"]),
    ("openapi", &["true", "false"]),
    ("metrics", &["true", "false"]),
    ("otel", &["true", "false"]),
    ("container", &["true", "false"]),
    ("kubernetes", &["true", "false"]),
    ("devcontainer", &["true", "false"]),
    ("ci", &["true", "false"]),
];

/// One combination: an answer (its index in [`OPTIONS`]) per option.
type Combination = [usize; OPTIONS.len()];

/// What `hooks/pre.rhai` refuses (the hook tests check the refusals themselves).
fn refused(combination: &Combination) -> bool {
    let answer = |option: &str| {
        let (index, (_, answers)) = OPTIONS
            .iter()
            .enumerate()
            .find(|(_, (name, _))| *name == option)
            .expect("a known option");
        answers[combination[index]]
    };
    (answer("database") != "none" && answer("auth") == "none")
        || (answer("scheduler") == "true" && answer("database") == "none")
        || (answer("kubernetes") == "true" && answer("database") == "sqlite")
}

/// Every combination the hooks accept.
fn accepted() -> Vec<Combination> {
    let mut all = vec![[0; OPTIONS.len()]];
    for (option, (_, answers)) in OPTIONS.iter().enumerate() {
        all = all
            .into_iter()
            .flat_map(|partial| {
                (0..answers.len()).map(move |answer| {
                    let mut next = partial;
                    next[option] = answer;
                    next
                })
            })
            .collect();
    }
    all.retain(|combination| !refused(combination));
    all
}

/// A pair of answers: (option, answer) and (other option, answer).
type Pair = ((usize, usize), (usize, usize));

fn pairs(combination: &Combination) -> impl Iterator<Item = Pair> + '_ {
    (0..OPTIONS.len()).flat_map(move |i| {
        ((i + 1)..OPTIONS.len()).map(move |j| ((i, combination[i]), (j, combination[j])))
    })
}

/// The fewest combinations a greedy pick needs so every pair some accepted combination has
/// appears in one of them: each time, the combination covering the most pairs not yet
/// covered (the first in order on a tie).
pub fn pairwise() -> Vec<Combination> {
    let candidates = accepted();
    let mut uncovered: BTreeSet<Pair> = candidates.iter().flat_map(pairs).collect();
    let mut chosen = Vec::new();
    while !uncovered.is_empty() {
        let (_, best) = candidates
            .iter()
            .enumerate()
            .max_by_key(|(index, candidate)| {
                // The most pairs wins; on a tie, the earlier candidate.
                let covered = pairs(candidate)
                    .filter(|pair| uncovered.contains(pair))
                    .count();
                (covered, std::cmp::Reverse(*index))
            })
            .expect("candidates while pairs are uncovered");
        for pair in pairs(best) {
            uncovered.remove(&pair);
        }
        chosen.push(*best);
    }
    chosen
}

/// `key=value` answers of a combination.
fn defines(combination: &Combination) -> Vec<String> {
    OPTIONS
        .iter()
        .zip(combination)
        .map(|((name, answers), answer)| format!("{name}={}", answers[*answer]))
        .collect()
}

pub fn matrix(flags: &flags::Matrix) -> Result {
    let combinations: Vec<(String, Vec<String>)> = pairwise()
        .iter()
        .enumerate()
        .map(|(n, combination)| (format!("matrix-{}", n + 1), defines(combination)))
        .collect();
    if flags.list {
        let entries: Vec<serde_json::Value> = combinations
            .iter()
            .map(
                |(name, defines)| serde_json::json!({ "name": name, "answers": defines.join(" ") }),
            )
            .collect();
        println!("{}", serde_json::Value::Array(entries));
        return Ok(());
    }
    let selected: Vec<&(String, Vec<String>)> = combinations
        .iter()
        .filter(|(name, _)| flags.only.as_ref().is_none_or(|only| only == name))
        .collect();
    if selected.is_empty() {
        return Err(format!("no combination named {:?}", flags.only));
    }
    // The server PostgreSQL tests create their databases on: TEST_DATABASE_URL's (CI's
    // service container), or a throwaway cluster.
    let wants_postgres = selected
        .iter()
        .any(|(_, defines)| defines.iter().any(|define| define == "database=postgres"));
    let cluster = match std::env::var("TEST_DATABASE_URL") {
        Err(_) if wants_postgres => Some(Postgres::start()?),
        _ => None,
    };
    let database_url = cluster
        .as_ref()
        .map(|cluster| cluster.url.clone())
        .or_else(|| std::env::var("TEST_DATABASE_URL").ok());
    let started = Instant::now();
    for (name, defines) in &selected {
        section(&format!("{name}: {}", defines.join(" ")));
        check(name, defines, database_url.as_deref())?;
    }
    if flags.only.is_none() {
        feature_subsets()?;
    }
    println!(
        "{} combination(s) pass, in {:.0} s",
        selected.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Each option of `examples/full` is a Cargo feature: the service must build, tests included,
/// with none of them and with each alone (with what it needs), as a team that turns one off
/// in `Cargo.toml` would build it.
fn feature_subsets() -> Result {
    let manifest =
        fs::read_to_string(root().join("examples/full/Cargo.toml")).map_err(|e| e.to_string())?;
    let defaults: Vec<String> = manifest
        .lines()
        .find_map(|line| line.strip_prefix("default = ["))
        .ok_or("examples/full/Cargo.toml has no default features")?
        .trim_end_matches(']')
        .split(',')
        .map(|feature| feature.trim().trim_matches('"').to_owned())
        .filter(|feature| !feature.is_empty())
        .collect();
    let subsets = std::iter::once(String::new()).chain(defaults);
    for features in subsets {
        let shown = if features.is_empty() {
            "none"
        } else {
            &features
        };
        section(&format!("examples/full with features: {shown}"));
        run(cargo().args([
            "check",
            "--quiet",
            "--package",
            "full-service",
            "--all-targets",
            "--no-default-features",
            "--features",
            &features,
        ]))?;
    }
    Ok(())
}

/// Generates one combination outside the workspace and checks it as its own CI would.
fn check(name: &str, defines: &[String], database_url: Option<&str>) -> Result {
    let scratch = Scratch::new("matrix")?;
    let generated = generate_service(&scratch, name, None, defines)?;
    let service = scratch.path.join("service").join(name);
    copy_tree(&generated, &service)?;
    share_lock(&service)?;
    let in_service = |args: &[&str]| {
        let mut command = cargo_in(&service);
        command.args(args);
        if let Some(url) = database_url {
            command.env("TEST_DATABASE_URL", url);
        }
        command
    };
    run(&mut in_service(&["fmt", "--check"]))?;
    run(&mut in_service(&[
        "clippy",
        "--all-targets",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(&mut in_service(&["test", "--quiet"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_of_answers_is_covered_by_accepted_combinations() {
        let chosen = pairwise();
        assert!(chosen.iter().all(|combination| !refused(combination)));
        let wanted: BTreeSet<Pair> = accepted().iter().flat_map(pairs).collect();
        let covered: BTreeSet<Pair> = chosen.iter().flat_map(pairs).collect();
        assert_eq!(covered, wanted);
        // Far fewer than every combination (3 × 2⁹ less the refused ones).
        assert!(chosen.len() < 20, "{}", chosen.len());
    }

    #[test]
    fn the_options_are_the_templates_questions() {
        let text = fs::read_to_string(root().join("cargo-generate.toml")).unwrap();
        let questions: BTreeSet<(String, Vec<String>)> = text
            .lines()
            .skip_while(|line| line.trim() != "[placeholders]")
            .skip(1)
            .take_while(|line| !line.starts_with('['))
            .filter_map(|line| {
                let (name, rest) = line.split_once(" = ")?;
                let answers = if rest.contains("type = \"bool\"") {
                    vec!["true".to_owned(), "false".to_owned()]
                } else {
                    let choices = rest.split_once("choices = [")?.1.split_once(']')?.0;
                    choices
                        .split(',')
                        .map(|choice| choice.trim().trim_matches('"').to_owned())
                        .collect()
                };
                Some((name.trim().to_owned(), answers))
            })
            .collect();
        let options: BTreeSet<(String, Vec<String>)> = OPTIONS
            .iter()
            .map(|(name, answers)| {
                let answers = answers.iter().map(|answer| (*answer).to_owned()).collect();
                ((*name).to_owned(), answers)
            })
            .collect();
        assert_eq!(options, questions, "OPTIONS and cargo-generate.toml differ");
    }
}
