//! `cargo xtask reliability [--debug] [--soak-seconds N]`: what must hold for the default
//! example under load and abuse, each against a new process of its release (or debug)
//! build, on loopback, bounded in time (about two minutes in all; `cargo xtask test` runs it
//! on the debug build):
//!
//! 1. a soak: saturating load (fresh ES256 tokens, so the token cache keeps evicting) with
//!    no failed request and no growth of resident memory over its second half;
//! 2. SIGTERM under load: no failed request while the service keeps serving through its
//!    shutdown delay, readiness 503 meanwhile, then a clean exit;
//! 3. a flood of tokens naming an unknown key: at most one key fetch per cooldown;
//! 4. oversize and malformed request lines, headers, tokens and bodies: a 4xx each, never a
//!    5xx, and the process still serves;
//! 5. the identity provider killed under load, with keys refreshed every second: no valid
//!    token refused.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::flags;
use crate::harness::{self, Load, SERVICE, Scenario, Server, Target, Tokens, mib, resident};
use crate::http::{self, raw_status};
use crate::provider::{self, Provider};
use crate::shell::{Result, cargo, root, run, section};
use crate::tools;
use crate::tree::Scratch;

/// Builds the default example (release, or debug with `--debug`) and runs every check.
pub fn reliability(flags: &flags::Reliability) -> Result {
    let mut build = cargo();
    build.args(["build", "--locked", "--package", SERVICE]);
    if flags.profile == "release" {
        build.arg("--release");
    }
    run(&mut build)?;
    check(
        &root().join("target").join(flags.profile).join(SERVICE),
        flags.soak_seconds,
    )
}

