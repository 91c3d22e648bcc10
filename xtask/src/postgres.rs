//! A throwaway PostgreSQL cluster for the tests of examples that use PostgreSQL: created in
//! a temporary directory from the machine's server binaries (Debian's `postgresql`
//! package, installed when missing), listening on a free loopback port, removed afterwards.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::http::free_port;
use crate::shell::{Result, run};

/// A running cluster; stopped and deleted when dropped.
pub struct Postgres {
    /// A superuser URL for the `postgres` database (trust authentication, loopback only).
    pub url: String,
    bin: PathBuf,
    dir: PathBuf,
}

impl Postgres {
    pub fn start() -> Result<Self> {
        let bin = server_binaries()?;
        let dir = std::env::temp_dir().join(format!("xtask-postgres-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("socket")).map_err(|e| e.to_string())?;
        // initdb refuses to run as root; the cluster then belongs to the `postgres` user.
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir))?;
        }
        let port = free_port()?;
        let data = dir.join("data");
        run(as_server_user(&bin.join("initdb"))
            .args([
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--pgdata",
            ])
            .arg(&data)
            .stdout(std::process::Stdio::null()))?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            dir.join("socket").display()
        );
        run(as_server_user(&bin.join("pg_ctl"))
            .args(["--wait", "--silent", "--pgdata"])
            .arg(&data)
            .args(["--log"])
            .arg(dir.join("server.log"))
            .args(["--options", &options, "start"]))?;
        Ok(Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            bin,
            dir,
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_server_user(&self.bin.join("pg_ctl"))
            .args(["--wait", "--silent", "--mode=immediate", "--pgdata"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The directory holding `initdb` and `pg_ctl`.
fn server_binaries() -> Result<PathBuf> {
    let find = || -> Option<PathBuf> {
        let on_path = std::env::var_os("PATH")?;
        std::env::split_paths(&on_path)
            .chain(debian_versions())
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    };
    if let Some(dir) = find() {
        return Ok(dir);
    }
    crate::tools::apt_install("postgresql")?;
    find().ok_or_else(|| "PostgreSQL's initdb is still not found after installing it".into())
}

/// `/usr/lib/postgresql/<version>/bin`, newest first.
fn debian_versions() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.reverse();
    dirs
}

fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
