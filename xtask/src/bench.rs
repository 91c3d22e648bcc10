//! `cargo xtask bench [--seconds N] [--no-write]`: load tests the default example against a
//! bare actix-web floor, on loopback, and writes the figures to `docs/benchmarks.md`.
//!
//! Both servers are built in release. The npm `oidc-provider` issues the tokens (the service
//! does real discovery and fetches its keys; the floor is given the same public keys), and
//! `xtask/bench/mint.mjs` mints as many more as a fresh-token run needs with the provider's
//! own private keys. `wrk` drives each route with 2 threads and 64 connections; every
//! scenario starts a new server process, so its peak RSS and its token cache are its own.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, Scratch, cargo, provider, root, run, section, tools};

const WRK_THREADS: u32 = 2;
const WRK_CONNECTIONS: u32 = 64;
const WORKERS: &str = "2";
/// The audience of the provider's default resource.
pub(crate) const AUDIENCE: &str = "https://api.example.test";
pub(crate) const SERVICE: &str = "default-service";
const FLOOR: &str = "bench-floor";
/// Where `docs/benchmarks.md` keeps the generated part; text outside the markers is kept.
const START_MARKER: &str = "<!-- cargo xtask bench: start -->";
const END_MARKER: &str = "<!-- cargo xtask bench: end -->";

pub fn bench(args: &[String]) -> Result {
    let mut seconds = 10;
    let mut write = true;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|value| value.parse().ok())
                    .ok_or("--seconds takes a whole number")?;
            }
            "--no-write" => write = false,
            other => return Err(format!("bench: unknown argument {other}")),
        }
    }
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
    let state = root().join("target/xtask-tools/oidc-provider/bench");
    let idp = provider::Provider::start(&state)?;
    let discovery = http_get(&format!("{}/.well-known/openid-configuration", idp.issuer))?;
    let jwks_uri = json_string(&discovery, "jwks_uri").ok_or("no jwks_uri in discovery")?;
    let jwks = scratch.path.join("jwks.json");
    fs::write(&jwks, http_get(&jwks_uri)?).map_err(|e| e.to_string())?;
    let load = Load {
        wrk,
        seconds,
        script: root().join("xtask/bench/wrk.lua"),
        token_endpoint: json_string(&discovery, "token_endpoint")
            .ok_or("no token_endpoint in discovery")?,
    };
    let keys = state.join("keys.json");
    let rs256_fresh = Tokens::mint(
        &keys,
        &load.token(Scenario::Rs256Fresh)?,
        &scratch.path.join("rs256.txt"),
        20_000,
    )?;
    let es256_fresh = Tokens::mint(
        &keys,
        &load.token(Scenario::Es256Fresh)?,
        &scratch.path.join("es256.txt"),
        20_000,
    )?;
    println!("issuer {}; tokens minted", idp.issuer);
    let before = Machine::read();

    section("the floor: bare actix-web, one signature check");
    let floor = Target::Floor {
        binary: binaries.join(FLOOR),
        jwks: jwks.clone(),
        issuer: idp.issuer.clone(),
    };
    let mut floor_results = Vec::new();
    for scenario in Scenario::ALL {
        if scenario == Scenario::UsersMe {
            continue;
        }
        let tokens = match scenario {
            Scenario::Rs256Fresh => Some(&rs256_fresh),
            Scenario::Es256Fresh => Some(&es256_fresh),
            _ => None,
        };
        let result = measure(&floor, scenario, &load, tokens)?;
        println!("{}", result.line());
        floor_results.push(result);
    }

    section("the default example, release build, JSON logs");
    let service = Target::Service {
        binary: binaries.join(SERVICE),
        issuer: idp.issuer.clone(),
        dir: scratch.path.join("service"),
        env: Vec::new(),
        log: None,
    };
    fs::create_dir_all(scratch.path.join("service")).map_err(|e| e.to_string())?;
    let mut rs256_fresh = rs256_fresh;
    let mut es256_fresh = es256_fresh;
    let mut service_results = Vec::new();
    for scenario in Scenario::ALL {
        // Enough unseen tokens for the service to run at the floor's pace, and a margin.
        let tokens = match scenario {
            Scenario::Rs256Fresh => Some(&mut rs256_fresh),
            Scenario::Es256Fresh => Some(&mut es256_fresh),
            _ => None,
        };
        if let Some(tokens) = tokens {
            let floor_requests = floor_results
                .iter()
                .find(|result| result.scenario == scenario)
                .map_or(0, |result| result.requests);
            tokens.ensure(floor_requests * 11 / 10 + 1_000)?;
        }
        let tokens = match scenario {
            Scenario::Rs256Fresh => Some(&rs256_fresh),
            Scenario::Es256Fresh => Some(&es256_fresh),
            _ => None,
        };
        let result = measure(&service, scenario, &load, tokens)?;
        println!("{}", result.line());
        service_results.push(result);
    }
    let after = Machine::read();

    let report = Report {
        seconds,
        before,
        after,
        floor: floor_results,
        service: service_results,
        service_binary: file_size(&binaries.join(SERVICE))?,
        floor_binary: file_size(&binaries.join(FLOOR))?,
    };
    let markdown = report.markdown();
    println!("\n{markdown}");
    if write {
        write_report(&markdown)?;
        println!("wrote docs/benchmarks.md");
    }
    Ok(())
}

