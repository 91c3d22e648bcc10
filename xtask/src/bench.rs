//! `cargo xtask bench [--seconds N] [--rounds N] [--no-write] [--only SCENARIO,...]`: load tests the default example against a
//! bare actix-web floor, on loopback, and writes the figures to `docs/benchmarks.md`.
//!
//! Both servers are built in release. The npm `oidc-provider` issues the tokens (the service
//! does real discovery and fetches its keys; the floor is given the same public keys), and
//! `xtask/bench/mint.mjs` mints as many more as a fresh-token run needs with the provider's
//! own private keys. `wrk` drives each route with 2 threads and 64 connections; every run
//! starts a new server process, so its peak RSS and its token cache are its own, and the
//! runs go round by round, every scenario once a round, a row being the median of its runs.
//! The service's logs go into a pipe that this process reads, as in production. Another
//! process per scenario, with an allocation counter preloaded, counts allocations per request
//! over one connection.
//!
//! The load itself is the harness's (`harness.rs`); the report, `bench/report.rs`.

mod report;

use std::fs;

use crate::flags;
use crate::harness::{
    self, Counter, Load, Measured, SERVICE, Scenario, Target, Tokens, measure_once, median,
};
use crate::http::{self, json_string};
use crate::provider::{self, Provider};
use crate::shell::{Result, cargo, root, run, section};
use crate::tools;
use crate::tree::Scratch;
use report::{Machine, Report, Ticks};

/// The bare actix-web server the service is compared with (`xtask/bench/floor`).
const FLOOR: &str = "bench-floor";

