//! Service settings, read once at startup.
//!
//! Layers, each overriding the one before: built-in defaults, then `config/base.toml` and
//! `config/{APP_ENVIRONMENT}.toml` when they exist, then a `.env` file in the working
//! directory, then the process environment. Every setting has one variable name (`PORT`,
//! `WORKERS`, `LOG_LEVEL`, ...); config files use the same names in lower case. A bad value is refused with an error naming the variable, the value
//! and what is accepted, before anything binds.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use config::{Config, Environment as EnvironmentSource, File};
use ipnet::IpNet;
use tracing_subscriber::filter::{LevelFilter, Targets};

/// Everything the service reads from its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub server: ServerSettings,
    pub log: LogSettings,
    #[cfg(feature = "auth")]
    pub auth: crate::auth::AuthSettings,
    #[cfg(feature = "database")]
    pub database: crate::db::DatabaseSettings,
    #[cfg(feature = "scheduler")]
    pub scheduler: crate::scheduler::SchedulerSettings,
    #[cfg(feature = "metrics")]
    pub metrics: crate::metrics::MetricsSettings,
}

/// Where the service runs; chooses the config file and some defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Local,
    Production,
}

/// The HTTP server: where it listens and how it treats connections.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub host: IpAddr,
    pub port: u16,
    /// `None` lets actix-web start one worker per core.
    pub workers: Option<NonZeroUsize>,
    /// Idle time before a keep-alive connection is closed; zero disables keep-alive.
    pub keep_alive: Duration,
    /// Time a client has to send the request head: 1 to 300 seconds.
    pub client_request_timeout: Duration,
    /// Largest JSON body a handler accepts, in bytes.
    pub json_body_limit: usize,
    /// Longest a request may take before it is answered with 503; zero disables the limit.
    pub request_timeout: Duration,
    /// Browser origins allowed to call the API cross-origin; none by default.
    pub cors_allowed_origins: Vec<String>,
    /// Time between the shutdown signal and closing the listener, serving as usual while
    /// readiness answers 503, so load balancers stop sending traffic first.
    pub shutdown_delay: Duration,
    /// Time in-flight requests get to finish once the listener is closed.
    pub drain_timeout: Duration,
    /// Proxies whose `X-Forwarded-For` or `Forwarded` header is believed for the client's
    /// address in the logs; none by default, so the logged address is the peer's.
    pub trusted_proxies: Vec<IpNet>,
}

/// Log level, per-module filters and output format.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// `LOG_LEVEL`, then the `RUST_LOG` directives: which events and spans are recorded.
    pub filter: Targets,
    /// One bunyan JSON object per line instead of human-readable lines.
    pub json: bool,
}

impl LogSettings {
    /// `LOG_LEVEL`, `RUST_LOG` and `LOG_JSON_OUTPUT`.
    fn from_values(values: &Values<'_>, environment: Environment) -> Result<Self, SettingsError> {
        let production = environment == Environment::Production;
        let level = values.with("LOG_LEVEL", LEVELS, "info", |value| {
            value.parse::<LevelFilter>().ok()
        })?;
        let filter = match values.get("RUST_LOG")? {
            None => Targets::new().with_default(level),
            Some(directives) => format!("{level},{directives}")
                .parse::<Targets>()
                .map_err(|_| SettingsError::Invalid {
                    variable: "RUST_LOG",
                    value: directives,
                    expected: "comma-separated `target=level` directives such as `actix_server=warn,sqlx=debug`",
                })?,
        };
        let json_default = if production { "true" } else { "false" };
        Ok(Self {
            filter,
            json: values.boolean("LOG_JSON_OUTPUT", json_default)?,
        })
    }
}