/// What is measured, in the order it runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Scenario {
    Liveness,
    Rs256Repeated,
    Rs256Fresh,
    Es256Repeated,
    Es256Fresh,
    UsersMe,
}

impl Scenario {
    const ALL: [Self; 6] = [
        Self::Liveness,
        Self::Rs256Repeated,
        Self::Rs256Fresh,
        Self::Es256Repeated,
        Self::Es256Fresh,
        Self::UsersMe,
    ];

    fn path(self) -> &'static str {
        match self {
            Self::Liveness => "/health/liveness",
            Self::UsersMe => "/api/v1/users/me",
            _ => "/api/v1/protected",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Liveness => "`GET /health/liveness`",
            Self::Rs256Repeated => "`/api/v1/protected`, RS256, one repeated token",
            Self::Rs256Fresh => "`/api/v1/protected`, RS256, a fresh token per request",
            Self::Es256Repeated => "`/api/v1/protected`, ES256, one repeated token",
            Self::Es256Fresh => "`/api/v1/protected`, ES256, a fresh token per request",
            Self::UsersMe => "`GET /api/v1/users/me` (SQLite), RS256, one repeated token",
        }
    }

    /// The floor's scenario this one is compared with.
    fn floor(self) -> Self {
        match self {
            Self::UsersMe => Self::Rs256Repeated,
            other => other,
        }
    }
}

/// The server a scenario runs against.
pub(crate) enum Target {
    Floor {
        binary: PathBuf,
        jwks: PathBuf,
        issuer: String,
    },
    Service {
        binary: PathBuf,
        issuer: String,
        /// Working directory, holding the SQLite file.
        dir: PathBuf,
        /// Settings on top of the production ones.
        env: Vec<(&'static str, String)>,
        /// Where its logs go; thrown away when `None`.
        log: Option<PathBuf>,
    },
}

/// A server process; killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) address: String,
    /// From spawning the process to the first 200 from its readiness probe (or liveness,
    /// for the floor, which has no readiness).
    ready_after: Duration,
}

