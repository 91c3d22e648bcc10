//! `cargo xtask schemathesis` (part of `test`): property-based tests of a running example
//! with schemathesis. The release-like binary serves on loopback with its development
//! issuer, and schemathesis generates requests for every operation of the served OpenAPI
//! document, with an admin token.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::{self, json_string};
use crate::shell::{Result, cargo, root, run, section};
use crate::tools;
use crate::tree::Scratch;

/// What the responses must satisfy: no 5xx, and each status, content type, header and body
/// as the document declares it.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";

/// Builds the default example and fuzzes its API with schemathesis.
pub fn schemathesis() -> Result {
    section("schemathesis against examples/default");
    run(cargo().args(["build", "--locked", "--package", "default-service"]))?;
    check(&root().join("target/debug/default-service"))
}

/// Runs schemathesis against `binary`, an example's service with `auth=oidc` and SQLite.
pub fn check(binary: &Path) -> Result {
    let schemathesis = tools::python_tool("schemathesis")?;
    let scratch = Scratch::new("schemathesis")?;
    let port = http::free_port()?;
    let log = std::fs::File::create(scratch.path.join("service.log")).map_err(|e| e.to_string())?;
    let service = Service(
        Command::new(binary)
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("CONFIG_DIR", "/nonexistent")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/api.db?mode=rwc", scratch.path.display()),
            )
            .stdout(Stdio::from(log))
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?,
    );
    wait_until_ready(port)?;
    let (status, body) = http::request(
        "POST",
        &format!("http://127.0.0.1:{port}/dev-issuer/token"),
        &[("Content-Type", "application/json")],
        r#"{"sub":"schemathesis","roles":["admin"],"scope":"read write"}"#,
    )?;
    if status != 200 {
        return Err(format!("the development issuer answered {status}: {body}"));
    }
    let token =
        json_string(&body, "access_token").ok_or_else(|| format!("no access_token in {body}"))?;
    let result = run(Command::new(schemathesis)
        .arg("run")
        .arg(format!("http://127.0.0.1:{port}/openapi.json"))
        .args(["--checks", CHECKS])
        .args(["--max-examples", "50"])
        .args(["--seed", "1"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {token}"))
        .current_dir(&scratch.path));
    drop(service);
    result
}

/// The service process, killed when dropped.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until_ready(port: u16) -> Result {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let readiness = format!("http://127.0.0.1:{port}/health/readiness");
        if let Ok((200, _)) = http::get(&readiness) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the service on port {port} was not ready within 30 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
