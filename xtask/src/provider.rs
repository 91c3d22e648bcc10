//! A real OpenID provider for the end-to-end auth tests: the OpenID Certified npm
//! `oidc-provider`, from `xtask/oidc-provider/`, on a free loopback port.
//!
//! State (keys, pid, port, log) lives in a directory under `target/`, so the rotation
//! command the tests run (`xtask oidc-provider rotate DIR`) can restart the same provider.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::json_string;
use crate::shell::{Result, root, run};

fn harness() -> PathBuf {
    root().join("xtask/oidc-provider")
}

/// Where the provider a task or an example's tests start keeps its state:
/// `target/xtask-tools/oidc-provider/NAME`.
pub fn state_dir(name: &str) -> PathBuf {
    root().join("target/xtask-tools/oidc-provider").join(name)
}

/// Installs the provider's npm packages when the lock file changed since the last install.
pub fn install() -> Result {
    let lock = fs::read(harness().join("package-lock.json")).map_err(|e| e.to_string())?;
    let stamp = harness().join("node_modules/.installed-lock");
    if fs::read(&stamp).ok().as_deref() == Some(lock.as_slice()) {
        return Ok(());
    }
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(harness()))?;
    fs::write(&stamp, lock).map_err(|e| e.to_string())
}

/// A running provider; stopped when dropped.
pub struct Provider {
    pub issuer: String,
    pub state: PathBuf,
}

impl Provider {
    /// Starts a provider with fresh keys on a free port.
    pub fn start(state: &Path) -> Result<Self> {
        let _ = fs::remove_dir_all(state);
        fs::create_dir_all(state).map_err(|e| e.to_string())?;
        // Once seen: a provider that never wrote its keys nor its ready file in 15 s on a
        // busy machine. A second attempt is cheap next to a failed suite.
        let issuer = launch(state, 0).or_else(|first| {
            eprintln!("{first}\ntrying once more");
            launch(state, 0)
        })?;
        Ok(Self {
            issuer,
            state: state.to_owned(),
        })
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        stop(&self.state);
    }
}

/// `xtask oidc-provider rotate DIR`: publishes a new key pair that signs from now on
/// (the old keys stay published), and restarts the provider on the same port.
pub fn rotate(state: &Path) -> Result {
    let keys = state.join("keys.json");
    run(Command::new("node")
        .arg(harness().join("keys.mjs"))
        .arg("rotate")
        .arg(&keys)
        .stdout(Stdio::null()))?;
    let port: u16 = read(&state.join("port"))?
        .parse()
        .map_err(|_| "the provider's port file is unreadable")?;
    stop(state);
    launch(state, port).map(|_| ())
}

/// Starts `node provider.mjs` in the background and waits until discovery answers.
fn launch(state: &Path, port: u16) -> Result<String> {
    let ready = state.join("ready.json");
    let _ = fs::remove_file(&ready);
    let log = fs::File::create(state.join("provider.log")).map_err(|e| e.to_string())?;
    let child = Command::new("node")
        .arg(harness().join("provider.mjs"))
        .env("OIDC_PORT", port.to_string())
        .env("OIDC_KEYS_FILE", state.join("keys.json"))
        .env("OIDC_READY_FILE", &ready)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("node: {e}"))?;
    fs::write(state.join("pid"), child.id().to_string()).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(text) = fs::read_to_string(&ready) {
            let issuer =
                json_string(&text, "issuer").ok_or("the provider's ready file has no issuer")?;
            let port = issuer.rsplit(':').next().unwrap_or_default().to_owned();
            fs::write(state.join("port"), port).map_err(|e| e.to_string())?;
            return Ok(issuer);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(state);
    Err(format!(
        "the OpenID provider did not start:\n{}",
        fs::read_to_string(state.join("provider.log")).unwrap_or_default()
    ))
}

fn stop(state: &Path) {
    if let Ok(pid) = read(&state.join("pid")) {
        let _ = Command::new("kill").arg(&pid).status();
        // Wait for the port to be free before a restart binds it again.
        for _ in 0..50 {
            let alive = Command::new("kill")
                .args(["-0", &pid])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !alive {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = fs::remove_file(state.join("pid"));
    }
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path)
        .map(|text| text.trim().to_owned())
        .map_err(|e| format!("{}: {e}", path.display()))
}
