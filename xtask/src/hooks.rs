//! The generation hooks' tests (part of `cargo xtask test`), with the oldest and the newest
//! cargo-generate release: answers that cannot make a working service are refused, naming
//! the answers and how to retry; recorded answers generate the same service again, whatever
//! quotes and backslashes they hold; and generation runs interactively, in a terminal.

use std::process::Command;

use crate::generate::{Answers, copy_template, generate_service_with};
use crate::shell::{Result, root};
use crate::tools::{self, CargoGenerate};
use crate::tree::{Scratch, compare};

/// The hooks turn away answers that cannot make a working service, naming the answers.
pub fn hooks() -> Result {
    for release in CargoGenerate::BOTH {
        refusals(release)?;
        round_trip(release)?;
        interactive(release)?;
    }
    Ok(())
}

fn refusals(release: CargoGenerate) -> Result {
    println!("cargo-generate {}:", release.version());
    let refused = [
        ("9lives", "must start with a lowercase letter"),
        ("std", "reserved"),
        (
            "a-very-long-name-that-goes-on-and-on-and-on-well-past-what-anyone-types",
            "longer than 64",
        ),
    ];
    for (name, reason) in refused {
        expect_refusal(release, name, &[], reason)?;
    }
    // Combinations of answers that cannot work are refused, naming the answers.
    let combinations: [(&[&str], &str); 3] = [
        (
            &["auth=none", "database=sqlite"],
            "database=sqlite needs auth=oidc",
        ),
        (
            &["database=none", "scheduler=true"],
            "scheduler=true needs a database (database=none)",
        ),
        (
            &["database=sqlite", "kubernetes=true"],
            "kubernetes=true with database=sqlite",
        ),
    ];
    for (defines, reason) in combinations {
        let defines: Vec<String> = defines.iter().map(|d| (*d).to_owned()).collect();
        expect_refusal(release, "combo-service", &defines, reason)?;
        // cargo-generate leaves the service's folder behind: the message says so.
        expect_refusal(
            release,
            "combo-service",
            &defines,
            "remove the empty folder",
        )?;
    }
    Ok(())
}

/// Recorded answers survive quotes and backslashes: generating again from them gives the
/// same service.
fn round_trip(release: CargoGenerate) -> Result {
    let scratch = Scratch::new("answers")?;
    let tricky = [
        r#"description=Says "hi" \o/"#.to_owned(),
        "auth=none".into(),
        "database=none".into(),
    ];
    let first = generate_service_with(release, &scratch, "quoted-service", None, &tricky)?;
    let again_scratch = Scratch::new("answers-again")?;
    let again = generate_service_with(
        release,
        &again_scratch,
        "quoted-service",
        Some(&first.join("template-answers.toml")),
        &[],
    )?;
    let differences: Vec<String> = compare(&again, &first)?
        .iter()
        .map(ToString::to_string)
        .collect();
    if !differences.is_empty() {
        return Err(format!(
            "recorded answers do not round-trip: {differences:?}"
        ));
    }
    println!(
        "cargo-generate {}: recorded answers round-trip, quotes and backslashes included",
        release.version()
    );
    Ok(())
}

/// Generation with these answers must fail, and say `reason`.
fn expect_refusal(release: CargoGenerate, name: &str, defines: &[String], reason: &str) -> Result {
    let scratch = Scratch::new("hooks")?;
    let answers = format!("{name} {}", defines.join(" "));
    match generate_service_with(release, &scratch, name, None, defines) {
        Ok(_) => Err(format!("the hooks accepted {answers}")),
        Err(message) if message.contains(reason) => {
            println!("refused {answers}: {reason}");
            Ok(())
        }
        Err(message) => Err(format!(
            "{answers} was refused without saying {reason:?}: {message}"
        )),
    }
}

/// In a terminal, pressing Enter at every question generates the default example.
fn interactive(release: CargoGenerate) -> Result {
    let default = Answers::all()?
        .into_iter()
        .find(|answers| answers.name == "default")
        .ok_or("no xtask/answers/default.toml")?;
    let scratch = Scratch::new("interactive")?;
    let source = scratch.path.join("template-source");
    copy_template(&root(), &source)?;
    let output = scratch.path.join("out");
    std::fs::create_dir_all(&output).map_err(|e| e.to_string())?;
    let generate = format!(
        "{} generate --path {} template --name {} --vcs none --destination {}",
        tools::cargo_generate_release(release)?.display(),
        source.display(),
        default.service(),
        output.display()
    );
    // `script` gives cargo-generate a terminal; what is piped in is typed into it.
    let typed = "\n".repeat(20);
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf '{}' | script -qec '{generate}' /dev/null > {}",
            typed.replace('\n', "\\n"),
            scratch.path.join("terminal.log").display()
        ))
        .status()
        .map_err(|e| format!("script: {e}"))?;
    if !status.success() {
        return Err(format!("interactive generation failed: {status}"));
    }
    let differences = compare(&output.join(default.service()), &default.example())?;
    if !differences.is_empty() {
        let shown: Vec<String> = differences.iter().map(ToString::to_string).collect();
        return Err(format!(
            "pressing Enter at every question did not give examples/default: {shown:?}"
        ));
    }
    println!(
        "cargo-generate {} in a terminal, Enter at every question: examples/default",
        release.version()
    );
    Ok(())
}