impl ServerSettings {
    /// `HOST`, `PORT`, `WORKERS` and the other settings of the HTTP server.
    fn from_values(values: &Values<'_>, environment: Environment) -> Result<Self, SettingsError> {
        let production = environment == Environment::Production;
        let default_host = if production { "0.0.0.0" } else { "127.0.0.1" };
        Ok(Self {
            host: values.parse(
                "HOST",
                "an IP address such as 127.0.0.1 or 0.0.0.0",
                default_host,
            )?,
            port: values.parse("PORT", "a port number from 0 to 65535", "8000")?,
            workers: values.optional_with(
                "WORKERS",
                "a whole number of workers from 1 to 512 (actix-web's limit)",
                |value| value.parse::<NonZeroUsize>().ok().filter(|n| n.get() <= 512),
            )?,
            keep_alive: values.seconds("KEEP_ALIVE", "5")?,
            // Zero would let a client take forever to send its request head (slowloris).
            client_request_timeout: values.seconds_within(
                "CLIENT_REQUEST_TIMEOUT",
                "a whole number of seconds from 1 to 300",
                "5",
                1..=300,
            )?,
            json_body_limit: values.parse("JSON_BODY_LIMIT", "a size in bytes", "262144")?,
            request_timeout: values.seconds("REQUEST_TIMEOUT", "30")?,
            cors_allowed_origins: values.with(
                "CORS_ALLOWED_ORIGINS",
                "comma-separated origins such as https://app.example.com (scheme and host, no path)",
                "",
                parse_origins,
            )?,
            shutdown_delay: values.seconds("SHUTDOWN_DELAY", if production { "5" } else { "0" })?,
            drain_timeout: values.seconds("DRAIN_TIMEOUT", "30")?,
            trusted_proxies: values.with(
                "TRUSTED_PROXIES",
                "comma-separated addresses or CIDR blocks such as 10.0.0.0/8,192.168.1.10",
                "",
                parse_networks,
            )?,
        })
    }
}

/// A setting that cannot be used; the message is meant for the operator.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid setting {variable}={value:?}: expected {expected}")]
    Invalid {
        variable: &'static str,
        value: String,
        expected: &'static str,
    },
    /// Two settings that are each valid but unsafe together.
    #[error("invalid setting {variable}={value:?} with {other}: {reason}")]
    Conflict {
        variable: &'static str,
        value: String,
        /// The other setting and its value, as `NAME="value"` or a description.
        other: String,
        reason: &'static str,
    },
    #[error("cannot read {path}: {reason}")]
    Source { path: PathBuf, reason: String },
}

impl Settings {
    /// Reads `.env` from the working directory and the process environment.
    pub fn load() -> Result<Self, SettingsError> {
        let mut vars = dotenv_vars(Path::new(".env"))?;
        vars.extend(std::env::vars_os().filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            Some((name, value.to_string_lossy().into_owned()))
        }));
        Self::from_vars(vars)
    }

    /// Builds settings from the given variables (and the config files they point to),
    /// ignoring the process environment. Tests use this to run the service in-process.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, SettingsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .map(|(name, value)| (name.into().to_uppercase(), value.into()))
            .collect();
        let environment = match vars.get("APP_ENVIRONMENT") {
            Some(value) => parse_environment(value)?,
            None => Environment::Local,
        };
        let config_dir = PathBuf::from(vars.get("CONFIG_DIR").map_or("config", String::as_str));
        let config = Config::builder()
            .add_source(File::from(config_dir.join("base.toml")).required(false))
            .add_source(File::from(config_dir.join(environment.file_name())).required(false))
            .add_source(EnvironmentSource::default().source(Some(vars)))
            .build()
            .map_err(|error| SettingsError::Source {
                path: config_dir.clone(),
                reason: error.to_string(),
            })?;
        let values = Values(&config);

        let server = ServerSettings::from_values(&values, environment)?;
        let log = LogSettings::from_values(&values, environment)?;

        Ok(Self {
            #[cfg(feature = "auth")]
            auth: crate::auth::AuthSettings::from_values(&values, environment, &server)?,
            #[cfg(feature = "database")]
            database: crate::db::DatabaseSettings::from_values(&values, environment)?,
            #[cfg(feature = "scheduler")]
            scheduler: crate::scheduler::SchedulerSettings::from_values(&values)?,
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::MetricsSettings::from_values(&values)?,
            environment,
            server,
            log,
        })
    }
}

