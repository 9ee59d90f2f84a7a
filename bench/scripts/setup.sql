-- bench/scripts/setup.sql: objects of the benchmark database (run once).
CREATE EXTENSION mq;

-- The floor: the hand-written queue every mq workload is compared with.
CREATE TABLE floor_q (
    id         bigserial PRIMARY KEY,
    visible_at timestamptz NOT NULL DEFAULT now(),
    message    jsonb NOT NULL,
    attempt    int NOT NULL DEFAULT 0
);
CREATE INDEX floor_q_visible ON floor_q (visible_at, id);

-- W5: one row per received message, send-to-receive latency in ms.
CREATE UNLOGGED TABLE bench_latency (side text NOT NULL, ms float8 NOT NULL);
