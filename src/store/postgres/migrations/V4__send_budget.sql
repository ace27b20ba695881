-- The per-customer send budget (test sends and resends a minute) as one token bucket every
-- node takes from: N nodes allow the budget once, not N times. Additive.
CREATE TABLE send_budget (
    customer_id text PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    tokens double precision NOT NULL,
    at_ms bigint NOT NULL
);
