//! `OIDC_*` settings: where the identity provider is and what a token must satisfy.

use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use crate::settings::{Environment, SettingsError, Values};

/// Where keys come from and what a token must satisfy.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub provider: Provider,
    /// Required in `aud`; mandatory outside local development.
    pub audience: Option<String>,
    /// The Keycloak client whose `resource_access` roles count; defaults to the audience.
    pub client_id: Option<String>,
    /// Accepted signature algorithms; a key's own algorithm must also be in this list.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Require the RFC 9068 header `typ: at+jwt`.
    pub require_at_jwt: bool,
    /// Tokens longer than this are refused before any parsing.
    pub max_token_bytes: usize,
    /// Longest time between two key refreshes (a shorter Cache-Control max-age wins).
    pub jwks_max_age: Duration,
    /// Shortest time between two key fetches caused by unknown key ids.
    pub jwks_cooldown: Duration,
    /// Timeout of every request to the provider.
    pub http_timeout: Duration,
    /// Extra CA certificates to trust for the provider, on top of the system's
    /// (read from the PEM file `OIDC_CA_BUNDLE` names).
    pub ca_certificates: Vec<reqwest::Certificate>,
    /// Verified tokens remembered to skip the signature check on reuse; 0 disables.
    pub token_cache_size: u64,
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
    /// The embedded development issuer (local environment only).
    Development,
}

const ALGORITHMS: &str =
    "a comma-separated list of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA";
const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

impl AuthSettings {
    pub(crate) fn from_values(
        values: &Values<'_>,
        environment: Environment,
    ) -> Result<Self, SettingsError> {
        let production = environment == Environment::Production;
        let configuration_url = values.get("OIDC_CONFIGURATION_URL")?;
        let issuer_url = values.get("OIDC_ISSUER_URL")?;
        let dev_default = if configuration_url.is_none() && issuer_url.is_none() && !production {
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
        let provider = if development {
            Provider::Development
        } else {
            discovery(configuration_url, issuer_url)?
        };

        let audience = values.get("OIDC_AUDIENCE")?.filter(|a| !a.is_empty());
        if audience.is_none() && production {
            return Err(SettingsError::Invalid {
                variable: "OIDC_AUDIENCE",
                value: String::new(),
                expected: "this service's audience; it is required in production",
            });
        }
        let client_id = values.get("OIDC_CLIENT_ID")?.or_else(|| audience.clone());

        Ok(Self {
            provider,
            audience,
            client_id,
            algorithms: values.with(
                "OIDC_ALGORITHMS",
                ALGORITHMS,
                "RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,EdDSA",
                parse_algorithms,
            )?,
            leeway: values.seconds("OIDC_LEEWAY", "5")?,
            require_at_jwt: values.boolean("OIDC_REQUIRE_AT_JWT", "false")?,
            max_token_bytes: values.parse("OIDC_MAX_TOKEN_BYTES", "a size in bytes", "8192")?,
            jwks_max_age: values.seconds("OIDC_JWKS_MAX_AGE", "300")?,
            jwks_cooldown: values.seconds("OIDC_JWKS_COOLDOWN", "10")?,
            http_timeout: values.seconds("OIDC_HTTP_TIMEOUT", "5")?,
            ca_certificates: match values.get("OIDC_CA_BUNDLE")? {
                Some(path) => read_ca_bundle(&path)?,
                None => Vec::new(),
            },
            token_cache_size: values.parse(
                "OIDC_TOKEN_CACHE_SIZE",
                "a number of tokens (0 disables the cache)",
                "10000",
            )?,
        })
    }
}

/// Derives the discovery URL and the expected issuer from whichever of the two is set.
/// OpenID Connect Discovery §4.3: the issuer is the configuration URL minus its
/// well-known suffix, exactly.
fn discovery(
    configuration_url: Option<String>,
    issuer_url: Option<String>,
) -> Result<Provider, SettingsError> {
    let http_url = |variable: &'static str, value: &str| -> Result<(), SettingsError> {
        if value.starts_with("https://") || value.starts_with("http://") {
            Ok(())
        } else {
            Err(SettingsError::Invalid {
                variable,
                value: value.to_owned(),
                expected: "an http:// or https:// URL",
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
            expected: "the provider's discovery URL (or OIDC_ISSUER_URL), or OIDC_DEV_ISSUER=true locally",
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

    use super::Provider;

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
    fn local_development_without_a_provider_uses_the_development_issuer() {
        assert_eq!(load(&[]).unwrap().auth.provider, Provider::Development);
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
