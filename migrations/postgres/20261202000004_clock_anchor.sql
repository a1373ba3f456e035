-- A simulated clock is one per deployment: the first process that starts with one stores where
-- it started (simulated instant, wall-clock instant in milliseconds, speed); every process
-- reads it back, so serve, worker and import agree on "now".
CREATE TABLE clock_anchor (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    sim_start   BIGINT  NOT NULL,
    wall_start_ms BIGINT NOT NULL,
    speed       DOUBLE PRECISION NOT NULL
);
