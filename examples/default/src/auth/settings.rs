//! `OIDC_*` settings: where the identity provider is and what a token must satisfy.

use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use crate::settings::{Environment, ServerSettings, SettingsError, Values};

/// Where keys come from and what a token must satisfy.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub provider: Provider,
    /// Required in `aud`; mandatory outside local development.
    pub audience: Option<String>,
    /// The Keycloak client whose `resource_access` roles count; defaults to the audience.
    pub client_id: Option<String>,
    /// Clients (`azp`, `client_id`) whose tokens are accepted; `None` accepts any client.
    pub allowed_clients: Option<Vec<String>>,
    /// Also count realm-wide roles and a plain `roles` claim as this service's roles.
    pub realm_roles: bool,
    /// Accepted signature algorithms; a key's own algorithm must also be in this list.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`; at most [`MAX_LEEWAY_SECS`].
    pub leeway: Duration,
    /// Require the RFC 9068 header `typ: at+jwt`.
    pub require_at_jwt: bool,
    /// Tokens longer than this are refused before any parsing.
    pub max_token_bytes: usize,
    /// Longest time between two key refreshes (a shorter Cache-Control max-age wins).
    pub jwks_max_age: Duration,
    /// Shortest time between two key fetches caused by unknown key ids or failed signatures.
    pub jwks_cooldown: Duration,
    /// How long the last keys fetched stay trusted while the provider cannot be reached.
    pub jwks_max_stale: Duration,
    /// `OIDC_ALLOW_HTTP`: production may fetch discovery and keys over plain http.
    pub allow_http: bool,
    /// Refuse `http://` for discovery and keys (production, unless `allow_http`).
    pub https_only: bool,
    /// Timeout of every request to the provider.
    pub http_timeout: Duration,
    /// Extra CA certificates to trust for the provider, on top of the system's
    /// (read from the PEM file `OIDC_CA_BUNDLE` names).
    pub ca_certificates: Vec<reqwest::Certificate>,
    /// Bytes of verified tokens remembered to skip the signature check on reuse; 0
    /// disables the cache.
    pub token_cache_bytes: u64,
}

/// The identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// An external provider, found by OpenID Connect discovery.
    Discovery {
        /// `<issuer>/.well-known/openid-configuration`.
        configuration_url: String,
        /// The issuer the discovery document must name, and every token must carry.
        issuer: String,
    },
    /// The embedded development issuer (local environment, loopback address only).
    Development,
}

/// The most clock skew `OIDC_LEEWAY` may allow: more would keep expired tokens alive.
pub const MAX_LEEWAY_SECS: u64 = 300;

/// The longest `OIDC_JWKS_MAX_STALE`: a key retired during an outage is trusted no longer.
const MAX_STALE: Duration = Duration::from_secs(30 * 86_400);

const ALGORITHMS: &str =
    "a comma-separated list of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA";
const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
const DEV_ISSUER_SIGNS_ANYTHING: &str = "the development issuer signs any token it is asked for, so it runs only on a loopback address (HOST=127.0.0.1 or ::1); set HOST to one, or configure a provider with OIDC_ISSUER_URL";

/// Whether this is a debug build (`cargo run`, `cargo test`), where the development issuer
/// may be on by default.
const DEBUG_BUILD: bool = cfg!(debug_assertions);

/// Whether the development issuer is on when `OIDC_DEV_ISSUER` is not set: locally, with no
/// provider named, in a debug build. Not in a release build: one started without
/// `APP_ENVIRONMENT` behind a proxy on the same host would otherwise mint tokens for anyone
/// the proxy lets in (its requests come from loopback).
fn dev_issuer_by_default(provider_named: bool, production: bool, debug_build: bool) -> bool {
    !provider_named && !production && debug_build
}

