//! The servers under load: the bare actix-web floor or the default example, each a new
//! process on a free loopback port, with what `/proc` says of its CPU time and memory. A
//! server's standard output goes into a pipe that this process reads, as a container
//! runtime reads a service's logs in production.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::AUDIENCE;
use crate::http;
use crate::shell::Result;

/// The actix-web workers each server runs, unless a run says otherwise.
pub const WORKERS: u32 = 2;

/// The server a scenario runs against.
pub enum Target {
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
        /// Where its logs are copied to, from the pipe; read and thrown away when `None`.
        log: Option<PathBuf>,
    },
}

/// What one run changes of a target's settings.
#[derive(Default)]
pub struct Overrides {
    /// `WORKERS`, instead of [`WORKERS`].
    pub workers: Option<u32>,
    /// More environment, on top of the target's (`LOG_LEVEL`, `LD_PRELOAD`, ...).
    pub env: Vec<(&'static str, String)>,
}

/// A server process; killed when dropped.
pub struct Server {
    pub child: Child,
    pub address: String,
    /// From spawning the process to the first 200 from its readiness probe (or liveness,
    /// for the floor, which has no readiness).
    pub ready_after: Duration,
}

impl Target {
    pub fn start(&self) -> Result<Server> {
        self.start_with(&Overrides::default())
    }

    pub fn start_with(&self, overrides: &Overrides) -> Result<Server> {
        let port = http::free_port()?;
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
                log: _,
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
                (command, "/health/readiness")
            }
        };
        let workers = overrides.workers.unwrap_or(WORKERS);
        let mut child = command
            .envs(overrides.env.iter().map(|(name, value)| (name, value)))
            .env("PORT", port.to_string())
            .env("WORKERS", workers.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        // The other end of the pipe: read as fast as the server writes, kept only when asked.
        let mut logs = child
            .stdout
            .take()
            .ok_or("no pipe for the server's output")?;
        let mut sink: Box<dyn io::Write + Send> = match self {
            Self::Service { log: Some(log), .. } => {
                Box::new(fs::File::create(log).map_err(|e| e.to_string())?)
            }
            _ => Box::new(io::sink()),
        };
        std::thread::spawn(move || io::copy(&mut logs, &mut sink));
        let address = format!("http://127.0.0.1:{port}");
        let mut server = Server {
            child,
            address,
            ready_after: Duration::ZERO,
        };
        let deadline = started + Duration::from_secs(20);
        loop {
            if let Ok((200, _)) = http::get(&format!("{}{probe}", server.address)) {
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

    pub fn name(&self) -> &'static str {
        match self {
            Self::Floor { .. } => "floor",
            Self::Service { .. } => "service",
        }
    }
}

impl Server {
    /// The CPU time the process has used so far, user and system (in clock ticks of 10 ms,
    /// Linux's USER_HZ).
    pub fn cpu_time(&self) -> Result<Duration> {
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
    pub fn peak_rss(&self) -> Result<u64> {
        memory(self.child.id(), "VmHWM:").ok_or_else(|| "no VmHWM in /proc/PID/status".into())
    }
}

/// The resident memory of process `pid` now (VmRSS), in bytes; `None` once it has exited.
pub fn resident(pid: u32) -> Option<u64> {
    memory(pid, "VmRSS:")
}

/// A memory figure of `pid`'s `/proc/PID/status` (`field` such as `VmRSS:`), in bytes; `None`
/// once the process has exited.
fn memory(pid: u32, field: &str) -> Option<u64> {
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