/// Runs every check against `binary`, the default example's.
pub fn check(binary: &Path, soak_seconds: u32) -> Result {
    let wrk = tools::wrk()?;
    provider::install()?;
    let scratch = Scratch::new("reliability")?;
    let state = provider::state_dir("reliability");
    let idp = Provider::start(&state)?;
    let load = Load::new(wrk, soak_seconds, &harness::discovery(&idp.issuer)?)?;
    let fresh = Tokens::mint(
        &state.join("keys.json"),
        &load.token(Scenario::Es256Fresh)?,
        &scratch.path.join("es256.txt"),
        100_000,
    )?;
    let dir = scratch.path.join("service");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let service = |env: &[(&'static str, &str)], log: Option<PathBuf>| Target::Service {
        binary: binary.to_owned(),
        issuer: idp.issuer.clone(),
        dir: dir.clone(),
        env: env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        log,
    };

    section(&format!("reliability: {soak_seconds} s of saturating load"));
    soak(&service(&[], None).start()?, &load, &fresh.file)?;

    section("reliability: SIGTERM under load");
    sigterm(service(&[("SHUTDOWN_DELAY", "4")], None).start()?, &load)?;

    section("reliability: a flood of tokens naming an unknown key");
    let log = scratch.path.join("flood.log");
    unknown_kid_flood(
        &service(
            &[("OIDC_JWKS_COOLDOWN", "2"), ("OIDC_JWKS_MAX_AGE", "300")],
            Some(log.clone()),
        )
        .start()?,
        &load,
        &log,
        2,
    )?;

    section("reliability: oversize and malformed requests");
    hostile_requests(&service(&[], None).start()?, &load)?;

    section("reliability: the identity provider killed under load");
    let log = scratch.path.join("outage.log");
    let server = service(
        &[("OIDC_JWKS_COOLDOWN", "1"), ("OIDC_JWKS_MAX_AGE", "1")],
        Some(log.clone()),
    )
    .start()?;
    provider_outage(&server, &load, &fresh.file, idp, &log)?;
    println!("\nreliability: every check passed");
    Ok(())
}

/// Saturating load with no failed request; resident memory sampled every half second, and
/// nothing in the second half above the middle's (plus 2 %, at least 1 MiB, for the
/// allocator).
fn soak(server: &Server, load: &Load, tokens: &Path) -> Result {
    let url = format!("{}/api/v1/protected", server.address);
    let pid = server.child.id();
    let stop = Arc::new(AtomicBool::new(false));
    let sampling = Arc::clone(&stop);
    let sampler = std::thread::spawn(move || {
        let start = Instant::now();
        let mut samples = Vec::new();
        while !sampling.load(Ordering::Relaxed) {
            if let Some(rss) = resident(pid) {
                samples.push((start.elapsed(), rss));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        samples
    });
    let measured = load.run(&url, None, Some(tokens), load.seconds);
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().map_err(|_| "the memory sampler panicked")?;
    let measured = measured?;
    let middle = Duration::from_secs(u64::from(load.seconds)) / 2;
    let at_middle = samples
        .iter()
        .rfind(|(at, _)| *at <= middle)
        .map(|(_, rss)| *rss)
        .ok_or("no memory sample in the first half")?;
    let highest = samples
        .iter()
        .filter(|(at, _)| *at > middle)
        .map(|(_, rss)| *rss)
        .max()
        .ok_or("no memory sample in the second half")?;
    println!(
        "{} requests ({:.0}/s), {} failed; resident memory {:.1} MiB at the middle, at most {:.1} MiB after",
        measured.requests,
        measured.per_second,
        measured.errors,
        mib(at_middle),
        mib(highest)
    );
    if measured.errors > 0 {
        return Err(format!(
            "{} requests failed during the soak",
            measured.errors
        ));
    }
    if highest > at_middle + (at_middle / 50).max(1024 * 1024) {
        return Err(format!(
            "resident memory grew over the second half of the soak: {:.1} MiB, then {:.1} MiB",
            mib(at_middle),
            mib(highest)
        ));
    }
    Ok(())
}

/// SIGTERM one second into three seconds of load, with a four-second shutdown delay (what
/// a load balancer needs to notice readiness): every request succeeds, readiness answers
/// 503 from the signal on, and the process exits 0 once the delay is over.
fn sigterm(mut server: Server, load: &Load) -> Result {
    let url = format!("{}/api/v1/protected", server.address);
    let bearer = format!("Bearer {}", load.token(Scenario::Rs256Repeated)?);
    let (measured, readiness) = std::thread::scope(|scope| {
        let wrk = scope.spawn(|| load.run(&url, Some(&bearer), None, 3));
        std::thread::sleep(Duration::from_secs(1));
        let signalled = Command::new("kill")
            .args(["-TERM", &server.child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        std::thread::sleep(Duration::from_millis(200));
        let readiness =
            http::get(&format!("{}/health/readiness", server.address)).map(|(status, _)| status);
        let measured = wrk.join().map_err(|_| "wrk's thread panicked".to_owned());
        (
            measured,
            if signalled {
                readiness
            } else {
                Err("SIGTERM could not be sent".into())
            },
        )
    });
    let measured = measured??;
    let readiness = readiness?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = server.child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            return Err("the service did not exit within 15 s of SIGTERM".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    println!(
        "{} requests, {} failed; readiness {readiness} after SIGTERM; exit {status}",
        measured.requests, measured.errors
    );
    if measured.errors > 0 || readiness != 503 || !status.success() {
        return Err("SIGTERM under load: failed requests, readiness not 503, or a bad exit".into());
    }
    Ok(())
}

/// Load with a token whose `kid` the provider never published: every request is refused
/// (401), and the service fetches the key set at most once per cooldown.
fn unknown_kid_flood(server: &Server, load: &Load, log: &Path, cooldown: u64) -> Result {
    let seconds = 6;
    let valid = load.token(Scenario::Rs256Repeated)?;
    let (_, rest) = valid.split_once('.').ok_or("a token without parts")?;
    let forged = format!(
        "{}.{rest}",
        base64url(br#"{"alg":"RS256","typ":"at+jwt","kid":"no-such-key"}"#)
    );
    let fetches = || count_lines(log, "loaded the provider's signing keys");
    // The startup fetch's line may still be on its way to the log: wait for it, so it is
    // not counted as one of the flood's.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fetches() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = fetches();
    let measured = load.run(
        &format!("{}/api/v1/protected", server.address),
        Some(&format!("Bearer {forged}")),
        None,
        seconds,
    )?;
    let during = fetches() - before;
    // One fetch at the first unknown kid, then at most one per cooldown: over a run of d
    // seconds, floor(d / cooldown) + 1.
    let lasted = measured.requests as f64 / measured.per_second;
    let allowed = (lasted / cooldown as f64).floor() as u64 + 1;
    println!(
        "{} requests, {} refused, {} other errors; {during} key fetches (at most {allowed} allowed)",
        measured.requests,
        measured.non_2xx,
        measured.errors - measured.non_2xx
    );
    if measured.non_2xx != measured.requests || measured.errors != measured.non_2xx {
        return Err("tokens with an unknown kid were not all refused cleanly".into());
    }
    if during == 0 || during > allowed {
        return Err(format!(
            "{during} key fetches during a {seconds} s flood with a {cooldown} s cooldown"
        ));
    }
    let (status, _) = http::request(
        "GET",
        &format!("{}/api/v1/protected", server.address),
        &[("Authorization", &format!("Bearer {valid}"))],
        "",
    )?;
    if status != 200 {
        return Err(format!("a valid token answered {status} after the flood"));
    }
    Ok(())
}

fn count_lines(log: &Path, message: &str) -> u64 {
    fs::read_to_string(log)
        .map(|text| text.lines().filter(|line| line.contains(message)).count() as u64)
        .unwrap_or(0)
}

/// Requests no client should send, each answered with a 4xx; then the service still serves.
fn hostile_requests(server: &Server, load: &Load) -> Result {
    let valid = load.token(Scenario::Rs256Repeated)?;
    let (_, claims) = valid.split_once('.').ok_or("a token without parts")?;
    let claims = claims.split('.').next().unwrap_or_default();
    let alg_none = format!(
        "{}.{claims}.",
        base64url(br#"{"alg":"none","typ":"at+jwt"}"#)
    );
    let get = |headers: &str| format!("GET /api/v1/protected HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
    let bearer = |token: &str| get(&format!("Authorization: Bearer {token}\r\n"));
    let put = |headers: &str, body: &str| {
        format!(
            "PUT /api/v1/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {valid}\r\n{headers}\r\n{body}"
        )
    };
    let json = |body: &str| {
        put(
            &format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ),
            body,
        )
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a request line that is not HTTP", b"GARBAGE\r\n\r\n".to_vec()),
        (
            "a 64 KiB header",
            get(&format!("X-Filler: {}\r\n", "a".repeat(64 * 1024))).into_bytes(),
        ),
        (
            "a 1 MiB bearer token",
            bearer(&"a".repeat(1024 * 1024)).into_bytes(),
        ),
        (
            "a token over OIDC_MAX_TOKEN_BYTES",
            bearer(&format!("{valid}{}", "a".repeat(8192))).into_bytes(),
        ),
        ("a token of three empty parts", bearer("..").into_bytes()),
        ("a token that is not base64url", bearer("e30.e30.!!!").into_bytes()),
        ("a token with alg none", bearer(&alg_none).into_bytes()),
        ("a token with a broken signature", bearer(&format!("{valid}x")).into_bytes()),
        (
            "non-UTF-8 bytes in the Authorization header",
            [&b"GET /api/v1/protected HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n"[..]]
                .concat(),
        ),
        ("a header line without a colon", get("no colon here\r\n").into_bytes()),
        ("a body that is not JSON", json("{\"display_name\": ").into_bytes()),
        (
            "JSON nested 10 000 deep",
            json(&format!("{}{}", "[".repeat(10_000), "]".repeat(10_000))).into_bytes(),
        ),
        (
            "a JSON body over JSON_BODY_LIMIT",
            json(&format!(
                "{{\"display_name\":\"{}\"}}",
                "a".repeat(300 * 1024)
            ))
            .into_bytes(),
        ),
        (
            "a body announced at 1 GiB",
            put(
                "Content-Type: application/json\r\nContent-Length: 1073741824\r\n",
                "{}",
            )
            .into_bytes(),
        ),
        (
            "a body that is not JSON by its type",
            put("Content-Type: text/plain\r\nContent-Length: 2\r\n", "{}").into_bytes(),
        ),
        (
            "a Content-Length that is not a number",
            put("Content-Length: lots\r\n", "").into_bytes(),
        ),
        (
            "a chunked body with a bad chunk size",
            put(
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
                "zz\r\n{}\r\n0\r\n\r\n",
            )
            .into_bytes(),
        ),
    ];
    let address = server.address.trim_start_matches("http://").to_owned();
    let mut failures = Vec::new();
    for (name, request) in &cases {
        match raw_status(&address, request) {
            Ok(status) if (400..500).contains(&status) => println!("{status} for {name}"),
            Ok(status) => failures.push(format!("{status} for {name}")),
            Err(error) => failures.push(format!("no answer for {name}: {error}")),
        }
    }
    let (status, _) = http::get(&format!("{}/health/liveness", server.address))?;
    if status != 200 {
        failures.push(format!("liveness answered {status} afterwards"));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("hostile requests: {}", failures.join("; ")))
    }
}

/// Fresh tokens at full load while the provider is killed two seconds in; the service
/// tries to refresh its keys every second throughout. No token may be refused.
fn provider_outage(
    server: &Server,
    load: &Load,
    tokens: &Path,
    idp: Provider,
    log: &Path,
) -> Result {
    let url = format!("{}/api/v1/protected", server.address);
    let measured = std::thread::scope(|scope| {
        let wrk = scope.spawn(|| load.run(&url, None, Some(tokens), 8));
        std::thread::sleep(Duration::from_secs(2));
        drop(idp);
        wrk.join().map_err(|_| "wrk's thread panicked".to_owned())
    })??;
    let failed_refreshes = count_lines(log, "cannot load the provider's keys");
    println!(
        "{} requests, {} failed; {failed_refreshes} failed key refreshes during the outage",
        measured.requests, measured.errors
    );
    if measured.errors > 0 {
        return Err(format!(
            "{} requests failed while the provider was down",
            measured.errors
        ));
    }
    if failed_refreshes == 0 {
        return Err("the service never tried to refresh its keys during the outage".into());
    }
    Ok(())
}

/// Base64url without padding, for hand-made token headers.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, byte)| n | u32::from(*byte) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}