impl AuthSettings {
    pub(crate) fn from_values(
        values: &Values<'_>,
        environment: Environment,
        server: &ServerSettings,
    ) -> Result<Self, SettingsError> {
        let production = environment == Environment::Production;
        let configuration_url = values.get("OIDC_CONFIGURATION_URL")?;
        let issuer_url = values.get("OIDC_ISSUER_URL")?;
        let explicit_dev_issuer = values.get("OIDC_DEV_ISSUER")?.is_some();
        let provider_named = configuration_url.is_some() || issuer_url.is_some();
        let dev_default = if dev_issuer_by_default(provider_named, production, DEBUG_BUILD) {
            "true"
        } else {
            "false"
        };
        let development = values.boolean("OIDC_DEV_ISSUER", dev_default)?;
        if development && production {
            return Err(SettingsError::Invalid {
                variable: "OIDC_DEV_ISSUER",
                value: "true".into(),
                expected: "false in production: the development issuer signs any token it is asked for",
            });
        }
        if development && !server.host.is_loopback() {
            let host = format!("HOST={:?}", server.host.to_string());
            return Err(if explicit_dev_issuer {
                SettingsError::Conflict {
                    variable: "OIDC_DEV_ISSUER",
                    value: "true".into(),
                    other: host,
                    reason: DEV_ISSUER_SIGNS_ANYTHING,
                }
            } else {
                SettingsError::Conflict {
                    variable: "HOST",
                    value: server.host.to_string(),
                    other: "OIDC_DEV_ISSUER on by default (no OIDC_ISSUER_URL or OIDC_CONFIGURATION_URL)".into(),
                    reason: DEV_ISSUER_SIGNS_ANYTHING,
                }
            });
        }
        let allow_http = values.boolean("OIDC_ALLOW_HTTP", "false")?;
        let https_only = production && !allow_http;
        let provider = if development {
            Provider::Development
        } else {
            discovery(configuration_url, issuer_url, https_only)?
        };

        let audience = values.get("OIDC_AUDIENCE")?.filter(|a| !a.is_empty());
        if audience.is_none() && production {
            return Err(SettingsError::Invalid {
                variable: "OIDC_AUDIENCE",
                value: String::new(),
                expected: "this service's audience; it is required in production",
            });
        }
        // The development issuer's tokens name the package; its roles are that client's.
        let audience = match (audience, &provider) {
            (None, Provider::Development) => Some(env!("CARGO_PKG_NAME").to_owned()),
            (audience, _) => audience,
        };
        let client_id = values.get("OIDC_CLIENT_ID")?.or_else(|| audience.clone());

        let jwks_max_age = values.seconds("OIDC_JWKS_MAX_AGE", "300")?;
        // Zero would let every bad token (and a provider's `no-store`) fetch the keys again.
        let jwks_cooldown = values.seconds_within(
            "OIDC_JWKS_COOLDOWN",
            "a whole number of seconds from 1 to 3600",
            "10",
            1..=3600,
        )?;
        // Healthy refreshes come at least this often; trust must outlast two of them.
        let refresh_interval = jwks_max_age.max(jwks_cooldown);
        Ok(Self {
            provider,
            audience,
            client_id,
            allowed_clients: values.optional_with(
                "OIDC_ALLOWED_CLIENTS",
                "comma-separated client ids, or empty to accept tokens of any client",
                parse_list,
            )?,
            realm_roles: values.boolean("OIDC_REALM_ROLES", "false")?,
            algorithms: values.with(
                "OIDC_ALGORITHMS",
                ALGORITHMS,
                "RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,EdDSA",
                parse_algorithms,
            )?,
            leeway: values.seconds_within(
                "OIDC_LEEWAY",
                "a whole number of seconds from 0 to 300",
                "5",
                0..=MAX_LEEWAY_SECS,
            )?,
            require_at_jwt: values.boolean("OIDC_REQUIRE_AT_JWT", "false")?,
            max_token_bytes: values.parse("OIDC_MAX_TOKEN_BYTES", "a size in bytes", "8192")?,
            jwks_max_age,
            jwks_cooldown,
            jwks_max_stale: values.with(
                "OIDC_JWKS_MAX_STALE",
                "a whole number of seconds, at least twice OIDC_JWKS_MAX_AGE and OIDC_JWKS_COOLDOWN, and at most 30 days (2592000)",
                "86400",
                |value| {
                    let stale = Duration::from_secs(value.parse().ok()?);
                    (stale >= refresh_interval.saturating_mul(2) && stale <= MAX_STALE)
                        .then_some(stale)
                },
            )?,
            allow_http,
            https_only,
            http_timeout: values.seconds("OIDC_HTTP_TIMEOUT", "5")?,
            ca_certificates: match values.get("OIDC_CA_BUNDLE")? {
                Some(path) => read_ca_bundle(&path)?,
                None => Vec::new(),
            },
            token_cache_bytes: token_cache_bytes(values)?,
        })
    }