pub fn bench(flags: &flags::Bench) -> Result {
    let seconds = flags.seconds;
    let wrk = tools::wrk()?;
    provider::install()?;
    section("release builds");
    // One package at a time, so the service is built with its own features only.
    for package in [SERVICE, FLOOR] {
        run(cargo().args(["build", "--release", "--locked", "--package", package]))?;
    }
    let binaries = root().join("target/release");

    section("an OpenID provider and its tokens");
    let scratch = Scratch::new("bench")?;
    let state = provider::state_dir("bench");
    let idp = Provider::start(&state)?;
    let discovery = harness::discovery(&idp.issuer)?;
    let jwks_uri = json_string(&discovery, "jwks_uri").ok_or("no jwks_uri in discovery")?;
    let jwks = scratch.path.join("jwks.json");
    fs::write(&jwks, http::get_ok(&jwks_uri)?).map_err(|e| e.to_string())?;
    let load = Load::new(wrk, seconds, &discovery)?;
    let keys = state.join("keys.json");
    let scenarios: Vec<Scenario> = Scenario::ALL
        .into_iter()
        .filter(|scenario| flags.only.is_empty() || flags.only.contains(scenario))
        .collect();
    // The floor runs what the chosen scenarios are compared with.
    let floor_scenarios: Vec<Scenario> = Scenario::ALL
        .into_iter()
        .filter(|s| s.floor_runs() && scenarios.iter().any(|chosen| chosen.floor() == *s))
        .collect();
    let minted = |scenario: Scenario| {
        if scenarios.contains(&scenario) {
            20_000
        } else {
            0
        }
    };
    let mut rs256_fresh = Tokens::mint(
        &keys,
        &load.token(Scenario::Rs256Fresh)?,
        &scratch.path.join("rs256.txt"),
        minted(Scenario::Rs256Fresh),
    )?;
    let mut es256_fresh = Tokens::mint(
        &keys,
        &load.token(Scenario::Es256Fresh)?,
        &scratch.path.join("es256.txt"),
        minted(Scenario::Es256Fresh),
    )?;
    println!("issuer {}; tokens minted", idp.issuer);
    let counter = Counter::build(&scratch.path)?;
    let before = Machine::read();

    let floor = Target::Floor {
        binary: binaries.join(FLOOR),
        jwks: jwks.clone(),
        issuer: idp.issuer.clone(),
    };
    let service = Target::Service {
        binary: binaries.join(SERVICE),
        issuer: idp.issuer.clone(),
        dir: scratch.path.join("service"),
        env: Vec::new(),
        log: None,
    };
    fs::create_dir_all(scratch.path.join("service")).map_err(|e| e.to_string())?;
    // Round by round, every scenario once a round: a slow spell of the machine falls on every
    // row alike, not on the rows that happened to run then. Within a round each of the
    // floor's runs comes just before the service's runs compared with it, so a ratio compares
    // runs seconds apart, not minutes, and the host's drift between them is small.
    let mut floor_runs: Vec<Vec<Measured>> = floor_scenarios.iter().map(|_| Vec::new()).collect();
    let mut service_runs: Vec<Vec<Measured>> = scenarios.iter().map(|_| Vec::new()).collect();
    for round in 1..=flags.rounds {
        let round_start = Ticks::read();
        section(&format!(
            "round {round} of {}: each of the floor's routes (bare actix-web, one signature \
             check), then the default example's compared with it (release build, JSON logs \
             into a pipe)",
            flags.rounds
        ));
        for (&scenario, runs) in scenarios.iter().zip(&mut service_runs) {
            // The floor's run for this scenario, unless an earlier scenario of the round had it
            // (each of the floor's routes runs once a round, so its runs count the rounds).
            if let Some(at) = floor_scenarios.iter().position(|s| *s == scenario.floor())
                && floor_runs[at].len() < round as usize
            {
                let floor_scenario = floor_scenarios[at];
                let tokens = fresh(floor_scenario, &rs256_fresh, &es256_fresh);
                let run = measure_once(&floor, floor_scenario, &load, tokens)?;
                println!("{:<7} {}", floor.name(), run.line());
                floor_runs[at].push(run);
            }
            let tokens = match scenario {
                Scenario::Rs256Fresh => Some(&mut rs256_fresh),
                Scenario::Es256Fresh => Some(&mut es256_fresh),
                _ => None,
            };
            // Enough unseen tokens for the service to run 25 % faster than the floor's
            // fastest run with all its requests on one wrk thread: each thread has half of
            // them, and threads do not run evenly when they share the cores with the server.
            if let Some(tokens) = tokens {
                let floor_requests = floor_runs
                    .iter()
                    .flatten()
                    .filter(|run| run.scenario == scenario)
                    .map(|run| run.requests)
                    .max()
                    .unwrap_or(0);
                tokens.ensure(floor_requests * 5 / 2 + 1_000)?;
            }
            let tokens = fresh(scenario, &rs256_fresh, &es256_fresh);
            let run = measure_once(&service, scenario, &load, tokens)?;
            println!("{:<7} {}", service.name(), run.line());
            runs.push(run);
        }
        let this_round = |runs: &[Vec<Measured>], scenarios: &[Scenario]| {
            scenarios
                .iter()
                .position(|s| *s == Scenario::Liveness)
                .and_then(|at| runs[at].last())
                .map(|run| run.per_second)
        };
        if let (Some(service), Some(floor)) = (
            this_round(&service_runs, &scenarios),
            this_round(&floor_runs, &floor_scenarios),
        ) {
            println!(
                "liveness at `info` this round: {:.3} × the floor",
                service / floor
            );
        }
        if let Some(steal) = Ticks::read()
            .zip(round_start)
            .and_then(|(now, start)| now.steal_since(start))
        {
            println!("steal time this round: {steal:.1} % of the CPUs' time");
        }
    }

    section("allocations per request, and the medians");
    // Each row: the median of its runs, and the allocations of another process.
    let rows = |target: &Target, scenarios: Vec<Scenario>, runs: Vec<Vec<Measured>>| {
        scenarios
            .into_iter()
            .zip(runs)
            .map(|(scenario, runs)| {
                let mut result = median(runs);
                let tokens = fresh(scenario, &rs256_fresh, &es256_fresh);
                result.allocations = Some(counter.per_request(target, scenario, &load, tokens)?);
                println!("{:<7} {}", target.name(), result.line());
                Ok(result)
            })
            .collect::<Result<Vec<_>>>()
    };
    let floor_results = rows(&floor, floor_scenarios, floor_runs)?;
    let service_results = rows(&service, scenarios, service_runs)?;
    let after = Machine::read();

    let report = Report {
        seconds,
        rounds: flags.rounds,
        before,
        after,
        floor: floor_results,
        service: service_results,
        service_binary: file_size(&binaries.join(SERVICE))?,
        floor_binary: file_size(&binaries.join(FLOOR))?,
    };
    let markdown = report.markdown();
    println!("\n{markdown}");
    if flags.write {
        report::write(&markdown)?;
        println!("wrote docs/benchmarks.md");
    }
    Ok(())
}

/// The fresh tokens a scenario sends, if it sends fresh tokens.
fn fresh<'a>(scenario: Scenario, rs256: &'a Tokens, es256: &'a Tokens) -> Option<&'a Tokens> {
    match scenario {
        Scenario::Rs256Fresh => Some(rs256),
        Scenario::Es256Fresh => Some(es256),
        _ => None,
    }
}

fn file_size(path: &std::path::Path) -> Result<u64> {
    Ok(fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len())
}
