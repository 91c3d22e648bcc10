//! Heap allocations per request: the server runs with `xtask/bench/alloc-count.c` preloaded,
//! which counts every malloc, calloc, realloc and aligned allocation of the process and
//! writes the count to a file when sent SIGUSR2. One connection, so the figure is a
//! request's own and not a share of many connections' buffers.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::load::{Load, prepare};
use super::{Scenario, Server, Target, Tokens};
use crate::shell::{Result, root, run};

/// The preloaded counter, and where the counts go.
pub struct Counter {
    library: PathBuf,
    counts: PathBuf,
}

impl Counter {
    /// Compiles the counter into `dir` with the system's C compiler.
    pub fn build(dir: &Path) -> Result<Self> {
        let library = dir.join("alloc-count.so");
        run(Command::new("cc")
            .args([
                "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
            ])
            .arg(&library)
            .arg(root().join("xtask/bench/alloc-count.c")))?;
        Ok(Self {
            library,
            counts: dir.join("allocations"),
        })
    }

    /// Allocations per request of `scenario` against a new process of `target`: 1 s of
    /// warm-up, then 2 s of one connection, counted.
    pub fn per_request(
        &self,
        target: &Target,
        scenario: Scenario,
        load: &Load,
        fresh: Option<&Tokens>,
    ) -> Result<f64> {
        let mut overrides = scenario.overrides();
        overrides.env.extend([
            ("LD_PRELOAD", self.library.display().to_string()),
            ("ALLOC_COUNT_FILE", self.counts.display().to_string()),
        ]);
        let server = target.start_with(&overrides)?;
        let bearer = prepare(&server, scenario, load)?;
        let url = format!("{}{}", server.address, scenario.path());
        let one = (1, 1);
        load.run_with(&url, bearer.as_deref(), None, 1, one)?;
        let before = self.count(&server)?;
        let fresh = fresh.map(|tokens| tokens.file.as_path());
        let measured = load.run_with(&url, bearer.as_deref(), fresh, 2, one)?;
        let after = self.count(&server)?;
        if measured.errors > 0 {
            return Err(format!(
                "{scenario:?}: {} errors while counting allocations",
                measured.errors
            ));
        }
        Ok(after.saturating_sub(before) as f64 / measured.requests.max(1) as f64)
    }

    /// The server's allocations so far.
    fn count(&self, server: &Server) -> Result<u64> {
        let _ = fs::remove_file(&self.counts);
        run(Command::new("kill")
            .arg("-USR2")
            .arg(server.child.id().to_string()))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(text) = fs::read_to_string(&self.counts) {
                return text
                    .trim()
                    .parse()
                    .map_err(|e| format!("allocation count {text:?}: {e}"));
            }
            if Instant::now() > deadline {
                return Err("the allocation counter did not answer SIGUSR2 within 5 s".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
