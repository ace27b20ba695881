//! The hot path's group commit: one thread per node takes every claim, hand-back, result and
//! key touch queued since its last commit and writes them in one transaction of a few
//! statements. Results and hand-backs that cannot be written are retried (a lost result would
//! leave its delivery `sending`, and `interrupted` later).
//!
//! Every group's claims carry a tag of their own (`claim_tag`), and a claim is only ever undone
//! by its tag: a group whose commit could not be confirmed, or a claim no worker started, is
//! handed back to `pending` without ever touching a later claim of the same delivery, which
//! may be in flight. (Undoing by delivery id alone once put a delivery under way back to
//! `pending`, and it was sent twice.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use postgres::Client;

use super::Connector;
use super::group::{hand_back, unclaim, write_group};
use super::node::Node;
use crate::domain::time::now_ms;
use crate::domain::{Claim, DeliveryError, Outcome, SendJob};
use crate::store::{ClaimReply, CommitHook, Faults, Result, StoreError};

/// The most messages written together.
const MAX_GROUP: usize = 4096;
/// How long results are retried while the database is unreachable.
const RETRY_FOR: Duration = Duration::from_secs(120);
/// How soon hand-backs that could not be written are tried again, with nothing else to write.
const HAND_BACK_EVERY: Duration = Duration::from_millis(500);
/// How long a failed group's claims are looked for: a statement the database was already
/// running when the connection broke may still commit after the first hand-back.
const UNCERTAIN_FOR: Duration = Duration::from_secs(30);

enum Msg {
    Claim(Vec<Claim>, ClaimReply),
    /// Claims no worker started: back to `pending`.
    Unclaim(Vec<Claim>),
    Finish(Outcome),
    Touch(String, i64),
    Stop,
}

/// What the claims returned, by delivery id, until a worker takes it: the claim reads the
/// send job in the same statement, so a worker needs no round trip of its own.
pub type Prepared = Arc<Mutex<HashMap<String, SendJob>>>;

pub struct Batcher {
    tx: Sender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
    pub prepared: Prepared,
}

impl Batcher {
    pub fn start(
        connect: Connector,
        node: Arc<Node>,
        faults: Arc<Faults>,
        failed: Arc<AtomicBool>,
        hook: Arc<OnceLock<CommitHook>>,
    ) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        let prepared: Prepared = Arc::default();
        let jobs = prepared.clone();
        let thread = std::thread::Builder::new()
            .name("pg-batcher".into())
            .spawn(move || {
                let ctx = Ctx {
                    connect,
                    node,
                    faults,
                    failed,
                    prepared: jobs,
                    hook,
                };
                run(&ctx, &rx)
            })
            .expect("spawn the batcher");
        Self {
            tx,
            thread: Mutex::new(Some(thread)),
            prepared,
        }
    }

    pub fn claim(&self, ids: Vec<Claim>, then: ClaimReply) {
        if let Err(crossbeam_channel::SendError(Msg::Claim(_, then))) =
            self.tx.send(Msg::Claim(ids, then))
        {
            then(Err(StoreError::Unavailable(
                "the store is shutting down".into(),
            )));
        }
    }

    /// Hands claimed deliveries no worker started back to `pending`, by the tag of the claim
    /// that made them this node's; retried until written (the other nodes hear of them).
    pub fn unclaim(&self, ids: Vec<Claim>) {
        let _ = self.tx.send(Msg::Unclaim(ids));
    }

    pub fn finish(&self, outcome: Outcome) {
        let _ = self.tx.send(Msg::Finish(outcome));
    }

    /// A claimed delivery that could not be prepared: `failed`, error `internal`, not sent.
    pub fn fail_unsent(&self, endpoint_id: String, delivery_id: String, detail: String, now: i64) {
        self.finish(Outcome {
            delivery_id,
            endpoint_id,
            url: String::new(),
            response_status: None,
            response_body: None,
            error: Some(DeliveryError::Internal),
            error_detail: Some(detail),
            duration_ms: 0,
            started_at: now,
            finished_at: now,
            retry_after: None,
            request_headers: None,
            closes: false,
        });
    }

    pub fn touch(&self, key_id: String, at: i64) {
        let _ = self.tx.send(Msg::Touch(key_id, at));
    }

    /// Writes what is queued, then stops.
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

