-- Two live profiles cannot share an email address, whatever its case (409 on a conflict);
-- a deleted profile's address is free for someone else. Replaces the index of 0001.
-- Upgrading a service with data: two live rows whose addresses differ only in case make
-- this migration fail; find them first with
--   SELECT lower(email), count(*) FROM users WHERE deleted_at IS NULL GROUP BY 1 HAVING count(*) > 1;
-- SQLite's lower() folds ASCII letters only; PostgreSQL's folds every letter.
DROP INDEX users_email;
CREATE UNIQUE INDEX users_email_live ON users (lower(email)) WHERE deleted_at IS NULL;
