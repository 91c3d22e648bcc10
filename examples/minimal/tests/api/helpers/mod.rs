//! Shared by every integration test: the service in-process on port 0, or the real
//! binary as a child process when a test needs its output or its exit status.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::service::health::Readiness;
use crate::service::server::{self, Application, Routes};
use crate::service::settings::Settings;
use crate::service::telemetry::{self, Telemetry};

/// The compiled service binary, built by Cargo for the integration tests.
pub const BINARY: &str = env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME")));

/// Settings every test starts from: loopback, a free port, no config files.
const TEST_VARS: [(&str, &str); 5] = [
    ("HOST", "127.0.0.1"),
    ("PORT", "0"),
    ("WORKERS", "1"),
    ("DRAIN_TIMEOUT", "5"),
    ("CONFIG_DIR", "/nonexistent"),
];

/// The service running inside the test process.
pub struct TestApp {
    #[cfg(feature = "database")]
    pub database: database::TestDatabase,
    pub address: String,
    pub client: reqwest::Client,
    pub readiness: Readiness,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

/// Starts the service in-process with the test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with::<&str>(&[]).await
}

/// Starts the service in-process with the test settings plus `vars`.
pub async fn spawn_app_with<V: AsRef<str>>(vars: &[(&str, V)]) -> TestApp {
    spawn_app_with_routes(vars, server::api_v1).await
}

/// Starts the service in-process with the test settings plus `vars`, and `routes` under
/// `/api/v1` instead of the service's own. Set `TEST_LOG=1` to see its logs.
pub async fn spawn_app_with_routes<V: AsRef<str>>(vars: &[(&str, V)], routes: Routes) -> TestApp {
    #[cfg(feature = "database")]
    let database = database::TestDatabase::create().await;
    let mut all: Vec<(&str, &str)> = TEST_VARS.to_vec();
    #[cfg(feature = "database")]
    all.push(("DATABASE_URL", database.url.as_str()));
    all.extend(vars.iter().map(|(name, value)| (*name, value.as_ref())));
    let settings = Settings::from_vars(all).expect("test settings are valid");
    if std::env::var_os("TEST_LOG").is_some() {
        // The first test to get here installs the subscriber; the others share it.
        static TELEMETRY: std::sync::OnceLock<Option<Telemetry>> = std::sync::OnceLock::new();
        TELEMETRY.get_or_init(|| telemetry::init(&settings.log).ok());
    }
    let application = Application::build_with(&settings, routes)
        .await
        .expect("the application binds");
    let port = application.port();
    let readiness = application.readiness().clone();
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async {
        let _ = stop.await;
    }));
    TestApp {
        #[cfg(feature = "database")]
        database,
        address: format!("http://127.0.0.1:{port}"),
        client: http_client(),
        readiness,
        shutdown,
        server,
    }
}

/// An HTTP client for talking to the service.
pub fn http_client() -> reqwest::Client {
    http_client_builder().build().expect("an HTTP client")
}

/// A builder for a client with other settings than [`http_client`]'s.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    #[cfg(feature = "auth")]
    crate::service::auth::install_crypto_provider();
    // A service that never answers fails the test instead of hanging it.
    reqwest::Client::builder().timeout(Duration::from_secs(30))
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("the request is answered")
    }

    /// GET with `Authorization: Bearer <token>`.
    #[cfg(feature = "auth")]
    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("the request is answered")
    }

    /// Waits until readiness answers 200 (dependencies such as the provider's keys are up).
    pub async fn wait_until_ready(&self) {
        // Generous: a CI machine may be compiling beside the tests.
        for _ in 0..600 {
            if self.get("/health/readiness").await.status() == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the service did not become ready within 30 s");
    }

    /// Starts a graceful shutdown, as a SIGTERM would, without waiting for it.
    pub fn begin_shutdown(self) -> JoinHandle<std::io::Result<()>> {
        let _ = self.shutdown.send(());
        self.server
    }
}

/// The service binary running as a child process, with its stdout collected line by line.
pub struct Service {
    child: Child,
    lines: Receiver<String>,
    seen: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    pub address: String,
}

impl Service {
    /// Starts the binary with only the test settings and `vars` in its environment, in an
    /// empty working directory, and waits until it logs the address it listens on.
    pub fn start(vars: &[(&str, &str)]) -> Self {
        Self::start_in(tempfile::tempdir().expect("a temporary directory"), vars)
    }

    /// Like [`Service::start`], in a working directory the test has prepared.
    pub fn start_in(dir: tempfile::TempDir, vars: &[(&str, &str)]) -> Self {
        let mut child = command(dir.path(), vars)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the service binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                record.lock().unwrap().push(line.clone());
                let _ = sender.send(line);
            }
        });
        let mut service = Self {
            child,
            lines,
            seen,
            _dir: dir,
            address: String::new(),
        };
        let listening = service
            .wait_for_line(|line| line.contains("listening"))
            .expect("the service logs the address it listens on");
        service.address = format!("http://{}", field(&listening, "address"));
        service
    }

    /// GET `path` with `headers`, from a test that has no runtime of its own; returns the
    /// status.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> u16 {
        self.send(reqwest::Method::GET, path, headers, None)
    }

    /// `method` `path` with `headers` and, if any, a JSON body; returns the status.
    pub fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        json: Option<&str>,
    ) -> u16 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let mut request = http_client().request(method, format!("{}{path}", self.address));
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(json) = json {
                request = request
                    .header("content-type", "application/json")
                    .body(json.to_owned());
            }
            request
                .send()
                .await
                .expect("the request is answered")
                .status()
                .as_u16()
        })
    }

    /// Waits up to 30 seconds for a new stdout line that matches.
    pub fn wait_for_line(&mut self, matches: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if matches(&line) => return Some(line),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM was delivered");
        let status = wait_with_timeout(&mut self.child);
        // The reader thread stops at the pipe's end, which comes once the process has exited
        // (it holds the only write end): wait for that, so no line it wrote is missed.
        while self.lines.recv_timeout(Duration::from_secs(10)).is_ok() {}
        let lines = self.seen.lock().unwrap().clone();
        (status, lines)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary to completion and returns its exit status, stdout and stderr.
/// Meant for settings that must stop it before it serves anything.
pub fn run_to_exit(dir: &std::path::Path, vars: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let mut child = command(dir, vars)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the service binary starts");
    let status = wait_with_timeout(&mut child);
    let output = child.wait_with_output().expect("output is readable");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("output is UTF-8");
    (status, text(output.stdout), text(output.stderr))
}

fn command(dir: &std::path::Path, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BINARY);
    command.current_dir(dir).env_clear().envs(TEST_VARS);
    #[cfg(feature = "database")]
    if let Some(url) = database::for_binary() {
        command.env("DATABASE_URL", url);
    }
    command.envs(vars.iter().copied()).stdin(Stdio::null());
    command
}

fn wait_with_timeout(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited on") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not exit in time"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a field from a log line in either format: a bunyan JSON object or
/// `key=value` pairs of the human-readable format.
pub fn field(line: &str, name: &str) -> String {
    if let Ok(serde_json::Value::Object(record)) = serde_json::from_str(line) {
        return match record.get(name) {
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => panic!("no {name} in {line}"),
        };
    }
    let start = line
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        + name.len()
        + 1;
    line[start..]
        .split(|c: char| c.is_whitespace() || c == '}')
        .next()
        .unwrap_or_default()
        .to_owned()
}