struct Ctx {
    connect: Connector,
    node: Arc<Node>,
    faults: Arc<Faults>,
    failed: Arc<AtomicBool>,
    prepared: Prepared,
    /// The node's own dispatcher hears of hand-backs through it.
    hook: Arc<OnceLock<CommitHook>>,
}

fn run(ctx: &Ctx, rx: &Receiver<Msg>) {
    let node = &ctx.node;
    let mut client: Option<Client> = None;
    let mut stopping = false;
    // Each group's tag: unique to this node's run (a restarted node interrupts its old claims).
    let mut next_tag: i64 = now_ms() << 12;
    // This node's claims that a worker may still start or give back, by delivery: their tags.
    let mut held: HashMap<String, i64> = HashMap::new();
    // Tags of groups answered as failed after an attempt that may have committed their claims
    // (a connection lost at COMMIT), and when they failed. No worker has those claims: each
    // write, and every `HAND_BACK_EVERY`, hands back the ones `sending`, unsent, for
    // `UNCERTAIN_FOR`.
    let mut uncertain: Vec<(i64, Instant)> = Vec::new();
    // Claims to hand back, with the tag of the claim each undoes, until written.
    let mut owed: Vec<(String, i64)> = Vec::new();
    while !stopping {
        let first = if owed.is_empty() && uncertain.is_empty() {
            match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            }
        } else {
            match rx.recv_timeout(HAND_BACK_EVERY) {
                Ok(m) => Some(m),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            }
        };
        let mut claims = Vec::new();
        let mut finishes = Vec::new();
        let mut touches = Vec::new();
        let mut take = |m: Msg, stopping: &mut bool| match m {
            Msg::Claim(ids, then) => claims.push((ids, then)),
            Msg::Unclaim(ids) => owed.extend(
                ids.into_iter()
                    .filter_map(|c| held.remove(&c.delivery_id).map(|tag| (c.delivery_id, tag))),
            ),
            Msg::Finish(o) => {
                held.remove(&o.delivery_id);
                finishes.push(o)
            }
            Msg::Touch(k, at) => touches.push((k, at)),
            Msg::Stop => *stopping = true,
        };
        if let Some(first) = first {
            take(first, &mut stopping);
        }
        for _ in 1..MAX_GROUP {
            match rx.try_recv() {
                Ok(m) => take(m, &mut stopping),
                Err(_) => break,
            }
        }
        let began = Instant::now();
        let (asked, finished) = (claims.len(), finishes.len());
        let failed = ctx.failed.load(Ordering::Acquire) || Faults::on(&ctx.faults.commit);
        // A lost node claims nothing; a failed store writes nothing new.
        let refuse = if node.lost() {
            Some("this node lost its lease")
        } else if failed {
            Some("the database could not be written")
        } else {
            None
        };
        let tag = next_tag;
        next_tag += 1;
        let mut claim_ids: Vec<Claim> = if refuse.is_some() {
            Vec::new()
        } else {
            claims
                .iter()
                .flat_map(|(ids, _)| ids.iter().cloned())
                .collect()
        };
        // Claims and results in one statement: one round trip, one commit.
        let deadline = Instant::now() + RETRY_FOR;
        let mut claimed = None;
        loop {
            let attempt = with_client(&mut client, &ctx.connect, |c| {
                if !uncertain.is_empty() {
                    let tags: Vec<i64> = uncertain.iter().map(|(t, _)| *t).collect();
                    hand_back(c, &node.id, &tags)?;
                    uncertain.retain(|(_, at)| at.elapsed() < UNCERTAIN_FOR);
                }
                if !owed.is_empty() && !failed {
                    let back = unclaim(c, &node.id, &owed)?;
                    owed.clear();
                    if !back.is_empty()
                        && let Some(hook) = ctx.hook.get()
                    {
                        hook(back);
                    }
                }
                if claim_ids.is_empty() && finishes.is_empty() && touches.is_empty() {
                    return Ok(Vec::new());
                }
                write_group(c, &node.id, tag, &claim_ids, &finishes, &touches)
            });
            match attempt {
                Ok(jobs) => {
                    let mut ready = ctx.prepared.lock().unwrap_or_else(|e| e.into_inner());
                    let got = jobs
                        .into_iter()
                        .map(|job| {
                            let id = job.delivery.id.clone();
                            held.insert(id.clone(), tag);
                            ready.insert(id.clone(), job);
                            id
                        })
                        .collect();
                    claimed = Some(Ok(got));
                    break;
                }
                Err(e) if finishes.is_empty() && touches.is_empty() => {
                    if !claim_ids.is_empty() {
                        uncertain.push((tag, Instant::now()));
                    }
                    claimed = Some(Err(e));
                    break;
                }
                Err(e) if Instant::now() < deadline => {
                    // Claims wait for no retry: they stay pending and are asked again. So the
                    // retry writes only the results: a claim written now would leave its
                    // delivery `sending` with no worker to take it (stranded, never sent).
                    if claimed.is_none() {
                        answer(std::mem::take(&mut claims), Err(e.clone()));
                        claimed = Some(Err(e.clone()));
                        if !claim_ids.is_empty() {
                            uncertain.push((tag, Instant::now()));
                            claim_ids.clear();
                        }
                    }
                    tracing::warn!(error = %e, "cannot write delivery results; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => {
                    tracing::error!(error = %e, count = finishes.len(), "delivery results could not be written; those deliveries will show as interrupted");
                    if claimed.is_none() && !claim_ids.is_empty() {
                        uncertain.push((tag, Instant::now()));
                    }
                    claimed = Some(Err(e));
                    break;
                }
            }
        }
        let result = match (refuse, claimed) {
            (Some(why), _) => Err(StoreError::Unavailable(why.into())),
            (None, Some(r)) => r,
            (None, None) => Ok(Default::default()),
        };
        answer(claims, result);
        tracing::trace!(
            claims = asked,
            results = finished,
            took_us = began.elapsed().as_micros() as u64,
            "batcher group"
        );
    }
    if !owed.is_empty() {
        tracing::error!(
            count = owed.len(),
            "claimed deliveries no worker started could not be handed back; they will show as interrupted"
        );
    }
}

