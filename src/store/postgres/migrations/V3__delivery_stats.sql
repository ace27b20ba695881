-- Per-minute delivery statistics (outcomes and a duration histogram) by scope: `all` or
-- `ep:<endpoint id>`. Each node adds to its own rows (no lock shared across nodes); readers
-- sum over nodes. Additive.
CREATE TABLE delivery_stats (
    scope text NOT NULL,
    minute bigint NOT NULL,
    node_id text NOT NULL,
    succeeded bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    interrupted bigint NOT NULL DEFAULT 0,
    durations bigint[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (scope, minute, node_id)
);
