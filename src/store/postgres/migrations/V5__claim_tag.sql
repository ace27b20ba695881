-- Each group of claims a node commits carries a tag of its own. A claim is undone (handed
-- back to pending) by its tag alone: a group whose commit could not be confirmed, or a claim
-- no worker started, never undoes a later claim of the same delivery. Additive.
ALTER TABLE deliveries ADD COLUMN claim_tag bigint;
