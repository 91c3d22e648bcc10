//! Tokens for the load: one at a time from the provider's token endpoint (client
//! credentials), or thousands at once, minted by `xtask/bench/mint.mjs` with the provider's
//! own private keys.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::http::{self, json_string};
use crate::shell::{Result, root, run};

/// A file of tokens minted like one template token, one a line.
pub struct Tokens {
    keys: PathBuf,
    template: String,
    pub file: PathBuf,
    count: u64,
}

impl Tokens {
    /// Mints `count` tokens like `template`, signed with the keys in `keys` (the provider's
    /// `keys.json`), into `file`.
    pub fn mint(keys: &Path, template: &str, file: &Path, count: u64) -> Result<Self> {
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
    pub fn ensure(&mut self, count: u64) -> Result {
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

/// A client-credentials token for `resource` from the provider's token endpoint.
pub fn client_credentials(token_endpoint: &str, resource: &str) -> Result<String> {
    let body = format!(
        "grant_type=client_credentials&scope=read&resource={}",
        resource.replace(':', "%3A").replace('/', "%2F")
    );
    // test-client:test-secret, the provider harness's client.
    let (status, answer) = http::request(
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