impl Target {
    pub(crate) fn start(&self) -> Result<Server> {
        let port = crate::postgres::free_port()?;
        let started = Instant::now();
        let (mut command, probe) = match self {
            Self::Floor {
                binary,
                jwks,
                issuer,
            } => {
                let mut command = Command::new(binary);
                command
                    .env("FLOOR_JWKS", jwks)
                    .env("FLOOR_ISSUER", issuer)
                    .env("FLOOR_AUDIENCE", AUDIENCE);
                (command, "/health/liveness")
            }
            Self::Service {
                binary,
                issuer,
                dir,
                env,
                log,
            } => {
                let _ = fs::remove_file(dir.join("bench.db"));
                let mut command = Command::new(binary);
                command
                    .current_dir(dir)
                    .env("APP_ENVIRONMENT", "production")
                    .env("HOST", "127.0.0.1")
                    .env("CONFIG_DIR", "/nonexistent")
                    .env("SHUTDOWN_DELAY", "0")
                    .env("LOG_JSON_OUTPUT", "true")
                    .env("LOG_LEVEL", "info")
                    .env("OIDC_ISSUER_URL", issuer)
                    // The provider on loopback speaks plain http.
                    .env("OIDC_ALLOW_HTTP", "true")
                    .env("OIDC_AUDIENCE", AUDIENCE)
                    .env("DATABASE_URL", "sqlite:bench.db")
                    .envs(env.iter().map(|(name, value)| (name, value)));
                if let Some(log) = log {
                    let file = fs::File::create(log).map_err(|e| e.to_string())?;
                    command.stdout(file);
                }
                (command, "/health/readiness")
            }
        };
        if !matches!(self, Self::Service { log: Some(_), .. }) {
            // Logs are written, as in production, and thrown away.
            command.stdout(Stdio::null());
        }
        let child = command
            .env("PORT", port.to_string())
            .env("WORKERS", WORKERS)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let address = format!("http://127.0.0.1:{port}");
        let mut server = Server {
            child,
            address,
            ready_after: Duration::ZERO,
        };
        let deadline = started + Duration::from_secs(20);
        loop {
            if let Ok((200, _)) = http("GET", &format!("{}{probe}", server.address), &[], "") {
                server.ready_after = started.elapsed();
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("the server exited before it was ready: {status}"));
            }
            if Instant::now() > deadline {
                return Err("the server was not ready within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Floor { .. } => "floor",
            Self::Service { .. } => "service",
        }
    }
}

impl Server {
    /// The CPU time the process has used so far, user and system (in clock ticks of 10 ms,
    /// Linux's USER_HZ).
    pub(crate) fn cpu_time(&self) -> Result<Duration> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .map_err(|e| e.to_string())?;
        // The fields after the command name, which is in parentheses: utime is the 14th
        // field of the line, stime the 15th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |index: usize| -> Result<u64> {
            fields
                .get(index)
                .and_then(|value| value.parse().ok())
                .ok_or_else(|| format!("unreadable /proc/PID/stat: {stat}"))
        };
        Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
    }

    /// The most resident memory the process has had (VmHWM), in bytes.
    pub(crate) fn peak_rss(&self) -> Result<u64> {
        memory(self.child.id(), "VmHWM:").ok_or_else(|| "no VmHWM in /proc/PID/status".into())
    }
}

