//! This node in the cluster: its identity (an advisory lock held for the process's life), its
//! lease (a row in `nodes`, renewed by the heartbeat, judged by the database's `now()`), the
//! sweep that interrupts the claims of nodes whose lease lapsed, and the listener that hears
//! of other nodes' work.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use postgres::Client;
use postgres::fallible_iterator::FallibleIterator;

use super::{Connector, KEYS_CHANNEL, PgOptions, PgStore, WORK_CHANNEL};
use crate::domain::time::now_ms;
use crate::store::{Backlog, Queue, Result, StoreError};

/// The advisory-lock class of webhooks' locks (the second key is the node id's hash, or 0
/// for migrations).
pub const LOCK_CLASS: i32 = 0x5768_6b73; // "Whks"
/// A node's clock may be this far off the database's.
const MAX_SKEW_MS: i64 = 1000;
/// How often an idle node looks at the queue in case a notification was missed.
const POLL: Duration = Duration::from_secs(2);
/// How often the key cache is re-read in case a notification was missed.
const KEYS_RELOAD: Duration = Duration::from_secs(10);

pub const INTERRUPTED_DETAIL: &str = "the node that was sending this delivery stopped or lost contact with the database; it may or may not have arrived and is not sent again by itself";

pub enum ClockError {
    Skew(i64),
    Store(StoreError),
}

pub enum TakeError {
    Held(String),
    Store(StoreError),
}

impl From<postgres::Error> for TakeError {
    fn from(e: postgres::Error) -> Self {
        TakeError::Store(e.into())
    }
}

pub struct Node {
    pub id: String,
    incarnation: String,
    lease: Duration,
    /// A node sends only while its last renewal is younger than this (lease − request timeout).
    send_window: Duration,
    last_renewed: Mutex<Instant>,
    lost: AtomicBool,
    live: AtomicUsize,
    /// The connection that holds the identity lock and renews the lease.
    client: Mutex<Option<Client>>,
}

/// Refuses a node whose clock is more than a second off the database's.
pub fn check_clock(client: &mut Client) -> Result<(), ClockError> {
    let before = now_ms();
    let row = client
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            &[],
        )
        .map_err(|e| ClockError::Store(e.into()))?;
    let after = now_ms();
    let theirs: i64 = row.get(0);
    let ours = before + (after - before) / 2;
    let skew = ours - theirs;
    if skew.abs() > MAX_SKEW_MS + (after - before) / 2 {
        return Err(ClockError::Skew(skew));
    }
    Ok(())
}

impl Node {
    /// Takes this node's identity (refused while a live process holds it), starts its lease.
    pub fn take(mut client: Client, options: &PgOptions) -> Result<Node, TakeError> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            // A process that died a moment ago may not have let go of its lock yet.
            let got: bool = client
                .query_one(
                    "SELECT pg_try_advisory_lock($1, hashtext($2))",
                    &[&LOCK_CLASS, &options.node_id],
                )?
                .get(0);
            if got {
                break;
            }
            if Instant::now() >= deadline {
                return Err(TakeError::Held(options.node_id.clone()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let incarnation = crate::domain::IdGen::new().next(crate::domain::IdKind::Event);
        let lease_secs = options.lease.as_secs_f64();
        let started = Instant::now();
        client.execute(
            "INSERT INTO nodes (node_id, incarnation, lease_until)
             VALUES ($1, $2, now() + make_interval(secs => $3))
             ON CONFLICT (node_id) DO UPDATE
             SET incarnation = EXCLUDED.incarnation, lease_until = EXCLUDED.lease_until,
                 started_at = now()",
            &[&options.node_id, &incarnation, &lease_secs],
        )?;
        let node = Node {
            id: options.node_id.clone(),
            incarnation,
            lease: options.lease,
            send_window: options.lease.saturating_sub(options.request_timeout),
            last_renewed: Mutex::new(started),
            lost: AtomicBool::new(false),
            live: AtomicUsize::new(1),
            client: Mutex::new(None),
        };
        node.count_live(&mut client).map_err(TakeError::Store)?;
        *node.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(client);
        Ok(node)
    }

    pub fn live_nodes(&self) -> usize {
        self.live.load(Ordering::Acquire).max(1)
    }

    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// True while this node's lease certainly outlasts a POST started now.
    pub fn may_send(&self) -> bool {
        !self.lost()
            && self
                .last_renewed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .elapsed()
                < self.send_window
    }

    fn count_live(&self, client: &mut Client) -> Result<()> {
        let n: i64 = client
            .query_one("SELECT count(*) FROM nodes WHERE lease_until > now()", &[])?
            .get(0);
        self.live.store((n as usize).max(1), Ordering::Release);
        Ok(())
    }

    /// One heartbeat: renews the lease (only while it has not lapsed), interrupts the claims
    /// of nodes whose lease did, counts the live nodes.
    fn beat(&self, client: &mut Client) -> Result<bool> {
        let sent = Instant::now();
        let renewed = client.execute(
            "UPDATE nodes SET lease_until = now() + make_interval(secs => $3)
             WHERE node_id = $1 AND incarnation = $2 AND lease_until > now()",
            &[&self.id, &self.incarnation, &self.lease.as_secs_f64()],
        )?;
        if renewed == 0 {
            return Ok(false);
        }
        *self.last_renewed.lock().unwrap_or_else(|e| e.into_inner()) = sent;
        let now = now_ms();
        let mut tx = client.transaction()?;
        let rows = tx.query(
            "UPDATE deliveries d
             SET status = 'interrupted', error = 'interrupted', error_detail = $2,
                 finished_at = $3, claimed_by = NULL
             WHERE d.status = 'sending' AND d.claimed_by IS NOT NULL AND d.claimed_by <> $1
               AND NOT EXISTS (SELECT 1 FROM nodes n
                               WHERE n.node_id = d.claimed_by AND n.lease_until > now())
             RETURNING d.endpoint_id",
            &[&self.id, &INTERRUPTED_DETAIL, &now],
        )?;
        let endpoints: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        super::stats::add(
            &mut tx,
            &self.id,
            &super::stats::interrupted_delta(&endpoints, now),
        )?;
        tx.commit()?;
        let swept = endpoints.len();
        if swept > 0 {
            tracing::warn!(
                count = swept,
                "deliveries claimed by a node whose lease lapsed are now interrupted"
            );
        }
        self.count_live(client)?;
        Ok(true)
    }
}

/// Renews the lease every fifth of it until `stop`. A lease found lapsed (the node was paused
/// or cut off) marks the node lost: it sends nothing more and the server stops.
pub fn heartbeat(node: &Node, connect: &Connector, stop: &AtomicBool) {
    let every = (node.lease / 5).max(Duration::from_millis(100));
    let mut next = Instant::now() + every;
    while !stop.load(Ordering::Acquire) && !node.lost() {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(100)));
            continue;
        }
        next = now + every;
        let mut guard = node.client.lock().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            *guard = reconnect(node, connect);
        }
        let Some(client) = guard.as_mut() else {
            continue;
        };
        match node.beat(client) {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(
                    node = %node.id,
                    "this node's lease lapsed (it was paused or cut off from the database); its claims belong to the cluster now: stopping"
                );
                node.lost.store(true, Ordering::Release);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew this node's lease; retrying");
                *guard = None;
            }
        }
    }
}