    /// Logs each setting that loosens a default, once, at startup.
    pub fn log_loosenings(&self) {
        if self.allow_http {
            tracing::warn!(
                "OIDC_ALLOW_HTTP=true: the provider's keys may be fetched over plain http, where anyone on the path can replace them"
            );
        }
        if self.realm_roles {
            tracing::warn!(
                "OIDC_REALM_ROLES=true: realm-wide roles and a plain roles claim count as this service's roles"
            );
        }
        if self.audience.is_none() {
            tracing::warn!(
                "OIDC_AUDIENCE is unset: tokens issued for any API are accepted (production refuses to start so)"
            );
        }
    }
}

/// The largest `OIDC_TOKEN_CACHE_BYTES`.
const MAX_TOKEN_CACHE_BYTES: u64 = 1 << 30;

/// `OIDC_TOKEN_CACHE_BYTES`: `4MiB` (the default), `512KiB`, `1048576`, or `0` to disable
/// the cache. It replaced `OIDC_TOKEN_CACHE_SIZE`, a number of entries, which is refused
/// with a message rather than ignored.
fn token_cache_bytes(values: &Values<'_>) -> Result<u64, SettingsError> {
    if let Some(value) = values.get("OIDC_TOKEN_CACHE_SIZE")? {
        return Err(SettingsError::Invalid {
            variable: "OIDC_TOKEN_CACHE_SIZE",
            value,
            expected: "unset: the token cache is bounded in bytes now; set OIDC_TOKEN_CACHE_BYTES instead (such as 4MiB; 0 disables the cache)",
        });
    }
    values.with(
        "OIDC_TOKEN_CACHE_BYTES",
        "a size of at most 1GiB: bytes, or a number with KiB or MiB (0 disables the cache)",
        "4MiB",
        |value| {
            let (number, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
                Some(at) => value.split_at(at),
                None => (value, ""),
            };
            let factor = match unit.trim() {
                "" => 1,
                "KiB" => 1 << 10,
                "MiB" => 1 << 20,
                _ => return None,
            };
            let bytes = number.parse::<u64>().ok()?.checked_mul(factor)?;
            (bytes <= MAX_TOKEN_CACHE_BYTES).then_some(bytes)
        },
    )
}

/// Derives the discovery URL and the expected issuer from whichever of the two is set.
/// OpenID Connect Discovery §4.3: the issuer is the configuration URL minus its
/// well-known suffix, exactly.
fn discovery(
    configuration_url: Option<String>,
    issuer_url: Option<String>,
    https_only: bool,
) -> Result<Provider, SettingsError> {
    let http_url = |variable: &'static str, value: &str| -> Result<(), SettingsError> {
        let scheme_ok = if https_only {
            value.starts_with("https://")
        } else {
            value.starts_with("https://") || value.starts_with("http://")
        };
        if scheme_ok {
            Ok(())
        } else {
            Err(SettingsError::Invalid {
                variable,
                value: value.to_owned(),
                expected: if https_only {
                    "an https:// URL in production (OIDC_ALLOW_HTTP=true allows http:// where the network below is encrypted)"
                } else {
                    "an http:// or https:// URL"
                },
            })
        }
    };
    match (configuration_url, issuer_url) {
        // Both: discovery is fetched from one address and names the other as the issuer,
        // as when the service reaches the provider on an internal host name while tokens
        // carry the public one (Keycloak's KC_HOSTNAME with a dynamic back channel).
        (Some(configuration_url), Some(issuer)) => {
            http_url("OIDC_CONFIGURATION_URL", &configuration_url)?;
            http_url("OIDC_ISSUER_URL", &issuer)?;
            Ok(Provider::Discovery {
                configuration_url,
                issuer,
            })
        }
        (Some(configuration_url), None) => {
            http_url("OIDC_CONFIGURATION_URL", &configuration_url)?;
            let issuer = configuration_url
                .strip_suffix(DISCOVERY_PATH)
                .ok_or_else(|| SettingsError::Invalid {
                    variable: "OIDC_CONFIGURATION_URL",
                    value: configuration_url.clone(),
                    expected: "a URL ending in /.well-known/openid-configuration",
                })?
                .to_owned();
            Ok(Provider::Discovery {
                configuration_url,
                issuer,
            })
        }
        (None, Some(issuer)) => {
            http_url("OIDC_ISSUER_URL", &issuer)?;
            let configuration_url = format!("{}{DISCOVERY_PATH}", issuer.trim_end_matches('/'));
            Ok(Provider::Discovery {
                configuration_url,
                issuer,
            })
        }
        (None, None) => Err(SettingsError::Invalid {
            variable: "OIDC_CONFIGURATION_URL",
            value: String::new(),
            expected: "the provider's discovery URL (or OIDC_ISSUER_URL), or OIDC_DEV_ISSUER=true locally (on by default in debug builds only)",
        }),
    }
}

