-- One-time portal sign-in links the operator makes (hash of the token only), additive.
CREATE TABLE portal_links (
    token_hash text PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    expires_at bigint NOT NULL
);
