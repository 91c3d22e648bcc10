//! The benchmark's report: the machine it ran on and whether anything else was busy, a table
//! of every scenario against the floor, the targets and whether they were met, in markdown
//! for the generated part of `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::harness::{
    Measured, Scenario, WORKERS, WRK_CONNECTIONS, WRK_THREADS, mib, micros, millis,
};
use crate::shell::{Result, root};

/// Where `docs/benchmarks.md` keeps the generated part; text outside the markers is kept.
const START_MARKER: &str = "<!-- cargo xtask bench: start -->";
const END_MARKER: &str = "<!-- cargo xtask bench: end -->";

/// Processes that mean someone is compiling on the machine.
const COMPILERS: [&str; 6] = ["rustc", "cc1", "cc1plus", "ld", "ld.lld", "rust-lld"];

/// The machine, and whether anything else was busy on it.
pub struct Machine {
    at: String,
    cpu: String,
    cores: String,
    memory: String,
    kernel: String,
    load: String,
    /// The CPUs' time so far, and how much of it the hypervisor gave to other machines.
    ticks: Option<Ticks>,
    /// Compilers or other heavy processes running besides the benchmark.
    busy: Vec<String>,
}

impl Machine {
    pub fn read() -> Self {
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
            ticks: Ticks::read(),
            busy,
        }
    }
}

/// The machine's CPU time since boot, from the first line of `/proc/stat`, in clock ticks.
#[derive(Clone, Copy)]
pub struct Ticks {
    all: u64,
    steal: u64,
}

impl Ticks {
    pub fn read() -> Option<Self> {
        let stat = fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .map(|field| field.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq steal; guest time is already in user.
        Some(Self {
            all: fields.iter().take(8).sum(),
            steal: *fields.get(7)?,
        })
    }

    /// The share of the CPUs' time since `earlier` that the hypervisor gave to other
    /// machines (steal time): on a virtual machine, how busy its host was.
    pub fn steal_since(self, earlier: Self) -> Option<f64> {
        let all = self.all.checked_sub(earlier.all)?;
        let steal = self.steal.checked_sub(earlier.steal)?;
        (all > 0).then(|| steal as f64 * 100.0 / all as f64)
    }
}

/// What one run of the benchmark measured.
pub struct Report {
    pub seconds: u32,
    /// How many runs each row is the median of.
    pub rounds: u32,
    pub before: Machine,
    pub after: Machine,
    pub floor: Vec<Measured>,
    pub service: Vec<Measured>,
    /// Release binary sizes, in bytes.
    pub service_binary: u64,
    pub floor_binary: u64,
}

impl Report {
    fn floor(&self, scenario: Scenario) -> Option<&Measured> {
        self.floor.iter().find(|m| m.scenario == scenario.floor())
    }

    fn service(&self, scenario: Scenario) -> Option<&Measured> {
        self.service.iter().find(|m| m.scenario == scenario)
    }