/// The certificates of a PEM bundle; an unreadable file or one without a certificate is an
/// error naming the setting.
fn read_ca_bundle(path: &str) -> Result<Vec<reqwest::Certificate>, SettingsError> {
    let certificates = std::fs::read(PathBuf::from(path))
        .ok()
        .and_then(|pem| reqwest::Certificate::from_pem_bundle(&pem).ok())
        .filter(|certificates| !certificates.is_empty());
    certificates.ok_or_else(|| SettingsError::Invalid {
        variable: "OIDC_CA_BUNDLE",
        value: path.to_owned(),
        expected: "a readable PEM file holding at least one CA certificate",
    })
}

fn parse_list(value: &str) -> Option<Vec<String>> {
    let items: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect();
    (!items.is_empty()).then_some(items)
}

fn parse_algorithms(value: &str) -> Option<Vec<Algorithm>> {
    let algorithms = value
        .split(',')
        .map(|name| match name.trim() {
            "RS256" => Some(Algorithm::RS256),
            "RS384" => Some(Algorithm::RS384),
            "RS512" => Some(Algorithm::RS512),
            "PS256" => Some(Algorithm::PS256),
            "PS384" => Some(Algorithm::PS384),
            "PS512" => Some(Algorithm::PS512),
            "ES256" => Some(Algorithm::ES256),
            "ES384" => Some(Algorithm::ES384),
            "EdDSA" => Some(Algorithm::EdDSA),
            // HS* and `none` are refused: a shared secret has no place in a resource server.
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    (!algorithms.is_empty()).then_some(algorithms)
}

#[cfg(test)]
mod tests {
    use crate::settings::tests::{invalid_variable as refused, settings as load};

    use super::{DEBUG_BUILD, Provider, dev_issuer_by_default};

    #[test]
    fn the_issuer_is_the_configuration_url_without_its_suffix() {
        let settings = load(&[(
            "OIDC_CONFIGURATION_URL",
            "https://kc.example/realms/shop/.well-known/openid-configuration",
        )])
        .unwrap();
        assert_eq!(
            settings.auth.provider,
            Provider::Discovery {
                configuration_url:
                    "https://kc.example/realms/shop/.well-known/openid-configuration".into(),
                issuer: "https://kc.example/realms/shop".into(),
            }
        );
    }

    #[test]
    fn an_explicit_issuer_may_differ_from_the_discovery_address() {
        let settings = load(&[
            (
                "OIDC_CONFIGURATION_URL",
                "http://keycloak:8080/realms/dev/.well-known/openid-configuration",
            ),
            ("OIDC_ISSUER_URL", "http://localhost:8080/realms/dev"),
        ])
        .unwrap();
        assert_eq!(
            settings.auth.provider,
            Provider::Discovery {
                configuration_url:
                    "http://keycloak:8080/realms/dev/.well-known/openid-configuration".into(),
                issuer: "http://localhost:8080/realms/dev".into(),
            }
        );
    }

    #[test]
    fn the_token_cache_is_bounded_in_bytes() {
        let bytes = |value: &str| {
            load(&[("OIDC_TOKEN_CACHE_BYTES", value)])
                .map(|settings| settings.auth.token_cache_bytes)
        };
        assert_eq!(load(&[]).unwrap().auth.token_cache_bytes, 4 << 20);
        assert_eq!(bytes("512KiB").unwrap(), 512 << 10);
        assert_eq!(bytes("1048576").unwrap(), 1 << 20);
        assert_eq!(bytes("0").unwrap(), 0);
        for bad in ["4MB", "-1", "2048MiB", "MiB", "1.5MiB"] {
            assert_eq!(
                refused(&[("OIDC_TOKEN_CACHE_BYTES", bad)]),
                "OIDC_TOKEN_CACHE_BYTES",
                "{bad}"
            );
        }
        // The old entry count is named, not silently ignored.
        assert_eq!(
            refused(&[("OIDC_TOKEN_CACHE_SIZE", "10000")]),
            "OIDC_TOKEN_CACHE_SIZE"
        );
    }

    #[test]
    fn local_development_without_a_provider_uses_the_development_issuer() {
        assert_eq!(load(&[]).unwrap().auth.provider, Provider::Development);
    }

    #[test]
    fn a_release_build_turns_the_development_issuer_on_only_when_asked() {
        // (provider named, production, debug build) => on by default
        assert!(dev_issuer_by_default(false, false, true));
        assert!(
            !dev_issuer_by_default(false, false, false),
            "a release build"
        );
        assert!(!dev_issuer_by_default(true, false, true));
        assert!(!dev_issuer_by_default(false, true, true));
        // This build (tests are debug builds) follows the rule.
        let default_on =
            load(&[]).is_ok_and(|settings| settings.auth.provider == Provider::Development);
        assert_eq!(default_on, DEBUG_BUILD);
    }

    #[test]
    fn the_key_fetch_cooldown_is_never_zero() {
        assert_eq!(
            refused(&[("OIDC_JWKS_COOLDOWN", "0")]),
            "OIDC_JWKS_COOLDOWN"
        );
        assert_eq!(
            refused(&[("OIDC_JWKS_COOLDOWN", "3601")]),
            "OIDC_JWKS_COOLDOWN"
        );
        let message = load(&[("OIDC_JWKS_COOLDOWN", "0")])
            .unwrap_err()
            .to_string();
        assert!(message.contains("from 1 to 3600"), "{message}");
        let default = load(&[]).unwrap();
        assert_eq!(default.auth.jwks_cooldown.as_secs(), 10);
    }

    #[test]
    fn production_refuses_the_development_issuer_and_requires_an_audience() {
        let production = ("APP_ENVIRONMENT", "production");
        let url = ("OIDC_ISSUER_URL", "https://id.example");
        assert_eq!(
            refused(&[
                production,
                ("OIDC_DEV_ISSUER", "true"),
                ("OIDC_AUDIENCE", "api")
            ]),
            "OIDC_DEV_ISSUER"
        );
        assert_eq!(refused(&[production, url]), "OIDC_AUDIENCE");
        assert_eq!(
            refused(&[production, ("OIDC_AUDIENCE", "api")]),
            "OIDC_CONFIGURATION_URL"
        );
        assert!(load(&[production, url, ("OIDC_AUDIENCE", "api")]).is_ok());
    }

    #[test]
    fn the_development_issuer_runs_on_a_loopback_address_only() {
        // Implicitly on (local, no provider): the address is what is wrong.
        assert_eq!(refused(&[("HOST", "0.0.0.0")]), "HOST");
        // Asked for explicitly: the request is what is wrong.
        assert_eq!(
            refused(&[("HOST", "10.1.2.3"), ("OIDC_DEV_ISSUER", "true")]),
            "OIDC_DEV_ISSUER"
        );
        let message = load(&[("HOST", "0.0.0.0")]).unwrap_err().to_string();
        assert!(message.contains("HOST=\"0.0.0.0\""), "{message}");
        assert!(message.contains("OIDC_DEV_ISSUER"), "{message}");
        for loopback in ["127.0.0.1", "::1"] {
            let settings = load(&[("HOST", loopback)]).unwrap();
            assert_eq!(settings.auth.provider, Provider::Development);
        }
        // Any address is fine once a real provider is configured.
        let settings = load(&[
            ("HOST", "0.0.0.0"),
            ("OIDC_ISSUER_URL", "https://id.example"),
        ])
        .unwrap();
        assert!(matches!(settings.auth.provider, Provider::Discovery { .. }));
    }

    #[test]
    fn production_fetches_keys_over_https_unless_http_is_allowed_explicitly() {
        let production = [("APP_ENVIRONMENT", "production"), ("OIDC_AUDIENCE", "api")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut vars = production.to_vec();
            vars.extend_from_slice(extra);
            vars
        };
        assert_eq!(
            refused(&with(&[("OIDC_ISSUER_URL", "http://id.example")])),
            "OIDC_ISSUER_URL"
        );
        assert_eq!(
            refused(&with(&[(
                "OIDC_CONFIGURATION_URL",
                "http://id.example/.well-known/openid-configuration"
            )])),
            "OIDC_CONFIGURATION_URL"
        );
        assert_eq!(
            refused(&with(&[
                (
                    "OIDC_CONFIGURATION_URL",
                    "https://kc/.well-known/openid-configuration"
                ),
                ("OIDC_ISSUER_URL", "http://id.example")
            ])),
            "OIDC_ISSUER_URL"
        );
        let https = load(&with(&[("OIDC_ISSUER_URL", "https://id.example")])).unwrap();
        assert!(https.auth.https_only);
        let allowed = load(&with(&[
            ("OIDC_ISSUER_URL", "http://id.example"),
            ("OIDC_ALLOW_HTTP", "true"),
        ]))
        .unwrap();
        assert!(!allowed.auth.https_only);
        // Locally http is fine: the provider is usually on the same machine.
        let local = load(&[("OIDC_ISSUER_URL", "http://localhost:8080/realms/dev")]).unwrap();
        assert!(!local.auth.https_only);
    }

    #[test]
    fn the_leeway_is_capped_at_five_minutes() {
        assert_eq!(
            load(&[("OIDC_LEEWAY", "300")])
                .unwrap()
                .auth
                .leeway
                .as_secs(),
            300
        );
        assert_eq!(refused(&[("OIDC_LEEWAY", "301")]), "OIDC_LEEWAY");
        let message = load(&[("OIDC_LEEWAY", "3600")]).unwrap_err().to_string();
        assert!(message.contains("from 0 to 300"), "{message}");
    }

    #[test]
    fn stale_keys_are_trusted_for_a_day_and_never_less_than_two_refreshes() {
        let default = load(&[]).unwrap();
        assert_eq!(default.auth.jwks_max_stale.as_secs(), 86_400);
        assert_eq!(
            refused(&[("OIDC_JWKS_MAX_STALE", "500")]),
            "OIDC_JWKS_MAX_STALE",
            "less than twice OIDC_JWKS_MAX_AGE (300 s)"
        );
        assert_eq!(
            refused(&[("OIDC_JWKS_MAX_STALE", "99999999999999")]),
            "OIDC_JWKS_MAX_STALE"
        );
        assert_eq!(
            refused(&[("OIDC_JWKS_MAX_AGE", "18446744073709551615")]),
            "OIDC_JWKS_MAX_STALE",
            "twice an enormous refresh interval is still refused, not an overflow"
        );
        let short = load(&[
            ("OIDC_JWKS_MAX_AGE", "1"),
            ("OIDC_JWKS_COOLDOWN", "1"),
            ("OIDC_JWKS_MAX_STALE", "2"),
        ])
        .unwrap();
        assert_eq!(short.auth.jwks_max_stale.as_secs(), 2);
    }

    #[test]
    fn allowed_clients_and_realm_roles_are_opt_in() {
        let default = load(&[]).unwrap();
        assert_eq!(default.auth.allowed_clients, None);
        assert!(!default.auth.realm_roles);
        let set = load(&[
            ("OIDC_ALLOWED_CLIENTS", "web-app, cli"),
            ("OIDC_REALM_ROLES", "true"),
        ])
        .unwrap();
        assert_eq!(
            set.auth.allowed_clients,
            Some(vec!["web-app".to_owned(), "cli".to_owned()])
        );
        assert!(set.auth.realm_roles);
    }

    #[test]
    fn symmetric_and_unknown_algorithms_are_refused() {
        assert_eq!(
            refused(&[("OIDC_ALGORITHMS", "RS256,HS256")]),
            "OIDC_ALGORITHMS"
        );
        assert_eq!(refused(&[("OIDC_ALGORITHMS", "none")]), "OIDC_ALGORITHMS");
        assert_eq!(
            refused(&[("OIDC_CONFIGURATION_URL", "https://id.example")]),
            "OIDC_CONFIGURATION_URL"
        );
    }

    #[test]
    fn a_ca_bundle_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let missing = dir.path().join("missing.pem");
        for path in [garbage, missing] {
            let path = path.to_str().unwrap();
            assert_eq!(refused(&[("OIDC_CA_BUNDLE", path)]), "OIDC_CA_BUNDLE");
        }
    }
}