impl Environment {
    fn file_name(self) -> &'static str {
        match self {
            Self::Local => "local.toml",
            Self::Production => "production.toml",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::Production => "production",
        })
    }
}

const LEVELS: &str = "one of trace, debug, info, warn, error, off";
const BOOLEANS: &str = "true or false";

fn parse_environment(value: &str) -> Result<Environment, SettingsError> {
    match value.to_ascii_lowercase().as_str() {
        "local" => Ok(Environment::Local),
        "production" => Ok(Environment::Production),
        _ => Err(SettingsError::Invalid {
            variable: "APP_ENVIRONMENT",
            value: value.to_owned(),
            expected: "local or production",
        }),
    }
}

/// `https://app.example.com,http://localhost:3000`: scheme, host and optional port only.
fn parse_origins(value: &str) -> Option<Vec<String>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            let (scheme, rest) = origin.split_once("://")?;
            let host_ok = !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
            (matches!(scheme, "http" | "https") && host_ok).then(|| origin.to_owned())
        })
        .collect()
}

/// `10.0.0.0/8, 192.168.1.10`: a plain address is a network of one.
fn parse_networks(value: &str) -> Option<Vec<IpNet>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|network| !network.is_empty())
        .map(|network| {
            network
                .parse::<IpNet>()
                .or_else(|_| network.parse::<IpAddr>().map(IpNet::from))
                .ok()
        })
        .collect()
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Reads `KEY=value` pairs from a dotenv file without touching the process environment.
/// A missing file is fine; a malformed one is an error.
fn dotenv_vars(path: &Path) -> Result<HashMap<String, String>, SettingsError> {
    let unreadable = |error: dotenvy::Error| SettingsError::Source {
        path: path.to_owned(),
        reason: error.to_string(),
    };
    match dotenvy::from_path_iter(path) {
        Ok(pairs) => pairs.map(|pair| pair.map_err(unreadable)).collect(),
        Err(error) if error.not_found() => Ok(HashMap::new()),
        Err(error) => Err(unreadable(error)),
    }
}

/// Typed access to the merged layers, turning every failure into a [`SettingsError`].
pub(crate) struct Values<'a>(&'a Config);

