//! The load: wrk runs with `xtask/bench/wrk.lua`, which prints its figures on one line,
//! what one run measured, and a whole measured scenario against a new server process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::tokens::client_credentials;
use super::{AUDIENCE, Scenario, Server, Target, Tokens, mib, micros, millis};
use crate::http::{self, json_string};
use crate::shell::{Result, root};

pub const WRK_THREADS: u32 = 2;
pub const WRK_CONNECTIONS: u32 = 64;

/// How to load a server: wrk, for how long, and where tokens come from.
pub struct Load {
    pub wrk: PathBuf,
    pub seconds: u32,
    pub script: PathBuf,
    pub token_endpoint: String,
}

/// What one wrk run measured.
#[derive(Clone)]
pub struct Measured {
    pub scenario: Scenario,
    pub requests: u64,
    pub per_second: f64,
    /// The lowest and highest requests a second of the runs this one is the median of.
    pub range: (f64, f64),
    pub p50: Duration,
    pub p99: Duration,
    /// Non-2xx/3xx answers, and connect, read, write and timeout errors.
    pub errors: u64,
    /// Non-2xx/3xx answers alone.
    pub non_2xx: u64,
    /// Whole passes over the fresh tokens after the first (0: every token was new).
    pub wrapped: u64,
    pub peak_rss: u64,
    pub ready_after: Duration,
    /// The server's own CPU time per request (user and system), whatever core it ran on.
    pub cpu_per_request: Duration,
    /// The least and most CPU per request of the runs this one is the median of.
    pub cpu_range: (Duration, Duration),
    /// Heap allocations per request (malloc, calloc, realloc), when they were counted.
    pub allocations: Option<f64>,
    /// The requests a second of the runs this one is the median of, in the order they ran
    /// (one a round), for ratios taken round by round.
    pub rounds: Vec<f64>,
}

impl Measured {
    /// One line for the terminal.
    pub fn line(&self) -> String {
        format!(
            "{:<18} {:>9.0} req/s  CPU {:>5.1} µs/req  allocations {:>6}  p50 {:>7.3} ms  p99 {:>7.3} ms  errors {}  peak RSS {:.1} MiB  ready after {:.0} ms{}",
            format!("{:?}", self.scenario),
            self.per_second,
            micros(self.cpu_per_request),
            self.allocations
                .map_or("-".to_owned(), |count| format!("{count:.1}")),
            millis(self.p50),
            millis(self.p99),
            self.errors,
            mib(self.peak_rss),
            millis(self.ready_after),
            if self.wrapped > 0 {
                format!("  (fresh tokens reused {} times)", self.wrapped)
            } else {
                String::new()
            }
        )
    }
}

/// The run with the median requests a second of `runs` (one scenario's, each against a new
/// server process), with the range of them all and the highest peak memory. One run can be
/// a fifth off another on a shared 2-core machine, as the scheduler places the server's and
/// wrk's threads.
pub fn median(mut runs: Vec<Measured>) -> Measured {
    let rounds = runs.iter().map(|run| run.per_second).collect();
    runs.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    let range = (runs[0].per_second, runs[runs.len() - 1].per_second);
    let peak_rss = runs.iter().map(|run| run.peak_rss).max().unwrap_or(0);
    let wrapped = runs.iter().map(|run| run.wrapped).sum();
    let cpu = runs.iter().map(|run| run.cpu_per_request);
    let cpu_range = (
        cpu.clone().min().unwrap_or_default(),
        cpu.max().unwrap_or_default(),
    );
    let mut median = runs.swap_remove(runs.len() / 2);
    median.range = range;
    median.peak_rss = peak_rss;
    median.wrapped = wrapped;
    median.cpu_range = cpu_range;
    median.rounds = rounds;
    median
}

/// Runs `scenario` against a new process of `target`: 2 s of warm-up, then `load.seconds`
/// measured, with the server's CPU time, peak memory and time to ready.
pub fn measure_once(
    target: &Target,
    scenario: Scenario,
    load: &Load,
    fresh: Option<&Tokens>,
) -> Result<Measured> {
    let mut server = target.start_with(&scenario.overrides())?;
    let bearer = prepare(&server, scenario, load)?;
    // Warm up (connections, allocator, the repeated token's cache entry) on the same route
    // with the repeated token: the fresh tokens stay unseen.
    let url = format!("{}{}", server.address, scenario.path());
    load.run(&url, bearer.as_deref(), None, 2)?;
    let cpu_before = server.cpu_time()?;
    let mut measured = load.run(
        &url,
        bearer.as_deref(),
        fresh.map(|tokens| tokens.file.as_path()),
        load.seconds,
    )?;
    measured.cpu_per_request = (server.cpu_time()? - cpu_before) / measured.requests.max(1) as u32;
    measured.cpu_range = (measured.cpu_per_request, measured.cpu_per_request);
    measured.scenario = scenario;
    measured.peak_rss = server.peak_rss()?;
    measured.ready_after = server.ready_after;
    if let Ok(Some(status)) = server.child.try_wait() {
        return Err(format!(
            "the {} exited during the run: {status}",
            target.name()
        ));
    }
    Ok(measured)
}