    pub fn markdown(&self) -> String {
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
        if let Some(steal) = self
            .after
            .ticks
            .zip(machine.ticks)
            .and_then(|(after, before)| after.steal_since(before))
        {
            let _ = writeln!(
                md,
                "The hypervisor gave {steal:.1} % of the CPUs' time during the run to other \
                 machines (steal time, from `/proc/stat`)."
            );
        }
        if let Some(floor) = self.floor(Scenario::Liveness) {
            let _ = writeln!(
                md,
                "The floor's liveness took {:.1} to {:.1} µs of CPU a request over its runs: \
                 the gauge of how quiet the host was (see above).",
                micros(floor.cpu_range.0),
                micros(floor.cpu_range.1),
            );
        }
        let _ = writeln!(
            md,
            "\nEach row: the median of {} runs by requests per second (their range in \
             brackets; the peak RSS is the highest of them), taken round by round (every route \
             once a round, each of the floor's runs just before the service's runs compared \
             with it), each run a new server process (`WORKERS={WORKERS}` unless the \
             route says otherwise), 2 s of warm-up, then {} s of \
             `wrk --threads {WRK_THREADS} --connections {WRK_CONNECTIONS}` on the same 2 cores. \
             The service runs with production settings: JSON logs at `info` (unless the route \
             says otherwise) into a pipe that the benchmark reads, as a container runtime reads \
             them, and metrics on. Server CPU per request is the server process's own user and \
             system time over the run divided by the requests it answered (10 ms resolution), \
             which leaves out what wrk costs. Allocations per \
             request: malloc, calloc, realloc and aligned allocations of another server process, \
             counted by a preloaded library over 2 s of one connection after 1 s of warm-up.",
            self.rounds, self.seconds
        );
        md.push_str(
            "\n| Route | Server | Requests/s | × floor | Server CPU per request | Allocations per request | p50 | p99 | Errors | Peak RSS |\n\
             | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for scenario in Scenario::ALL {
            let floor = self.floor(scenario);
            if scenario.floor_runs()
                && let Some(floor) = floor
            {
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
        md.push_str(
            "\nTargets (measured: the ratio of the two rows' medians, which decides; round by \
             round: the median of the ratios of the two runs of each round, and their range):\n\n\
             | Target | Measured | Round by round | Met |\n| --- | --- | --- | --- |\n",
        );
        let service = |s| self.service(s);
        let floor = |s| self.floor(s);
        let targets = [
            (
                "liveness, JSON logs at `info` into a pipe ≥ 0.5 × the floor's liveness",
                service(Scenario::Liveness).zip(floor(Scenario::Liveness)),
                0.5,
            ),
            (
                "liveness, logs at `warn` ≥ 0.7 × the floor's liveness",
                service(Scenario::LivenessQuiet).zip(floor(Scenario::Liveness)),
                0.7,
            ),
            (
                "protected, RS256, fresh tokens ≥ 0.9 × the floor's",
                service(Scenario::Rs256Fresh).zip(floor(Scenario::Rs256Fresh)),
                0.9,
            ),
            (
                "protected, ES256, fresh tokens ≥ 0.9 × the floor's",
                service(Scenario::Es256Fresh).zip(floor(Scenario::Es256Fresh)),
                0.9,
            ),
            (
                "protected, RS256, repeated token ≥ 0.9 × the service's liveness",
                service(Scenario::Rs256Repeated).zip(service(Scenario::Liveness)),
                0.9,
            ),
            (
                "protected, ES256, repeated token ≥ 0.9 × the service's liveness",
                service(Scenario::Es256Repeated).zip(service(Scenario::Liveness)),
                0.9,
            ),
        ];
        // A partial run (`--only`) leaves out the targets it has no figures for.
        for (name, pair, target) in targets {
            let Some((measured, against)) = pair else {
                continue;
            };
            let ratio = measured.per_second / against.per_second;
            let _ = writeln!(
                md,
                "| {name} | {ratio:.3} × | {} | {} |",
                round_by_round(measured, against),
                if ratio >= target { "yes" } else { "**no**" }
            );
        }
        // Under the fresh-token load, with the token cache at its default size.
        let peak = [Scenario::Rs256Fresh, Scenario::Es256Fresh]
            .into_iter()
            .filter_map(|s| self.service(s))
            .map(|m| m.peak_rss)
            .max();
        if let Some(peak) = peak {
            let _ = writeln!(
                md,
                "| peak RSS under the fresh-token load ≤ 24 MiB with `WORKERS={WORKERS}` | {:.1} MiB | | {} |",
                mib(peak),
                if peak <= 24 * 1024 * 1024 {
                    "yes"
                } else {
                    "**no**"
                }
            );
        }
        self.token_bytes(&mut md);
        md
    }

    /// The repeated RS256 token's target in two parts: what its bytes cost a route that does
    /// not read them, on the floor and on the service, and what the token check costs on top.
    fn token_bytes(&self, md: &mut String) {
        let header = Scenario::LivenessTokenHeader;
        let parts = [
            (
                "floor: liveness with the token's header, against its plain liveness",
                self.floor(header).zip(self.floor(Scenario::Liveness)),
            ),
            (
                "service: liveness with the token's header, against its plain liveness",
                self.service(header).zip(self.service(Scenario::Liveness)),
            ),
            (
                "service: the protected route with the token, against liveness with its header",
                self.service(Scenario::Rs256Repeated)
                    .zip(self.service(header)),
            ),
        ];
        if parts.iter().all(|(_, pair)| pair.is_none()) {
            return;
        }
        md.push_str(
            "\nThe repeated RS256 token's target in two parts: the token's bytes (its \
             `Authorization` header sent to liveness, which does not read it), then the token \
             check on top of them:\n\n\
             | Runs compared | Measured | Round by round |\n| --- | --- | --- |\n",
        );
        for (name, pair) in parts {
            if let Some((measured, against)) = pair {
                let _ = writeln!(
                    md,
                    "| {name} | {:.3} × | {} |",
                    measured.per_second / against.per_second,
                    round_by_round(measured, against)
                );
            }
        }
    }
}

/// The ratio of `measured`'s run to `against`'s in each round: their median and range. The
/// two runs of a round are seconds or minutes apart rather than a whole run, so the host's
/// drift between rounds weighs less than in the ratio of the medians.
fn round_by_round(measured: &Measured, against: &Measured) -> String {
    let mut ratios: Vec<f64> = measured
        .rounds
        .iter()
        .zip(&against.rounds)
        .map(|(measured, against)| measured / against)
        .collect();
    ratios.sort_by(f64::total_cmp);
    match (ratios.first(), ratios.get(ratios.len() / 2), ratios.last()) {
        (Some(low), Some(median), Some(high)) => format!("{median:.3} × ({low:.3}–{high:.3})"),
        _ => String::new(),
    }
}

fn row(title: &str, server: &str, measured: &Measured, floor: Option<&Measured>) -> String {
    let ratio = floor.map_or("".to_owned(), |floor| {
        format!("{:.2}", measured.per_second / floor.per_second)
    });
    format!(
        "| {title} | {server} | {:.0} ({:.0}–{:.0}) | {ratio} | {:.1} µs | {} | {:.2} ms | {:.2} ms | {} | {:.1} MiB |",
        measured.per_second,
        measured.range.0,
        measured.range.1,
        micros(measured.cpu_per_request),
        measured
            .allocations
            .map_or("".to_owned(), |count| format!("{count:.1}")),
        millis(measured.p50),
        millis(measured.p99),
        measured.errors,
        mib(measured.peak_rss)
    )
}

/// Replaces the generated part of `docs/benchmarks.md`, keeping the rest.
pub fn write(markdown: &str) -> Result {
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
