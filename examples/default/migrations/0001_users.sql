-- Profiles of the service's users, keyed by the token's subject.
-- Portable SQL: the same file runs on SQLite and PostgreSQL. Times are Unix seconds.
CREATE TABLE users (
    id           TEXT PRIMARY KEY,
    email        TEXT,
    display_name TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    deleted_at   BIGINT
);

-- Two live profiles cannot share an email address (409 on a conflict).
CREATE UNIQUE INDEX users_email ON users (email);
