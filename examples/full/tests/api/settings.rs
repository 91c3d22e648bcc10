//! Settings as the operator meets them: the real binary, its exit status and its output.
#![cfg(unix)]

use crate::helpers::{Service, field, run_to_exit};

#[test]
fn an_invalid_setting_stops_the_process_before_it_binds() {
    let dir = tempfile::tempdir().unwrap();

    let (status, stdout, stderr) = run_to_exit(dir.path(), &[("PORT", "eighty")]);

    assert_eq!(status.code(), Some(1));
    assert_eq!(stdout, "", "nothing is logged or served");
    assert_eq!(
        stderr,
        "error: invalid setting PORT=\"eighty\": expected a port number from 0 to 65535\n"
    );
}

#[test]
fn a_malformed_dotenv_file_is_reported_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "PORT=8000\nthis line is not a setting\n",
    )
    .unwrap();

    let (status, _, stderr) = run_to_exit(dir.path(), &[]);

    assert_eq!(status.code(), Some(1));
    assert!(stderr.starts_with("error: cannot read .env:"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn dotenv_values_apply_and_the_environment_overrides_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "LOG_JSON_OUTPUT=true\nLOG_LEVEL=error\n",
    )
    .unwrap();

    // LOG_LEVEL=info from the environment beats .env's error, or `listening` would not show.
    let service = Service::start_in(dir, &[("LOG_LEVEL", "info")]);
    let (_, lines) = service.terminate();

    let listening = lines
        .iter()
        .find(|line| line.contains("listening"))
        .unwrap();
    assert!(
        listening.starts_with('{'),
        "LOG_JSON_OUTPUT came from .env: {listening}"
    );
    assert_eq!(field(listening, "environment"), "local");
}

#[test]
fn config_files_apply_per_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(config.join("base.toml"), "log_json_output = false\n").unwrap();
    std::fs::write(config.join("production.toml"), "log_json_output = true\n").unwrap();

    let service = Service::start_in(
        dir,
        &[
            ("CONFIG_DIR", "config"),
            ("APP_ENVIRONMENT", "production"),
            // Required in production when the service has OIDC auth; ignored otherwise.
            ("OIDC_ISSUER_URL", "https://127.0.0.1:9"),
            ("OIDC_AUDIENCE", "api"),
            // The test database has no TLS; ignored without a database.
            ("DATABASE_ALLOW_INSECURE", "true"),
        ],
    );
    let (_, lines) = service.terminate();

    let listening = lines
        .iter()
        .find(|line| line.contains("listening"))
        .unwrap();
    assert_eq!(field(listening, "environment"), "production");
    assert!(listening.starts_with('{'), "{listening}");
}
