//! `cargo xtask test`: everything CI runs, cheapest checks first, and the end-to-end auth
//! tests of the examples against a real OpenID provider.

use crate::generate::{Answers, check_examples};
use crate::postgres::Postgres;
use crate::provider::{self, Provider};
use crate::shell::{Result, cargo, root, run, section};
use crate::{
    book, doc_commands, fuzz, hooks, image, lint, reliability, removal, rules, schemathesis, tools,
    upgrade,
};

/// The whole suite, cheapest checks first.
pub fn test() -> Result {
    section("tools");
    tools::cargo_generate()?;
    tools::python_tool("actionlint")?;
    tools::docker_compose()?;
    section("examples match the template");
    check_examples()?;
    section("hooks refuse bad answers");
    hooks::hooks()?;
    section("the template's Rust is plain Rust");
    rules::check()?;
    section("workflows, Dockerfiles, Kubernetes manifests, compose files and JSON");
    lint::lint()?;
    section("the book");
    book::build()?;
    section("format");
    run(cargo().args(["fmt", "--all", "--check"]))?;
    section("clippy");
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    section("a throwaway PostgreSQL cluster");
    let postgres = Postgres::start()?;
    println!("PostgreSQL at {}", postgres.url);
    section("auth against a real OpenID provider");
    end_to_end(&postgres)?;
    // One example at a time: built together, Cargo would unify their dependencies'
    // features, and an example could pass only thanks to another's.
    for answers in Answers::all()? {
        section(&format!("tests of examples/{}", answers.name));
        let package = answers.service();
        run(cargo()
            .args(["test", "--locked", "--package", &package])
            .env("TEST_DATABASE_URL", &postgres.url))?;
    }
    section("a team deletes the sample modules");
    removal::check()?;
    section("the container image's build steps, without Docker");
    image::image_steps()?;
    section("every documented command");
    doc_commands::doc_commands()?;
    section("upgrading generated services");
    upgrade::check::check()?;
    section("fuzzing the bearer token path for 30 s");
    fuzz::run_for(30)?;
    schemathesis::schemathesis()?;
    // The debug build the previous step made: the checks are about behaviour, not speed.
    reliability::check(&root().join("target/debug/default-service"), 60)
}

/// Runs the ignored `provider` tests (`tests/api/provider.rs`) of every example with OIDC
/// auth against the npm `oidc-provider` on loopback.
fn end_to_end(postgres: &Postgres) -> Result {
    provider::install()?;
    let rotate = std::env::current_exe().map_err(|e| e.to_string())?;
    for answers in Answers::all()? {
        if !answers.example().join("tests/api/provider.rs").exists() {
            continue;
        }
        let state = provider::state_dir(&answers.name);
        let provider = Provider::start(&state)?;
        println!(
            "oidc-provider for examples/{} at {}",
            answers.name, provider.issuer
        );
        let package = answers.service();
        run(cargo()
            .args(["test", "--locked", "--package", &package, "--test", "api"])
            .args(["--", "--ignored", "--test-threads=1", "provider::"])
            .env("OIDC_TEST_ISSUER", &provider.issuer)
            .env("TEST_DATABASE_URL", &postgres.url)
            .env(
                "OIDC_TEST_ROTATE",
                format!(
                    "{} oidc-provider rotate {}",
                    rotate.display(),
                    state.display()
                ),
            ))?;
    }
    Ok(())
}
