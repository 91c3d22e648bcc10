-- One row per job and tick: the first replica to insert it runs the job for that tick.
CREATE TABLE job_runs (
    job         TEXT NOT NULL,
    tick        BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    PRIMARY KEY (job, tick)
);
