//! The batcher's statements: one group's claims, results and key touches in one statement
//! (one round trip, one commit), and claims handed back — a failed group's by its tag, a
//! claim no worker started by the tag of the claim that made it.

use postgres::Client;
use postgres::types::Type;

use super::notify_work;
use super::rows::{DELIVERY_COLS, EVENT_COLS, decode, delivery, event_at, prefixed};
use crate::domain::stats::StatsDelta;
use crate::domain::{Claim, Outcome, SendJob};
use crate::store::{Ready, Result};

/// Returns to `pending` what the groups tagged `tags` claimed and is still `sending` as this
/// node's (see `uncertain`); the dispatcher's backlog poll finds them again.
pub(super) fn hand_back(c: &mut Client, node_id: &str, tags: &[i64]) -> Result<()> {
    let n = c.execute(
        "UPDATE deliveries SET status = 'pending', claimed_by = NULL, claim_tag = NULL
         WHERE claim_tag = ANY($1) AND status = 'sending' AND claimed_by = $2",
        &[&tags, &node_id],
    )?;
    if n > 0 {
        tracing::warn!(
            count = n,
            "claims whose commit could not be confirmed were handed back to pending, unsent"
        );
    }
    Ok(())
}

/// Hands back claims no worker started, each by the tag of its own claim, and tells every
/// node (the other nodes by NOTIFY, in the same transaction).
pub(super) fn unclaim(c: &mut Client, node_id: &str, owed: &[(String, i64)]) -> Result<Vec<Ready>> {
    let ids: Vec<&str> = owed.iter().map(|(d, _)| d.as_str()).collect();
    let tags: Vec<i64> = owed.iter().map(|(_, t)| *t).collect();
    let mut tx = c.transaction()?;
    let rows = tx.query(
        "UPDATE deliveries d SET status = 'pending', claimed_by = NULL, claim_tag = NULL
         FROM unnest($1::text[], $2::bigint[]) AS o(id, tag), endpoints e
         WHERE d.id = o.id AND d.claim_tag = o.tag AND d.status = 'sending'
           AND d.claimed_by = $3 AND e.id = d.endpoint_id
         RETURNING d.endpoint_id, d.id, e.record",
        &[&ids, &tags, &node_id],
    )?;
    let mut back = Vec::with_capacity(rows.len());
    for row in &rows {
        let e: crate::domain::Endpoint = decode(row.get::<_, &str>(2))?;
        back.push(Ready {
            endpoint_id: row.get(0),
            delivery_id: row.get(1),
            rate_limit_per_sec: e.rate_limit_per_sec,
        });
    }
    if !back.is_empty() {
        notify_work(&mut tx, node_id, &back)?;
    }
    tx.commit()?;
    Ok(back)
}

