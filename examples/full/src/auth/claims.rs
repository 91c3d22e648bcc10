//! The claims of a verified access token (RFC 9068, with Keycloak's role claims).

use std::collections::{BTreeSet, HashMap};
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::AuthError;

/// The claims of an access token that the service reads, each a field. Any other claim
/// (`tenant`, `groups`, ...) is read on demand with [`AccessToken::claim`]: the token is
/// parsed once, into these fields, and other claims cost nothing until a handler asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    // `iss`, `sub` and `exp` are required by the validator, which names a missing (or empty)
    // one; the defaults only let it get that far.
    /// Issuer; checked to equal the configured provider's issuer exactly.
    #[serde(default)]
    pub iss: String,
    /// Subject: the user, or the client for a client-credentials token.
    #[serde(default)]
    pub sub: String,
    /// Audience; checked to contain `OIDC_AUDIENCE` when that is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<OneOrMany>,
    /// Expiry, seconds since the epoch.
    #[serde(default = "absent")]
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The client the token was issued to (OIDC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// The client the token was issued to (RFC 9068).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Space-separated scopes (RFC 9068, Keycloak).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Scopes as some providers send them (Azure AD, Okta): a string or a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<OneOrMany>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the provider checked that `email` belongs to the subject. Some providers
    /// send it as a string: `"true"` counts.
    #[serde(
        default,
        deserialize_with = "bool_or_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub email_verified: Option<bool>,
    /// Keycloak's token type: `Bearer` in access tokens, `ID` in ID tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Keycloak realm roles; they count only with `OIDC_REALM_ROLES=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm_access: Option<Roles>,
    /// Keycloak client roles, by client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_access: Option<HashMap<String, Roles>>,
    /// Roles as a plain list (Entra ID app roles); they count only with
    /// `OIDC_REALM_ROLES=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// ID tokens' hash of the access token (OIDC Core §3.1.3.6): its presence marks an ID
    /// token, which the validator refuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// ID tokens' hash of the authorization code: likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c_hash: Option<String>,
    /// The login's nonce, which ID tokens carry (OIDC Core §2): it marks an ID token unless
    /// Keycloak's `typ: Bearer` says otherwise (older Keycloak releases copied it into access
    /// tokens too). Any JSON value: only its presence counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<serde_json::Value>,
    /// Confirmation (RFC 7800): the token is bound to a key of its holder (DPoP's `jkt`,
    /// RFC 9449) or to a client certificate (`x5t#S256`, RFC 8705). Only bearer tokens are
    /// accepted here, so the validator refuses a bound one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<serde_json::Value>,
    /// The events of a Security Event Token (RFC 8417 §2.2), which a logout token is (OIDC
    /// Back-Channel Logout §2.4): its presence marks a token that is not an access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<serde_json::Value>,
}

/// The `exp` of a token without one, which the validator refuses as a missing claim.
pub(crate) const ABSENT: i64 = i64::MIN;

fn absent() -> i64 {
    ABSENT
}

/// `true`, `false`, `"true"` or `"false"`.
fn bool_or_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BoolOrString {
        Bool(bool),
        String(String),
    }
    Ok(match Option::<BoolOrString>::deserialize(deserializer)? {
        Some(BoolOrString::Bool(value)) => Some(value),
        Some(BoolOrString::String(text)) => Some(text.eq_ignore_ascii_case("true")),
        None => None,
    })
}

/// Where the caller's roles come from.
#[derive(Debug, Clone, Default)]
pub struct RoleSources {
    /// The client whose `resource_access` roles count: this API's own client.
    pub client_id: Option<String>,
    /// Also count realm-wide roles (`realm_access`) and a plain `roles` claim, which any
    /// application of the realm shares (`OIDC_REALM_ROLES=true`).
    pub realm_roles: bool,
}

/// A claim that may be a single string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let items: &[String] = match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        };
        items.iter().map(String::as_str)
    }
}

