//! The migrations, embedded in the binary.

/// A migration: version, description, SQL.
type Step = (i64, &'static str, &'static str);

const USERS: Step = (1, "users", include_str!("../../migrations/0001_users.sql"));
{%- if scheduler %}
const JOB_RUNS: Step = (2, "jobs", include_str!("../../migrations/0002_jobs.sql"));
{%- endif %}
const USERS_EMAIL_LIVE: Step = (
    3,
    "users email live",
    include_str!("../../migrations/0003_users_email_live.sql"),
);

/// Every migration, in the order they apply.
pub const MIGRATIONS: &[Step] = &[USERS{% if scheduler %}, JOB_RUNS{% endif %}, USERS_EMAIL_LIVE];