/// A new connection for the heartbeat, holding the identity lock again; a node whose id was
/// taken meanwhile is lost.
fn reconnect(node: &Node, connect: &Connector) -> Option<Client> {
    let mut client = connect.connect().ok()?;
    let got: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, hashtext($2))",
            &[&LOCK_CLASS, &node.id],
        )
        .ok()?
        .get(0);
    if !got {
        tracing::error!(node = %node.id, "another process took this node's id: stopping");
        node.lost.store(true, Ordering::Release);
        return None;
    }
    Some(client)
}

/// At an orderly stop: gives the lease back (the row goes, the lock with the connection).
pub fn release(node: &Node, connect: &Connector) {
    let mut guard = node.client.lock().unwrap_or_else(|e| e.into_inner());
    let client = match guard.as_mut() {
        Some(c) if !c.is_closed() => Some(c),
        _ => {
            *guard = connect.connect().ok();
            guard.as_mut()
        }
    };
    if let Some(client) = client {
        let _ = client.execute(
            "DELETE FROM nodes WHERE node_id = $1 AND incarnation = $2",
            &[&node.id, &node.incarnation],
        );
    }
    *guard = None;
}

/// Hears other nodes' new work (LISTEN) and polls the queue as a backstop; re-reads the key
/// cache when keys change. Runs until the store is closed.
pub fn listen(store: &Weak<PgStore>) {
    let mut client: Option<Client> = None;
    let mut last_poll = Instant::now();
    let mut last_keys = Instant::now();
    loop {
        let Some(st) = store.upgrade() else { return };
        if st.stop.load(Ordering::Acquire) {
            return;
        }
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            client = st.connect.connect().ok().and_then(|mut c| {
                c.batch_execute(&format!("LISTEN {WORK_CHANNEL}; LISTEN {KEYS_CHANNEL}"))
                    .ok()?;
                Some(c)
            });
            if client.is_none() {
                drop(st);
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
            // Whatever was announced while not listening is found by a poll.
            last_poll = Instant::now() - POLL;
        }
        let Some(c) = client.as_mut() else { continue };
        let mut broken = false;
        let mut work: Vec<Backlog> = Vec::new();
        let mut everything = false;
        let mut keys_changed = false;
        let mut notes = c.notifications();
        let mut iter = notes.timeout_iter(Duration::from_millis(200));
        loop {
            match iter.next() {
                Ok(Some(n)) if n.channel() == KEYS_CHANNEL => keys_changed = true,
                Ok(Some(n)) => {
                    let Some((from, eps)) = n.payload().split_once('|') else {
                        continue;
                    };
                    if from == st.node.id {
                        continue;
                    }
                    if eps == "*" {
                        everything = true;
                        continue;
                    }
                    for ep in eps.split(',').filter(|s| !s.is_empty()) {
                        let (id, rate) = match ep.split_once(':') {
                            Some((id, r)) => (id, r.parse().ok()),
                            None => (ep, None),
                        };
                        work.push(Backlog {
                            endpoint_id: id.to_owned(),
                            rate_limit_per_sec: rate,
                        });
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        drop(iter);
        drop(notes);
        if broken {
            client = None;
        }
        if last_poll.elapsed() >= POLL {
            everything = true;
        }
        if everything {
            last_poll = Instant::now();
            match st.endpoints_with_pending() {
                Ok(all) => work.extend(all),
                Err(e) => tracing::debug!(error = %e, "cannot poll the queue"),
            }
        }
        if !work.is_empty()
            && let Some(hook) = st.backlog_hook.get()
        {
            hook(work);
        }
        if keys_changed || last_keys.elapsed() >= KEYS_RELOAD {
            last_keys = Instant::now();
            if let Err(e) = super::keys::load(&st) {
                tracing::warn!(error = %e, "cannot re-read API keys");
            }
        }
    }
}