/// `{"roles": [...]}`, as in Keycloak's `realm_access` and `resource_access`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Roles {
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A verified access token: use it as a handler argument to require a valid bearer token.
///
/// Cheap to clone. Dereferences to its [`Claims`]; scopes and roles are gathered once, at
/// verification, from every claim that carries them.
#[derive(Debug, Clone)]
pub struct AccessToken(Arc<Verified>);

#[derive(Debug, Clone)]
struct Verified {
    claims: Claims,
    /// The claims as the provider signed them (JSON), for [`AccessToken::claim`].
    payload: Box<[u8]>,
    scopes: BTreeSet<String>,
    roles: BTreeSet<String>,
}

impl AccessToken {
    /// Wraps verified claims and the JSON they were read from, taking the caller's roles
    /// from `roles`.
    pub(crate) fn new(claims: Claims, payload: Vec<u8>, roles: &RoleSources) -> Self {
        let mut scopes = BTreeSet::new();
        if let Some(scope) = &claims.scope {
            scopes.extend(scope.split_whitespace().map(str::to_owned));
        }
        if let Some(scp) = &claims.scp {
            scopes.extend(
                scp.iter()
                    .flat_map(str::split_whitespace)
                    .map(str::to_owned),
            );
        }
        let sources = roles;
        let mut roles = BTreeSet::new();
        if let (Some(resources), Some(client_id)) = (&claims.resource_access, &sources.client_id)
            && let Some(client) = resources.get(client_id)
        {
            roles.extend(client.roles.iter().cloned());
        }
        if sources.realm_roles {
            if let Some(realm) = &claims.realm_access {
                roles.extend(realm.roles.iter().cloned());
            }
            if let Some(plain) = &claims.roles {
                roles.extend(plain.iter().cloned());
            }
        }
        Self(Arc::new(Verified {
            claims,
            payload: payload.into_boxed_slice(),
            scopes,
            roles,
        }))
    }

    /// A copy that shares no memory with this one, for a cache that one thread keeps:
    /// cloning it changes a reference count no other thread touches.
    pub(crate) fn detached(&self) -> Self {
        Self(Arc::new(Verified::clone(&self.0)))
    }

    /// A claim without a field in [`Claims`], such as `tenant` or `groups`, as `T`; `None`
    /// when the token lacks it or it is not a `T`. Parsed from the signed token at each call.
    pub fn claim<T: serde::de::DeserializeOwned>(&self, name: &str) -> Option<T> {
        let mut claims: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&self.0.payload).ok()?;
        serde_json::from_value(claims.remove(name)?).ok()
    }

    /// The size of the token's claims as JSON, in bytes: what the verified-token cache
    /// weighs it by.
    pub(crate) fn payload_len(&self) -> usize {
        self.0.payload.len()
    }

    /// Scopes from `scope` and `scp`.
    pub fn scopes(&self) -> &BTreeSet<String> {
        &self.0.scopes
    }

    /// Roles from `resource_access.<OIDC_CLIENT_ID>`, and with `OIDC_REALM_ROLES=true`
    /// from `realm_access` and `roles` too.
    pub fn roles(&self) -> &BTreeSet<String> {
        &self.0.roles
    }

    /// The email address, when the provider verified it belongs to the subject.
    pub fn verified_email(&self) -> Option<&str> {
        let claims = &self.0.claims;
        claims
            .email
            .as_deref()
            .filter(|_| claims.email_verified == Some(true))
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.contains(scope)
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.0.roles.contains(role)
    }

    /// `Ok` when the token carries `scope`; otherwise a 403 `insufficient_scope` error.
    pub fn require_scope(&self, scope: &str) -> Result<(), AuthError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(AuthError::InsufficientScope {
                required: format!("scope {scope}"),
                scope: Some(scope.to_owned()),
            })
        }
    }

    /// `Ok` when the token carries `role`; otherwise a 403 `insufficient_scope` error.
    pub fn require_role(&self, role: &str) -> Result<(), AuthError> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(AuthError::InsufficientScope {
                required: format!("role {role}"),
                scope: None,
            })
        }
    }
}

