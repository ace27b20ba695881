-- The headers each delivery's POST was sent with (JSON, custom header values masked), for
-- the delivery page. Additive.
ALTER TABLE deliveries ADD COLUMN request_headers text;
