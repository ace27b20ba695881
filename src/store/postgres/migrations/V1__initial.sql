-- The first schema. Ids are the application's (prefixed ULIDs, ordered by time); times are
-- Unix milliseconds from the node that wrote them, except the leases, judged by now().
CREATE TABLE meta (
    key text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE customers (
    id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    created_at bigint NOT NULL
);

CREATE TABLE api_keys (
    id text PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    hash text NOT NULL UNIQUE,
    prefix text NOT NULL,
    created_at bigint NOT NULL,
    last_used_at bigint
);
CREATE INDEX api_keys_customer ON api_keys (customer_id, id);

CREATE TABLE event_types (
    name text PRIMARY KEY,
    -- Place in EnableNow's catalog; NULL for the operator's own types.
    builtin_rank integer,
    description text NOT NULL,
    example text NOT NULL
);

CREATE TABLE endpoints (
    id text PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    enabled boolean NOT NULL,
    -- The endpoint as JSON (secrets included: the database is as private as the data file).
    record text NOT NULL
);
CREATE INDEX endpoints_customer ON endpoints (customer_id, id);

CREATE TABLE events (
    id text PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    event text NOT NULL,
    test boolean NOT NULL,
    created_at bigint NOT NULL,
    body text NOT NULL,
    data_start integer NOT NULL
);
CREATE INDEX events_customer ON events (customer_id, id);

CREATE TABLE deliveries (
    id text PRIMARY KEY,
    event_id text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint_id text NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    customer_id text NOT NULL,
    event text NOT NULL,
    url text NOT NULL,
    status text NOT NULL,
    response_status integer,
    response_body text,
    error text,
    error_detail text,
    duration_ms bigint,
    created_at bigint NOT NULL,
    started_at bigint,
    finished_at bigint,
    resend_of text,
    test boolean NOT NULL,
    -- The node that claimed it (status 'sending').
    claimed_by text
);
CREATE INDEX deliveries_customer ON deliveries (customer_id, id);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, id);
CREATE INDEX deliveries_event ON deliveries (event_id, id);
-- The queue: pending deliveries by endpoint, and claims by node.
CREATE INDEX deliveries_pending ON deliveries (endpoint_id, id) WHERE status = 'pending';
CREATE INDEX deliveries_claims ON deliveries (claimed_by) WHERE status = 'sending';

CREATE TABLE idempotency (
    customer_id text NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    key text NOT NULL,
    created_at bigint NOT NULL,
    record text NOT NULL,
    PRIMARY KEY (customer_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE sessions (
    token_hash text PRIMARY KEY,
    customer_id text REFERENCES customers (id) ON DELETE CASCADE,
    expires_at bigint NOT NULL,
    record text NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Portal sign-in failures per client and minute, shared by every node.
CREATE TABLE sign_in_failures (
    client text NOT NULL,
    minute bigint NOT NULL,
    failures integer NOT NULL,
    PRIMARY KEY (client, minute)
);

-- One row per node: its lease, renewed by heartbeats and judged by the database's now().
CREATE TABLE nodes (
    node_id text PRIMARY KEY,
    incarnation text NOT NULL,
    lease_until timestamptz NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