impl Deref for AccessToken {
    type Target = Claims;

    fn deref(&self) -> &Claims {
        &self.0.claims
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: serde_json::Value, sources: &RoleSources) -> AccessToken {
        let mut base = serde_json::json!({ "iss": "i", "sub": "s", "aud": "a", "exp": 1 });
        base.as_object_mut()
            .unwrap()
            .extend(claims.as_object().unwrap().clone());
        let payload = serde_json::to_vec(&base).unwrap();
        AccessToken::new(serde_json::from_value(base).unwrap(), payload, sources)
    }

    fn client(client_id: &str, realm_roles: bool) -> RoleSources {
        RoleSources {
            client_id: Some(client_id.to_owned()),
            realm_roles,
        }
    }

    #[test]
    fn scopes_come_from_scope_and_scp() {
        let token = token(
            serde_json::json!({ "scope": "read write", "scp": ["admin"] }),
            &RoleSources::default(),
        );
        assert!(token.has_scope("read") && token.has_scope("write") && token.has_scope("admin"));
        assert!(!token.has_scope("delete"));
    }

    fn roles_of(token: &AccessToken) -> Vec<&str> {
        token.roles().iter().map(String::as_str).collect()
    }

    #[test]
    fn only_this_apis_client_roles_count_by_default() {
        let claims = serde_json::json!({
            "realm_access": { "roles": ["admin"] },
            "resource_access": { "orders": { "roles": ["clerk"] }, "billing": { "roles": ["payer"] } },
            "roles": ["auditor"]
        });
        let own = token(claims.clone(), &client("orders", false));
        assert_eq!(roles_of(&own), ["clerk"]);
        assert!(
            !own.has_role("admin"),
            "a realm administrator is not one here"
        );

        let realm = token(claims, &client("orders", true));
        assert_eq!(roles_of(&realm), ["admin", "auditor", "clerk"]);
    }

    #[test]
    fn an_email_counts_as_verified_only_when_the_provider_says_so() {
        let email = |verified: serde_json::Value| {
            let claims =
                serde_json::json!({ "email": "ada@example.test", "email_verified": verified });
            token(claims, &RoleSources::default())
                .verified_email()
                .map(str::to_owned)
        };
        assert_eq!(
            email(serde_json::json!(true)).as_deref(),
            Some("ada@example.test")
        );
        assert_eq!(
            email(serde_json::json!("true")).as_deref(),
            Some("ada@example.test")
        );
        assert_eq!(email(serde_json::json!(false)), None);
        assert_eq!(email(serde_json::Value::Null), None);
        let unverified = token(
            serde_json::json!({ "email": "ada@example.test" }),
            &RoleSources::default(),
        );
        assert_eq!(unverified.verified_email(), None);
    }

    #[test]
    fn other_claims_are_read_on_demand() {
        let token = token(
            serde_json::json!({ "tenant": "acme", "groups": ["a", "b"], "level": 3 }),
            &RoleSources::default(),
        );
        assert_eq!(token.claim::<String>("tenant").as_deref(), Some("acme"));
        assert_eq!(token.claim::<Vec<String>>("groups").unwrap(), ["a", "b"]);
        assert_eq!(token.claim::<u8>("level"), Some(3));
        assert_eq!(token.claim::<String>("level"), None, "not a string");
        assert_eq!(token.claim::<String>("absent"), None);
    }

    #[test]
    fn a_missing_role_is_a_403() {
        let token = token(serde_json::json!({}), &RoleSources::default());
        assert!(matches!(
            token.require_role("admin"),
            Err(AuthError::InsufficientScope { .. })
        ));
    }
}