/// Claims every asked delivery still pending (skipping rows another node is claiming),
/// records results and key touches: one statement, so one round trip and one commit.
pub(super) fn write_group(
    c: &mut Client,
    node_id: &str,
    tag: i64,
    claim_ids: &[Claim],
    finishes: &[Outcome],
    touches: &[(String, i64)],
) -> Result<Vec<SendJob>> {
    let ids: Vec<&str> = finishes.iter().map(|o| o.delivery_id.as_str()).collect();
    let status: Vec<&str> = finishes.iter().map(|o| o.status().as_str()).collect();
    let urls: Vec<Option<&str>> = finishes
        .iter()
        .map(|o| (!o.url.is_empty()).then_some(o.url.as_str()))
        .collect();
    let codes: Vec<Option<i32>> = finishes
        .iter()
        .map(|o| o.response_status.map(i32::from))
        .collect();
    let bodies: Vec<Option<&str>> = finishes
        .iter()
        .map(|o| o.response_body.as_deref())
        .collect();
    let errors: Vec<Option<&str>> = finishes
        .iter()
        .map(|o| o.error.map(|e| e.as_str()))
        .collect();
    let details: Vec<Option<&str>> = finishes.iter().map(|o| o.error_detail.as_deref()).collect();
    let took: Vec<i64> = finishes.iter().map(|o| o.duration_ms as i64).collect();
    let started: Vec<i64> = finishes.iter().map(|o| o.started_at).collect();
    let ended: Vec<i64> = finishes.iter().map(|o| o.finished_at).collect();
    let sent_headers: Vec<Option<&str>> = finishes
        .iter()
        .map(|o| o.request_headers.as_deref())
        .collect();
    let claim_eps: Vec<&str> = claim_ids.iter().map(|c| c.endpoint_id.as_str()).collect();
    let claim_ids: Vec<&str> = claim_ids.iter().map(|c| c.delivery_id.as_str()).collect();
    let keys: Vec<&str> = touches.iter().map(|(k, _)| k.as_str()).collect();
    let at: Vec<i64> = touches.iter().map(|(_, t)| *t).collect();
    let mut delta = StatsDelta::default();
    for o in finishes.iter().filter(|o| !o.endpoint_id.is_empty()) {
        delta.add(
            &o.endpoint_id,
            o.finished_at,
            o.status(),
            Some(o.duration_ms),
        );
    }
    let stats = super::stats::Columns::of(&delta);
    let rows = c.query_typed(
        &format!(
            "WITH results AS (
             UPDATE deliveries d SET status = o.status, url = coalesce(o.url, d.url),
                 response_status = o.code, response_body = o.body, error = o.error,
                 error_detail = o.detail, duration_ms = o.took, started_at = o.started,
                 finished_at = o.ended, claimed_by = NULL, claim_tag = NULL,
                 request_headers = o.sent
             FROM unnest($3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[],
                         $9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $23::text[])
                  AS o(id, status, url, code, body, error, detail, took, started, ended, sent)
             WHERE d.id = o.id AND d.status = 'sending'
             RETURNING 1),
         touched AS (
             UPDATE api_keys k SET last_used_at = t.at
             FROM unnest($13::text[], $14::bigint[]) AS t(id, at) WHERE k.id = t.id
             RETURNING 1),
         claimed AS (
             UPDATE deliveries d SET status = 'sending', claimed_by = $2, claim_tag = $22
             FROM (SELECT p.id FROM unnest($15::text[], $1::text[]) AS u(ep, id)
                   JOIN deliveries p ON p.endpoint_id = u.ep AND p.id = u.id
                   WHERE p.status = 'pending'
                   ORDER BY p.id FOR UPDATE OF p SKIP LOCKED) c
             WHERE d.id = c.id RETURNING d.*),
         counted AS ({upsert} RETURNING 1)
         SELECT {cols}, e.record, {ev}
         FROM claimed c
         JOIN endpoints e ON e.id = c.endpoint_id
         JOIN events ev ON ev.id = c.event_id",
            cols = prefixed("c", DELIVERY_COLS),
            ev = prefixed("ev", EVENT_COLS),
            upsert = super::stats::upsert_sql(2, 16),
        ),
        &[
            (&claim_ids, Type::TEXT_ARRAY),
            (&node_id, Type::TEXT),
            (&ids, Type::TEXT_ARRAY),
            (&status, Type::TEXT_ARRAY),
            (&urls, Type::TEXT_ARRAY),
            (&codes, Type::INT4_ARRAY),
            (&bodies, Type::TEXT_ARRAY),
            (&errors, Type::TEXT_ARRAY),
            (&details, Type::TEXT_ARRAY),
            (&took, Type::INT8_ARRAY),
            (&started, Type::INT8_ARRAY),
            (&ended, Type::INT8_ARRAY),
            (&keys, Type::TEXT_ARRAY),
            (&at, Type::INT8_ARRAY),
            (&claim_eps, Type::TEXT_ARRAY),
            (&stats.scopes, Type::TEXT_ARRAY),
            (&stats.minutes, Type::INT8_ARRAY),
            (&stats.succeeded, Type::INT8_ARRAY),
            (&stats.failed, Type::INT8_ARRAY),
            (&stats.interrupted, Type::INT8_ARRAY),
            (&stats.durations, Type::TEXT_ARRAY),
            (&tag, Type::INT8),
            (&sent_headers, Type::TEXT_ARRAY),
        ],
    )?;
    rows.iter()
        .map(|row| {
            Ok(SendJob {
                delivery: delivery(row)?,
                endpoint: decode(row.get::<_, &str>(17))?,
                event: event_at(row, 18),
            })
        })
        .collect()
}
