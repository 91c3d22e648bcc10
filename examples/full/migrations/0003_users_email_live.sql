-- Two live profiles cannot share an email address, whatever its case (409 on a conflict);
-- a deleted profile's address is free for someone else. Replaces the index of 0001.
DROP INDEX users_email;
CREATE UNIQUE INDEX users_email_live ON users (lower(email)) WHERE deleted_at IS NULL;
