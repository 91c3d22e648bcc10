//! The migrations, embedded in the binary: every `migrations/*.sql` file, in the order of
//! the version its name starts with. `build.rs` finds them; nothing here lists them.

/// A migration: version, description, SQL.
type Step = (i64, &'static str, &'static str);

/// Every migration, in the order they apply.
pub const MIGRATIONS: &[Step] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
