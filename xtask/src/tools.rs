//! Pinned tools the tasks need, installed on first use into a cache outside the checkout
//! (`$XDG_CACHE_HOME/rust-microservice-xtask`, or `~/.cache/...`), so a second run on the
//! same machine, from any clone, finds them: crates with `cargo install`, linters from PyPI
//! into a virtualenv, and a few of Debian's packages.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::shell::{Result, cargo_program, root, run};

/// The cargo-generate releases the template is tested with: the oldest it supports
/// (`cargo_generate_version` in `cargo-generate.toml`) and the newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CargoGenerate {
    Oldest,
    Newest,
}

impl CargoGenerate {
    pub const BOTH: [Self; 2] = [Self::Oldest, Self::Newest];

    pub fn version(self) -> &'static str {
        match self {
            Self::Oldest => "0.23.7",
            Self::Newest => "0.26.0",
        }
    }
}

/// The cargo-fuzz release the fuzz targets are run with.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// The mdBook release the book is built with. 0.5.4 builds with Rust 1.88 and later.
const MDBOOK_VERSION: &str = "0.5.4";

/// Where the tools live: the user's cache, or the checkout's `target/` without a home.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .map_or_else(
            || root().join("target/xtask-tools"),
            |cache| cache.join("rust-microservice-xtask"),
        )
}

/// The cargo-generate the examples are generated with: the oldest release tested.
pub fn cargo_generate() -> Result<PathBuf> {
    cargo_generate_release(CargoGenerate::Oldest)
}

/// A pinned cargo-generate release: one on PATH if it is that version, else installed in a
/// directory of its own, so both releases stay installed. The newest needs a newer Rust
/// than its dependencies ask for, and builds and works with this one.
pub fn cargo_generate_release(release: CargoGenerate) -> Result<PathBuf> {
    let version = release.version();
    // It prints "cargo generate X.Y.Z".
    let wanted = format!(" {version}");
    let root = tools_dir().join(format!("cargo-generate-{version}"));
    let installed = root.join("bin/cargo-generate");
    for candidate in [PathBuf::from("cargo-generate"), installed.clone()] {
        let output = Command::new(&candidate).arg("--version").output();
        if output.is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .ends_with(&wanted)
        }) {
            return Ok(candidate);
        }
    }
    let (how_long, options): (&str, &[&str]) = match release {
        CargoGenerate::Oldest => ("about 4 minutes", &[]),
        CargoGenerate::Newest => ("about 10 minutes", &["--ignore-rust-version"]),
    };
    println!("installing cargo-generate {version} ({how_long}, once)");
    run(Command::new(cargo_program())
        .args(["install", "--locked", "--quiet", "--root"])
        .arg(&root)
        .args(options)
        .arg(format!("cargo-generate@{version}")))?;
    Ok(installed)
}

/// The pinned mdBook: one already on PATH if it is that version, else installed.
pub fn mdbook() -> Result<PathBuf> {
    // It prints "mdbook vX.Y.Z".
    let reports = format!(" v{MDBOOK_VERSION}");
    on_path_or_installed("mdbook", &reports, || {
        // Without the `serve` and `watch` features: the build needs neither a web server nor
        // a file watcher, and they are half of mdBook's dependencies.
        let features = ["--no-default-features", "--features", "search"];
        cargo_install("mdbook", MDBOOK_VERSION, "about 3 minutes", &features)
    })
}

/// The pinned cargo-fuzz, installed in the tools cache on first use.
pub fn cargo_fuzz() -> Result<PathBuf> {
    let installed = tools_dir().join("bin/cargo-fuzz");
    // It prints "cargo-fuzz X.Y.Z".
    let reports = Command::new(&installed)
        .arg("--version")
        .output()
        .is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout).trim()
                == format!("cargo-fuzz {CARGO_FUZZ_VERSION}")
        });
    if !reports {
        cargo_install("cargo-fuzz", CARGO_FUZZ_VERSION, "a minute", &[])?;
    }
    Ok(installed)
}

/// `binary` from PATH, or else from the tools cache's `bin`, if its `--version` ends with
/// `reports`; else what `install` installs there.
fn on_path_or_installed(
    binary: &str,
    reports: &str,
    install: impl FnOnce() -> Result,
) -> Result<PathBuf> {
    let installed = tools_dir().join("bin").join(binary);
    for candidate in [PathBuf::from(binary), installed.clone()] {
        let output = Command::new(&candidate).arg("--version").output();
        if output.is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .ends_with(reports)
        }) {
            return Ok(candidate);
        }
    }
    install()?;
    Ok(installed)
}

/// `cargo install`s `name@version` into the tools cache, with `options` (features),
/// saying how long it takes.
fn cargo_install(name: &str, version: &str, how_long: &str, options: &[&str]) -> Result {
    println!("installing {name} {version} ({how_long}, once)");
    run(Command::new(cargo_program())
        .args(["install", "--locked", "--quiet", "--root"])
        .arg(tools_dir())
        .args(options)
        .arg(format!("{name}@{version}")))
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

/// jq, which the documented commands use to read a token out of JSON. Installed from
/// Debian's packages when missing, as root.
pub fn jq() -> Result<PathBuf> {
    let binary = PathBuf::from("jq");
    let works = |binary: &PathBuf| Command::new(binary).arg("--version").output().is_ok();
    if !works(&binary) {
        apt_install("jq")?;
    }
    Ok(binary)
}

/// cargo-chef, at the release the generated Dockerfile installs, for running the image's
/// build steps without Docker.
pub fn cargo_chef(version: &str) -> Result<PathBuf> {
    let root = tools_dir().join(format!("cargo-chef-{version}"));
    let installed = root.join("bin/cargo-chef");
    if !installed.exists() {
        println!("installing cargo-chef {version} (about 3 minutes, once)");
        run(Command::new(cargo_program())
            .args(["install", "--locked", "--quiet", "--root"])
            .arg(&root)
            .arg(format!("cargo-chef@{version}")))?;
    }
    Ok(installed)
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
