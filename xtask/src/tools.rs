//! Pinned tools the tasks need, installed under `target/xtask-tools` on first use.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::{Result, root, run};

/// The cargo-generate release the examples are generated with. 0.24 and later need a
/// newer Rust than this repository's toolchain.
const CARGO_GENERATE_VERSION: &str = "0.23.7";

fn tools_dir() -> PathBuf {
    root().join("target/xtask-tools")
}

/// The pinned cargo-generate: one already on PATH if it is that version, else installed.
pub fn cargo_generate() -> Result<PathBuf> {
    let on_path = PathBuf::from("cargo-generate");
    let installed = tools_dir().join("bin/cargo-generate");
    for candidate in [on_path, installed.clone()] {
        if reports_version(&candidate) {
            return Ok(candidate);
        }
    }
    println!("installing cargo-generate {CARGO_GENERATE_VERSION} (a few minutes, once)");
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["install", "--locked", "--quiet", "--root"])
            .arg(tools_dir())
            .arg(format!("cargo-generate@{CARGO_GENERATE_VERSION}")),
    )?;
    Ok(installed)
}

fn reports_version(binary: &PathBuf) -> bool {
    Command::new(binary)
        .arg("--version")
        .output()
        .is_ok_and(|out| {
            // It prints "cargo generate X.Y.Z".
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .ends_with(&format!(" {CARGO_GENERATE_VERSION}"))
        })
}

/// A linter from `xtask/requirements.txt`, installed into a virtualenv when the pins change.
pub fn python_tool(name: &str) -> Result<PathBuf> {
    let venv = tools_dir().join("venv");
    let requirements = root().join("xtask/requirements.txt");
    let wanted = fs::read_to_string(&requirements)
        .map_err(|e| format!("{}: {e}", requirements.display()))?;
    let stamp = venv.join("installed-requirements.txt");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        println!("installing linters from xtask/requirements.txt");
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--only-binary",
                ":all:",
                "-r",
            ])
            .arg(&requirements))?;
        fs::write(&stamp, wanted).map_err(|e| e.to_string())?;
    }
    Ok(venv.join("bin").join(name))
}

/// docker-compose, to validate compose files offline (`docker-compose config`). Installed
/// from Debian's packages when missing, as root.
pub fn docker_compose() -> Result<PathBuf> {
    let binary = PathBuf::from("docker-compose");
    let works = |binary: &PathBuf| {
        Command::new(binary)
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success())
    };
    if !works(&binary) {
        apt_install("docker-compose")?;
    }
    Ok(binary)
}

/// Installs a Debian package (as root), refreshing the package lists if the first try fails.
pub fn apt_install(package: &str) -> Result {
    println!("installing {package} from Debian's packages");
    let install = || {
        run(Command::new("apt-get")
            .args(["install", "--yes", "--quiet", "--quiet", package])
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    if install().is_err() {
        run(Command::new("apt-get").args(["update", "--quiet", "--quiet"]))?;
        install()?;
    }
    Ok(())
}

/// wrk, the load generator of `cargo xtask bench`. Installed from Debian's packages when
/// missing, as root.
pub fn wrk() -> Result<PathBuf> {
    let binary = PathBuf::from("wrk");
    // `wrk -v` prints its version and usage, and exits 1.
    let works = |binary: &PathBuf| Command::new(binary).arg("-v").output().is_ok();
    if !works(&binary) {
        apt_install("wrk")?;
    }
    Ok(binary)
}

/// The cargo-fuzz release the fuzz targets are run with.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// The pinned cargo-fuzz, installed under `target/xtask-tools` on first use.
pub fn cargo_fuzz() -> Result<PathBuf> {
    let installed = tools_dir().join("bin/cargo-fuzz");
    let reports = Command::new(&installed)
        .arg("--version")
        .output()
        .is_ok_and(|out| {
            // It prints "cargo-fuzz X.Y.Z".
            String::from_utf8_lossy(&out.stdout).trim()
                == format!("cargo-fuzz {CARGO_FUZZ_VERSION}")
        });
    if !reports {
        println!("installing cargo-fuzz {CARGO_FUZZ_VERSION} (a minute, once)");
        run(
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["install", "--locked", "--quiet", "--root"])
                .arg(tools_dir())
                .arg(format!("cargo-fuzz@{CARGO_FUZZ_VERSION}")),
        )?;
    }
    Ok(installed)
}
