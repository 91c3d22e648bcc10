//! PostgreSQL: the database this service was generated for.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

pub type Db = sqlx::Postgres;

/// Parses `DATABASE_URL` (`postgres://user:password@host:5432/database?sslmode=...`).
pub fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    PgConnectOptions::from_str(url)
}

/// Whether connections made with `options` are encrypted and the server's certificate is
/// checked (`sslmode=verify-full` or `verify-ca`); `prefer`, the default, may silently fall
/// back to plain text.
pub fn verifies_server(options: &PgConnectOptions) -> bool {
    matches!(
        options.get_ssl_mode(),
        PgSslMode::VerifyFull | PgSslMode::VerifyCa
    )
}

/// A URL the settings accept even in production, for the settings' unit tests.
#[cfg(test)]
pub const TEST_URL: &str = "postgres://localhost/test?sslmode=verify-full";

/// Starts a transaction that will write.
pub const BEGIN_WRITE: &str = "BEGIN";

/// No default: `DATABASE_URL` must name the server.
pub const DEFAULT_URL: Option<&str> = None;

/// Takes the job's advisory lock for this transaction, if no other replica holds it.
/// Released when the transaction ends.
pub async fn try_lock_job(
    transaction: &mut sqlx::Transaction<'_, Db>,
    job: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext($1))")
        .bind(job)
        .fetch_one(&mut **transaction)
        .await
}

#[cfg(test)]
mod tests {
    use crate::settings::tests::{invalid_variable, settings};

    #[test]
    fn production_wants_the_database_server_verified() {
        let production = [
            ("APP_ENVIRONMENT", "production"),
            ("OIDC_ISSUER_URL", "https://id.example"),
            ("OIDC_AUDIENCE", "api"),
        ];
        let with_url = |url: &'static str| {
            let mut vars = production.to_vec();
            vars.push(("DATABASE_URL", url));
            vars
        };
        for url in [
            "postgres://db/app",
            "postgres://db/app?sslmode=prefer",
            "postgres://db/app?sslmode=require",
        ] {
            assert_eq!(invalid_variable(&with_url(url)), "DATABASE_URL", "{url}");
        }
        assert!(settings(&with_url("postgres://db/app?sslmode=verify-full")).is_ok());
        assert!(settings(&with_url("postgres://db/app?sslmode=verify-ca")).is_ok());
        let mut allowed = with_url("postgres://db/app?sslmode=disable");
        allowed.push(("DATABASE_ALLOW_INSECURE", "true"));
        assert!(settings(&allowed).unwrap().database.allow_insecure);
        // Locally any mode goes.
        assert!(settings(&[("DATABASE_URL", "postgres://localhost/app")]).is_ok());
    }
}