/// A memory figure of `pid`'s `/proc/PID/status` (`field` such as `VmRSS:`), in bytes; `None`
/// once the process has exited.
pub(crate) fn memory(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A file of tokens minted like one template token, one a line.
pub(crate) struct Tokens {
    keys: PathBuf,
    template: String,
    pub(crate) file: PathBuf,
    count: u64,
}

impl Tokens {
    pub(crate) fn mint(keys: &Path, template: &str, file: &Path, count: u64) -> Result<Self> {
        let mut tokens = Self {
            keys: keys.to_owned(),
            template: template.to_owned(),
            file: file.to_owned(),
            count: 0,
        };
        fs::write(file, "").map_err(|e| e.to_string())?;
        tokens.ensure(count)?;
        Ok(tokens)
    }

    /// Mints more tokens until the file holds at least `count`.
    fn ensure(&mut self, count: u64) -> Result {
        if self.count >= count {
            return Ok(());
        }
        let more = count - self.count;
        let part = self.file.with_extension("more");
        let started = Instant::now();
        run(Command::new("node")
            .arg(root().join("xtask/bench/mint.mjs"))
            .arg(&self.keys)
            .arg(&self.template)
            .arg(more.to_string())
            .arg(&part))?;
        let minted = fs::read(&part).map_err(|e| e.to_string())?;
        fs::OpenOptions::new()
            .append(true)
            .open(&self.file)
            .and_then(|mut file| file.write_all(&minted))
            .map_err(|e| e.to_string())?;
        self.count = count;
        println!(
            "minted {more} tokens ({} in all) in {:.1} s",
            self.count,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

pub(crate) struct Load {
    pub(crate) wrk: PathBuf,
    pub(crate) seconds: u32,
    pub(crate) script: PathBuf,
    pub(crate) token_endpoint: String,
}

/// What one wrk run measured.
#[derive(Clone)]
pub(crate) struct Measured {
    scenario: Scenario,
    pub(crate) requests: u64,
    pub(crate) per_second: f64,
    p50: Duration,
    p99: Duration,
    /// Non-2xx/3xx answers, and connect, read, write and timeout errors.
    pub(crate) errors: u64,
    /// Non-2xx/3xx answers alone.
    pub(crate) non_2xx: u64,
    /// Whole passes over the fresh tokens after the first (0: every token was new).
    wrapped: u64,
    peak_rss: u64,
    ready_after: Duration,
    /// The server's own CPU time per request (user and system), whatever core it ran on.
    cpu_per_request: Duration,
}

impl Measured {
    fn line(&self) -> String {
        format!(
            "{:<16} {:>9.0} req/s  CPU {:>5.1} µs/req  p50 {:>7.3} ms  p99 {:>7.3} ms  errors {}  peak RSS {:.1} MiB  ready after {:.0} ms{}",
            format!("{:?}", self.scenario),
            self.per_second,
            micros(self.cpu_per_request),
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

fn measure(
    target: &Target,
    scenario: Scenario,
    load: &Load,
    fresh: Option<&Tokens>,
) -> Result<Measured> {
    let mut server = target.start()?;
    let bearer = match scenario {
        Scenario::Liveness => None,
        _ => Some(format!("Bearer {}", load.token(scenario)?)),
    };
    if scenario == Scenario::UsersMe {
        let bearer = bearer.as_deref().unwrap_or_default();
        let (status, body) = http(
            "PUT",
            &format!("{}/api/v1/users/me", server.address),
            &[
                ("Authorization", bearer),
                ("Content-Type", "application/json"),
            ],
            r#"{"display_name":"Bench","email":"bench@example.test"}"#,
        )?;
        if !(200..300).contains(&status) {
            return Err(format!("PUT /api/v1/users/me answered {status}: {body}"));
        }
    }
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

impl Load {
    /// A token from the provider for the scenario's algorithm (its default resource is
    /// signed with RS256, `/es256` with ES256).
    pub(crate) fn token(&self, scenario: Scenario) -> Result<String> {
        let resource = match scenario {
            Scenario::Es256Repeated | Scenario::Es256Fresh => format!("{AUDIENCE}/es256"),
            _ => AUDIENCE.to_owned(),
        };
        client_credentials(&self.token_endpoint, &resource)
    }

    pub(crate) fn run(
        &self,
        url: &str,
        bearer: Option<&str>,
        tokens: Option<&Path>,
        seconds: u32,
    ) -> Result<Measured> {
        let mut command = Command::new(&self.wrk);
        command
            .args(["--threads", &WRK_THREADS.to_string()])
            .args(["--connections", &WRK_CONNECTIONS.to_string()])
            .args(["--duration", &format!("{seconds}s")])
            .args(["--timeout", "10s"])
            .arg("--script")
            .arg(&self.script)
            .env("BENCH_THREADS", WRK_THREADS.to_string());
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
        })
    }
}

/// Processes that mean someone is compiling on the machine.
const COMPILERS: [&str; 6] = ["rustc", "cc1", "cc1plus", "ld", "ld.lld", "rust-lld"];

/// The machine, and whether anything else was busy on it.
struct Machine {
    at: String,
    cpu: String,
    cores: String,
    memory: String,
    kernel: String,
    load: String,
    /// Compilers or other heavy processes running besides the benchmark.
    busy: Vec<String>,
}

impl Machine {
    fn read() -> Self {
        let output = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .output()
                .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
                .unwrap_or_default()
        };
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mut busy: Vec<String> = output("ps", &["-eo", "comm="])
            .lines()
            .map(str::trim)
            .filter(|name| COMPILERS.contains(name))
            .map(str::to_owned)
            .collect();
        busy.dedup();
        Self {
            at: output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            cpu: cpuinfo
                .lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
                .unwrap_or_default(),
            cores: output("nproc", &[]),
            memory: meminfo
                .lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map(|kib| format!("{:.0} GiB", kib / 1024.0 / 1024.0))
                .unwrap_or_default(),
            kernel: output("uname", &["-sr"]),
            load: fs::read_to_string("/proc/loadavg")
                .map(|text| text.split(' ').take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
            busy,
        }
    }
}

struct Report {
    seconds: u32,
    before: Machine,
    after: Machine,
    floor: Vec<Measured>,
    service: Vec<Measured>,
    service_binary: u64,
    floor_binary: u64,
}

impl Report {
    fn floor(&self, scenario: Scenario) -> Option<&Measured> {
        self.floor.iter().find(|m| m.scenario == scenario.floor())
    }

    fn service(&self, scenario: Scenario) -> Option<&Measured> {
        self.service.iter().find(|m| m.scenario == scenario)
    }

    fn markdown(&self) -> String {
        let machine = &self.before;
        let tool_version = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .output()
                .map(|out| {
                    let text = String::from_utf8_lossy(&out.stdout).into_owned()
                        + &String::from_utf8_lossy(&out.stderr);
                    text.lines().next().unwrap_or_default().trim().to_owned()
                })
                .unwrap_or_default()
        };
        let mut md = String::new();
        let _ = writeln!(
            md,
            "Measured {} by `cargo xtask bench` on {} ({} cores, {}), {}; {}; {}.",
            machine.at,
            machine.cpu,
            machine.cores,
            machine.memory,
            machine.kernel,
            tool_version("rustc", &["--version"]),
            tool_version("wrk", &["-v"])
                .split(" Copyright")
                .next()
                .unwrap_or_default(),
        );
        let busy: Vec<&String> = machine.busy.iter().chain(&self.after.busy).collect();
        let _ = writeln!(
            md,
            "Load average {} before the run and {} after it; {}.",
            machine.load,
            self.after.load,
            if busy.is_empty() {
                "no compiler was running".to_owned()
            } else {
                format!(
                    "**other processes were compiling ({})**: the figures are noisy",
                    busy.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        let _ = writeln!(
            md,
            "\nEach row: a new server process (`WORKERS={WORKERS}`), 2 s of warm-up, then \
             {} s of `wrk --threads {WRK_THREADS} --connections {WRK_CONNECTIONS}` on the same \
             2 cores. The service runs with production settings (JSON logs at `info`, written \
             to `/dev/null`). Server CPU per request is the server process's own user and system \
             time over the run divided by the requests it answered (10 ms resolution), which \
             leaves out what wrk costs.",
            self.seconds
        );
        md.push_str(
            "\n| Route | Server | Requests/s | × floor | Server CPU per request | p50 | p99 | Errors | Peak RSS |\n\
             | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for scenario in Scenario::ALL {
            let floor = self.floor(scenario);
            if let Some(floor) = floor.filter(|_| scenario != Scenario::UsersMe) {
                let _ = writeln!(md, "{}", row(scenario.title(), "floor", floor, Some(floor)));
            }
            if let Some(service) = self.service(scenario) {
                let _ = writeln!(md, "{}", row(scenario.title(), "service", service, floor));
            }
        }
        let mut ready: Vec<Duration> = self.service.iter().map(|m| m.ready_after).collect();
        ready.sort();
        let median = ready.get(ready.len() / 2).copied().unwrap_or_default();
        let _ = writeln!(
            md,
            "\nService start to ready (first 200 from `/health/readiness`: settings, \
             migrations, discovery and keys fetched from the provider): median {:.0} ms of {} \
             starts (from {:.0} to {:.0} ms).",
            millis(median),
            ready.len(),
            millis(ready.first().copied().unwrap_or_default()),
            millis(ready.last().copied().unwrap_or_default()),
        );
        let _ = writeln!(
            md,
            "Release binary: service {:.1} MiB, floor {:.1} MiB (unstripped, as `cargo build \
             --release` leaves them).",
            mib(self.service_binary),
            mib(self.floor_binary)
        );
        let wrapped: Vec<String> = self
            .service
            .iter()
            .filter(|m| m.wrapped > 0)
            .map(|m| format!("{:?}", m.scenario))
            .collect();
        if !wrapped.is_empty() {
            let _ = writeln!(
                md,
                "\n**Fresh tokens ran out and were reused in {}**: those rows include cache hits.",
                wrapped.join(", ")
            );
        }
        md.push_str("\nTargets:\n\n| Target | Measured | Met |\n| --- | --- | --- |\n");
        let rps = |m: Option<&Measured>| m.map_or(0.0, |m| m.per_second);
        let peak = self.service.iter().map(|m| m.peak_rss).max().unwrap_or(0);
        let service = |s| rps(self.service(s));
        let floor = |s| rps(self.floor(s));
        let targets = [
            (
                "liveness, JSON logs on ≥ 0.5 × the floor's liveness".to_owned(),
                service(Scenario::Liveness) / floor(Scenario::Liveness),
                0.5,
            ),
            (
                "protected, RS256, repeated token ≥ 0.8 × the service's liveness".to_owned(),
                service(Scenario::Rs256Repeated) / service(Scenario::Liveness),
                0.8,
            ),
            (
                "protected, ES256, repeated token ≥ 0.8 × the service's liveness".to_owned(),
                service(Scenario::Es256Repeated) / service(Scenario::Liveness),
                0.8,
            ),
            (
                "protected, RS256, fresh tokens ≥ 0.9 × the floor's".to_owned(),
                service(Scenario::Rs256Fresh) / floor(Scenario::Rs256Fresh),
                0.9,
            ),
            (
                "protected, ES256, fresh tokens ≥ 0.9 × the floor's".to_owned(),
                service(Scenario::Es256Fresh) / floor(Scenario::Es256Fresh),
                0.9,
            ),
        ];
        for (name, ratio, target) in targets {
            let _ = writeln!(
                md,
                "| {name} | {ratio:.2} × | {} |",
                if ratio >= target { "yes" } else { "**no**" }
            );
        }
        let _ = writeln!(
            md,
            "| peak RSS under load ≤ 32 MiB with `WORKERS=2` | {:.1} MiB | {} |",
            mib(peak),
            if peak <= 32 * 1024 * 1024 {
                "yes"
            } else {
                "**no**"
            }
        );
        md
    }
}

fn row(title: &str, server: &str, measured: &Measured, floor: Option<&Measured>) -> String {
    let ratio = floor.map_or("".to_owned(), |floor| {
        format!("{:.2}", measured.per_second / floor.per_second)
    });
    format!(
        "| {title} | {server} | {:.0} | {ratio} | {:.1} µs | {:.2} ms | {:.2} ms | {} | {:.1} MiB |",
        measured.per_second,
        micros(measured.cpu_per_request),
        millis(measured.p50),
        millis(measured.p99),
        measured.errors,
        mib(measured.peak_rss)
    )
}

/// Replaces the generated part of `docs/benchmarks.md`, keeping the rest.
fn write_report(markdown: &str) -> Result {
    let path = root().join("docs/benchmarks.md");
    let existing = fs::read_to_string(&path).unwrap_or_default();
    let generated = format!("{START_MARKER}\n{markdown}{END_MARKER}");
    let text = match (existing.find(START_MARKER), existing.find(END_MARKER)) {
        (Some(start), Some(end)) if start < end => format!(
            "{}{generated}{}",
            &existing[..start],
            &existing[end + END_MARKER.len()..]
        ),
        _ => format!("# Benchmarks\n\n{generated}\n"),
    };
    fs::create_dir_all(root().join("docs")).map_err(|e| e.to_string())?;
    fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A client-credentials token for `resource` from the provider's token endpoint.
pub(crate) fn client_credentials(token_endpoint: &str, resource: &str) -> Result<String> {
    let body = format!(
        "grant_type=client_credentials&scope=read&resource={}",
        resource.replace(':', "%3A").replace('/', "%2F")
    );
    // test-client:test-secret, the provider harness's client.
    let (status, answer) = http(
        "POST",
        token_endpoint,
        &[
            ("Authorization", "Basic dGVzdC1jbGllbnQ6dGVzdC1zZWNyZXQ="),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &body,
    )?;
    if status != 200 {
        return Err(format!("the token endpoint answered {status}: {answer}"));
    }
    json_string(&answer, "access_token").ok_or_else(|| format!("no access_token in {answer}"))
}

pub(crate) fn http_get(url: &str) -> Result<String> {
    match http("GET", url, &[], "")? {
        (200, body) => Ok(body),
        (status, body) => Err(format!("GET {url} answered {status}: {body}")),
    }
}

/// One HTTP/1.1 request over a new loopback connection; returns the status and the body.
pub(crate) fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// URL: {url}"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = TcpStream::connect(host).map_err(|e| format!("{url}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("{url}: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("{url}: {e}"))?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{url}: a truncated response"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{url}: no status line"))?;
    let chunked = head
        .lines()
        .any(|line| line.eq_ignore_ascii_case("transfer-encoding: chunked"));
    Ok((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    ))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The string value of `"name"` in a flat JSON object (enough for the provider's answers).
pub(crate) fn json_string(json: &str, name: &str) -> Option<String> {
    let rest = json.split(&format!("\"{name}\":")).nth(1)?;
    let rest = rest.trim_start().strip_prefix('"')?;
    Some(rest.split('"').next()?.replace("\\/", "/"))
}

fn file_size(path: &Path) -> Result<u64> {
    Ok(fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len())
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

pub(crate) fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}