fn with_client<T>(
    client: &mut Option<Client>,
    connect: &Connector,
    f: impl FnOnce(&mut Client) -> Result<T>,
) -> Result<T> {
    if client.as_ref().is_none_or(|c| c.is_closed()) {
        *client = Some(connect.connect()?);
    }
    let c = client.as_mut().expect("connected above");
    let r = f(c);
    if matches!(r, Err(StoreError::Unavailable(_))) {
        *client = None;
    }
    r
}

/// Tells each asker which of its deliveries the group claimed. A delivery claimed is told to
/// one asker, once: a dispatcher that asked for it twice (it read it from the database again
/// while its first claim was being written) must not hand one claim to two workers, which
/// would send it twice.
fn answer(
    claims: Vec<(Vec<Claim>, ClaimReply)>,
    mut result: Result<std::collections::HashSet<String>>,
) {
    for (ids, then) in claims {
        match &mut result {
            Ok(got) => then(Ok(ids
                .into_iter()
                .filter(|c| got.remove(&c.delivery_id))
                .collect())),
            Err(e) => then(Err(e.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn a_delivery_asked_for_twice_is_answered_as_claimed_once() {
        let told = Arc::new(Mutex::new(Vec::new()));
        let ask = |ids: &[&str]| -> (Vec<Claim>, ClaimReply) {
            let told = told.clone();
            (
                ids.iter().map(|d| Claim::new("ep", *d)).collect(),
                Box::new(move |r: Result<Vec<Claim>>| {
                    told.lock()
                        .unwrap()
                        .extend(r.unwrap().into_iter().map(|c| c.delivery_id));
                }),
            )
        };
        let got = ["d1", "d2"].iter().map(|d| d.to_string()).collect();
        answer(vec![ask(&["d1", "d2"]), ask(&["d1", "d3"])], Ok(got));
        let mut told = told.lock().unwrap().clone();
        told.sort();
        assert_eq!(told, ["d1", "d2"]);
    }
}