impl Values<'_> {
    pub(crate) fn get(&self, variable: &'static str) -> Result<Option<String>, SettingsError> {
        match self.0.get_string(&variable.to_lowercase()) {
            Ok(value) => Ok(Some(value)),
            Err(config::ConfigError::NotFound(_)) => Ok(None),
            Err(error) => Err(SettingsError::Invalid {
                variable,
                value: error.to_string(),
                expected: "a single value",
            }),
        }
    }

    pub(crate) fn with<T>(
        &self,
        variable: &'static str,
        expected: &'static str,
        default: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, SettingsError> {
        let value = self.get(variable)?.unwrap_or_else(|| default.to_owned());
        parse(value.trim()).ok_or(SettingsError::Invalid {
            variable,
            value,
            expected,
        })
    }

    pub(crate) fn parse<T: FromStr>(
        &self,
        variable: &'static str,
        expected: &'static str,
        default: &str,
    ) -> Result<T, SettingsError> {
        self.with(variable, expected, default, |value| value.parse().ok())
    }

    /// An optional setting: unset or empty is `None`, anything else must pass `parse`.
    pub(crate) fn optional_with<T>(
        &self,
        variable: &'static str,
        expected: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, SettingsError> {
        match self.get(variable)? {
            None => Ok(None),
            Some(value) if value.trim().is_empty() => Ok(None),
            Some(value) => match parse(value.trim()) {
                Some(parsed) => Ok(Some(parsed)),
                None => Err(SettingsError::Invalid {
                    variable,
                    value,
                    expected,
                }),
            },
        }
    }

    pub(crate) fn boolean(
        &self,
        variable: &'static str,
        default: &str,
    ) -> Result<bool, SettingsError> {
        self.with(variable, BOOLEANS, default, parse_bool)
    }

    pub(crate) fn seconds(
        &self,
        variable: &'static str,
        default: &str,
    ) -> Result<Duration, SettingsError> {
        self.parse(variable, "a whole number of seconds", default)
            .map(Duration::from_secs)
    }

    /// Seconds within `range`, which `expected` states.
    pub(crate) fn seconds_within(
        &self,
        variable: &'static str,
        expected: &'static str,
        default: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Duration, SettingsError> {
        self.with(variable, expected, default, |value| {
            let seconds = value.parse().ok()?;
            range
                .contains(&seconds)
                .then(|| Duration::from_secs(seconds))
        })
    }
}

/// Shared with the tests of the modules that read their own settings.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Settings from `vars` alone: no config files, no process environment.
    pub(crate) fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let mut all = vec![("CONFIG_DIR", "/nonexistent")];
        #[cfg(feature = "database")]
        all.push(("DATABASE_URL", crate::db::TEST_URL));
        all.extend_from_slice(vars);
        Settings::from_vars(all)
    }

    /// The variable `vars` make invalid.
    pub(crate) fn invalid_variable(vars: &[(&str, &str)]) -> &'static str {
        match settings(vars) {
            Err(
                SettingsError::Invalid { variable, .. } | SettingsError::Conflict { variable, .. },
            ) => variable,
            other => panic!("expected an invalid setting, got {other:?}"),
        }
    }

    #[test]
    fn defaults_suit_local_development() {
        let settings = settings(&[]).unwrap();
        assert_eq!(settings.environment, Environment::Local);
        assert_eq!(settings.server.host.to_string(), "127.0.0.1");
        assert_eq!(settings.server.port, 8000);
        assert_eq!(settings.server.workers, None);
        assert_eq!(settings.server.drain_timeout, Duration::from_secs(30));
        assert_eq!(settings.log.filter.default_level(), Some(LevelFilter::INFO));
        assert!(!settings.log.json);
    }

    #[test]
    fn production_listens_on_every_interface_and_logs_json() {
        // Production also needs whatever options require there (the identity provider);
        // variables no option reads are ignored.
        let settings = settings(&[
            ("APP_ENVIRONMENT", "production"),
            ("OIDC_ISSUER_URL", "https://id.example"),
            ("OIDC_AUDIENCE", "api"),
        ])
        .unwrap();
        assert_eq!(settings.server.host.to_string(), "0.0.0.0");
        assert!(settings.log.json);
    }

    #[test]
    fn the_documented_variable_names_are_read() {
        let settings = settings(&[
            ("PORT", "9000"),
            ("WORKERS", "3"),
            ("LOG_LEVEL", "DEBUG"),
            ("LOG_JSON_OUTPUT", "true"),
        ])
        .unwrap();
        assert_eq!(settings.server.port, 9000);
        assert_eq!(settings.server.workers, NonZeroUsize::new(3));
        assert_eq!(
            settings.log.filter.default_level(),
            Some(LevelFilter::DEBUG)
        );
        assert!(settings.log.json);
    }

    #[test]
    fn each_bad_value_is_reported_under_its_variable() {
        assert_eq!(invalid_variable(&[("PORT", "70000")]), "PORT");
        assert_eq!(invalid_variable(&[("WORKERS", "0")]), "WORKERS");
        assert_eq!(invalid_variable(&[("WORKERS", "513")]), "WORKERS");
        assert_eq!(invalid_variable(&[("HOST", "localhost:80")]), "HOST");
        assert_eq!(invalid_variable(&[("KEEP_ALIVE", "-1")]), "KEEP_ALIVE");
        assert_eq!(
            invalid_variable(&[("CLIENT_REQUEST_TIMEOUT", "0")]),
            "CLIENT_REQUEST_TIMEOUT"
        );
        assert_eq!(invalid_variable(&[("LOG_LEVEL", "loud")]), "LOG_LEVEL");
        assert_eq!(
            invalid_variable(&[("LOG_JSON_OUTPUT", "maybe")]),
            "LOG_JSON_OUTPUT"
        );
        assert_eq!(invalid_variable(&[("RUST_LOG", "a=b=c")]), "RUST_LOG");
        assert_eq!(
            invalid_variable(&[("APP_ENVIRONMENT", "staging")]),
            "APP_ENVIRONMENT"
        );
    }

    #[test]
    fn the_error_names_the_value_and_what_is_accepted() {
        let error = settings(&[("LOG_LEVEL", "loud")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid setting LOG_LEVEL=\"loud\": expected one of trace, debug, info, warn, error, off"
        );
    }

    #[test]
    fn cors_origins_are_listed_explicitly() {
        let listed = settings(&[(
            "CORS_ALLOWED_ORIGINS",
            "https://app.example.com, http://localhost:3000",
        )])
        .unwrap();
        assert_eq!(
            listed.server.cors_allowed_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
        let default = settings(&[]).unwrap();
        assert!(default.server.cors_allowed_origins.is_empty());
    }

    #[test]
    fn trusted_proxies_are_networks_or_single_addresses() {
        let listed = settings(&[("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.10,::1")]).unwrap();
        let networks: Vec<String> = listed
            .server
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(networks, ["10.0.0.0/8", "192.168.1.10/32", "::1/128"]);
        assert!(settings(&[]).unwrap().server.trusted_proxies.is_empty());
        assert_eq!(
            invalid_variable(&[("TRUSTED_PROXIES", "10.0.0.0/33")]),
            "TRUSTED_PROXIES"
        );
        assert_eq!(
            invalid_variable(&[("TRUSTED_PROXIES", "proxy.example")]),
            "TRUSTED_PROXIES"
        );
    }

    #[test]
    fn rust_log_directives_refine_the_level() {
        let filter = settings(&[("RUST_LOG", "actix_server=warn,sqlx=debug")])
            .unwrap()
            .log
            .filter;
        assert!(filter.would_enable("actix_server::worker", &tracing::Level::WARN));
        assert!(!filter.would_enable("actix_server::worker", &tracing::Level::INFO));
        assert!(filter.would_enable("sqlx::query", &tracing::Level::DEBUG));
        assert!(filter.would_enable("default_anything", &tracing::Level::INFO));
        assert!(!filter.would_enable("default_anything", &tracing::Level::DEBUG));
        // Span and field filters are not directives this service takes.
        assert_eq!(
            invalid_variable(&[("RUST_LOG", "[HTTP request{request_id=abc}]=trace")]),
            "RUST_LOG"
        );
    }

    #[test]
    fn config_files_are_layered_under_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.toml"), "port = 7000\nworkers = 2\n").unwrap();
        std::fs::write(dir.path().join("local.toml"), "port = 7001\n").unwrap();
        let config_dir = dir.path().to_str().unwrap();

        let from_files = settings(&[("CONFIG_DIR", config_dir)]).unwrap();
        assert_eq!(from_files.server.port, 7001);
        assert_eq!(from_files.server.workers, NonZeroUsize::new(2));

        let overridden = settings(&[("CONFIG_DIR", config_dir), ("PORT", "7002")]).unwrap();
        assert_eq!(overridden.server.port, 7002);
    }

    #[test]
    fn a_malformed_config_file_names_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.toml"), "port = [").unwrap();
        let error = settings(&[("CONFIG_DIR", dir.path().to_str().unwrap())]);
        assert!(
            matches!(error, Err(SettingsError::Source { .. })),
            "{error:?}"
        );
    }

    #[test]
    fn dotenv_files_are_read_and_a_missing_one_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "# comment\nPORT=8100\nLOG_LEVEL=warn\n").unwrap();
        let vars = dotenv_vars(&path).unwrap();
        assert_eq!(vars.get("PORT").map(String::as_str), Some("8100"));
        assert_eq!(vars.get("LOG_LEVEL").map(String::as_str), Some("warn"));
        assert!(
            dotenv_vars(&dir.path().join("missing.env"))
                .unwrap()
                .is_empty()
        );
    }
}