/// What a scenario needs before its load: the bearer header it sends (none on liveness),
/// and for `/api/v1/users/me` the caller's profile.
pub(super) fn prepare(server: &Server, scenario: Scenario, load: &Load) -> Result<Option<String>> {
    let bearer = match scenario {
        Scenario::Liveness | Scenario::LivenessQuiet | Scenario::LivenessOneWorker => None,
        _ => Some(format!("Bearer {}", load.token(scenario)?)),
    };
    if scenario == Scenario::UsersMe {
        let bearer = bearer.as_deref().unwrap_or_default();
        let (status, body) = http::request(
            "PUT",
            &format!("{}/api/v1/users/me", server.address),
            &[
                ("Authorization", bearer),
                ("Content-Type", "application/json"),
            ],
            r#"{"display_name":"Bench"}"#,
        )?;
        if !(200..300).contains(&status) {
            return Err(format!("PUT /api/v1/users/me answered {status}: {body}"));
        }
    }
    Ok(bearer)
}

impl Load {
    /// `seconds` of load with `wrk`, tokens from the token endpoint named in `discovery` (the
    /// provider's discovery document).
    pub fn new(wrk: PathBuf, seconds: u32, discovery: &str) -> Result<Self> {
        Ok(Self {
            wrk,
            seconds,
            script: root().join("xtask/bench/wrk.lua"),
            token_endpoint: json_string(discovery, "token_endpoint")
                .ok_or("no token_endpoint in discovery")?,
        })
    }

    /// A token from the provider for the scenario's algorithm (its default resource is
    /// signed with RS256, `/es256` with ES256).
    pub fn token(&self, scenario: Scenario) -> Result<String> {
        let resource = match scenario {
            Scenario::Es256Repeated | Scenario::Es256Fresh => format!("{AUDIENCE}/es256"),
            _ => AUDIENCE.to_owned(),
        };
        client_credentials(&self.token_endpoint, &resource)
    }

    /// Loads `url` for `seconds`: with a fresh token a request from `tokens`, else with the
    /// `bearer` header (if any) on every request.
    pub fn run(
        &self,
        url: &str,
        bearer: Option<&str>,
        tokens: Option<&Path>,
        seconds: u32,
    ) -> Result<Measured> {
        self.run_with(url, bearer, tokens, seconds, (WRK_THREADS, WRK_CONNECTIONS))
    }

    /// Like [`Load::run`], with `(threads, connections)` of wrk.
    pub fn run_with(
        &self,
        url: &str,
        bearer: Option<&str>,
        tokens: Option<&Path>,
        seconds: u32,
        (threads, connections): (u32, u32),
    ) -> Result<Measured> {
        let mut command = Command::new(&self.wrk);
        command
            .args(["--threads", &threads.to_string()])
            .args(["--connections", &connections.to_string()])
            .args(["--duration", &format!("{seconds}s")])
            .args(["--timeout", "10s"])
            .arg("--script")
            .arg(&self.script)
            .env("BENCH_THREADS", threads.to_string());
        match tokens {
            Some(tokens) => {
                command.env("BENCH_TOKENS", tokens);
            }
            None => {
                command.env_remove("BENCH_TOKENS");
                if let Some(bearer) = bearer {
                    command.args(["--header", &format!("Authorization: {bearer}")]);
                }
            }
        }
        let output = command.arg(url).output().map_err(|e| format!("wrk: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find_map(|line| line.strip_prefix("bench "))
            .ok_or_else(|| {
                format!(
                    "wrk printed no figures:\n{stdout}{}",
                    String::from_utf8_lossy(&output.stderr)
                )
            })?;
        let value = |name: &str| -> Result<u64> {
            line.split(' ')
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
                .and_then(|value| value.parse().ok())
                .ok_or_else(|| format!("no {name} in wrk's figures: {line}"))
        };
        let requests = value("requests")?;
        let duration = Duration::from_micros(value("duration_us")?);
        Ok(Measured {
            scenario: Scenario::Liveness,
            requests,
            per_second: requests as f64 / duration.as_secs_f64(),
            range: (0.0, 0.0),
            p50: Duration::from_micros(value("p50_us")?),
            p99: Duration::from_micros(value("p99_us")?),
            non_2xx: value("status")?,
            errors: ["connect", "read", "write", "status", "timeout"]
                .iter()
                .map(|name| value(name))
                .sum::<Result<u64>>()?,
            wrapped: value("wrapped")?,
            peak_rss: 0,
            ready_after: Duration::ZERO,
            cpu_per_request: Duration::ZERO,
            cpu_range: (Duration::ZERO, Duration::ZERO),
            allocations: None,
            rounds: Vec::new(),
        })
    }
}
