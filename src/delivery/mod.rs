//! Delivery: the dispatcher thread that hands claimed deliveries to idle workers fairly, and
//! the pool of plain worker threads (started as demand grows, up to `--workers`, with small
//! stacks) that each sign and POST one delivery at a time.

pub mod dispatcher;
pub mod limit;
mod log;
pub mod resolver;
pub mod sender;
pub mod special_ranges;
mod worker;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender as ChannelSender, bounded, unbounded};

use crate::domain::Claim;
use crate::domain::time::now_ms;
use crate::metrics::Metrics;
use crate::store::SharedStore;
use crate::store::{Backlog, Ready};
use dispatcher::Lanes;
pub use sender::{SendResult, SenderConfig, WebhookSender};
pub use worker::deliver_one;

/// Most deliveries claimed and not yet started, whatever the pool's size: with the POSTs in
/// flight, what a crash can leave `interrupted`.
pub const CLAIM_AHEAD: usize = 64;
/// A worker's stack: a blocking POST needs little, and hundreds of workers stay cheap.
const WORKER_STACK: usize = 256 * 1024;
/// Workers started with the pool; more start as deliveries wait for them.
const INITIAL_WORKERS: usize = 8;

/// What a worker is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// POST a claimed delivery (unless its endpoint is paused: then give it back).
    Send,
    /// POST a paused endpoint's one delivery: its 2xx reopens the endpoint.
    Probe,
    /// Check a paused endpoint's receiver without sending a webhook (no delivery).
    Check,
}

/// A claimed delivery (or a check) on its way to a worker.
#[derive(Debug, Clone)]
pub struct Job {
    pub endpoint_id: String,
    /// Empty for a check.
    pub delivery_id: String,
    /// When the dispatcher handed it out (it identifies the send in its lane).
    pub handed_at: Instant,
    pub work: Work,
    /// The endpoint's recent send rate (per second) when it was handed out.
    pub sent_per_sec: f64,
}

enum Control {
    Ready(Vec<Ready>),
    /// Another node made work for these endpoints.
    Backlog(Vec<Backlog>),
    Done {
        endpoint: String,
        handed_at: Instant,
        /// The POST alone (not the wait for a worker), and what it came to.
        took: Duration,
        signal: limit::Signal,
        /// The receiver closed the connection after its answer.
        closes: bool,
    },
    Claimed {
        asked: Vec<Claim>,
        result: Result<Vec<Claim>, String>,
    },
    /// The endpoint is paused (stored) until this time (ms since the epoch).
    Held {
        endpoint: String,
        until_ms: i64,
    },
    /// A check counted the deliveries waiting behind the endpoint's pause.
    Counted {
        endpoint: String,
        waiting: usize,
    },
    /// A paused endpoint's receiver takes connections (or its wait is over).
    CheckPassed {
        endpoint: String,
    },
    /// Claimed deliveries a worker did not start and could not give back: owed.
    GiveBack(Vec<Claim>),
    /// The endpoint is no longer paused (or is gone).
    Resumed {
        endpoint: String,
        /// After a 429: the rate to reopen at for a while.
        cool_to: Option<u32>,
    },
    Stop,
}

/// The running dispatcher and workers.
pub struct Pool {
    control: ChannelSender<Control>,
    stopping: Arc<AtomicBool>,
    dispatcher: Option<JoinHandle<Vec<Claim>>>,
    exited: Receiver<()>,
    /// Worker threads started so far.
    started: Arc<AtomicUsize>,
    /// To take back, at shutdown, what no worker started.
    jobs: Receiver<Job>,
    store: SharedStore,
}

impl Pool {
    /// Starts the dispatcher and the first workers, queues what the store has pending, and
    /// hooks itself to the store's commits. Up to `workers` POSTs are in flight at once.
    pub fn start(
        store: SharedStore,
        sender: WebhookSender,
        workers: usize,
        max_hold_secs: u64,
        metrics: Arc<Metrics>,
    ) -> Self {
        let workers = workers.max(1);
        let (control, control_rx) = unbounded();
        let (jobs, jobs_rx) = bounded::<Job>(workers);
        let (exited_tx, exited) = unbounded();
        let stopping = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicUsize::new(0));

        let hook = control.clone();
        store.on_commit(Box::new(move |ready| {
            let _ = hook.send(Control::Ready(ready));
        }));
        let hook = control.clone();
        store.on_backlog(Box::new(move |endpoints| {
            let _ = hook.send(Control::Backlog(endpoints));
        }));

        let spawn_worker = {
            let ctx = worker::WorkerCtx {
                store: store.clone(),
                sender: Arc::new(sender),
                metrics: metrics.clone(),
                jobs: jobs_rx.clone(),
                done: control.clone(),
                stopping: stopping.clone(),
                log: Arc::default(),
                max_hold_secs,
            };
            let started = started.clone();
            move || {
                let ctx = ctx.clone();
                let exited_tx = exited_tx.clone();
                let i = started.fetch_add(1, Ordering::AcqRel);
                let spawned = std::thread::Builder::new()
                    .name(format!("delivery-{i}"))
                    .stack_size(WORKER_STACK)
                    .spawn(move || {
                        worker::run(ctx);
                        let _ = exited_tx.send(());
                    });
                if let Err(e) = spawned {
                    started.fetch_sub(1, Ordering::AcqRel);
                    tracing::error!(error = %e, "cannot start a delivery worker");
                }
            }
        };
        for _ in 0..INITIAL_WORKERS.min(workers) {
            spawn_worker();
        }

        let lanes = Lanes::new(workers, CLAIM_AHEAD);
        let dispatcher = {
            let (store, answers, started) = (store.clone(), control.clone(), started.clone());
            std::thread::Builder::new()
                .name("dispatcher".into())
                .spawn(move || {
                    let pool = Workers {
                        jobs,
                        started,
                        spawn: Box::new(spawn_worker),
                    };
                    dispatch(store, control_rx, answers, pool, lanes, metrics)
                })
                .expect("spawn the dispatcher")
        };
        Self {
            control,
            stopping,
            dispatcher: Some(dispatcher),
            exited,
            started,
            jobs: jobs_rx,
            store,
        }
    }

    /// Stops handing out work; lets POSTs in flight finish for up to `grace`. Deliveries that
    /// were claimed but not started go back to `pending`.
    pub fn shutdown(&mut self, grace: Duration) {
        self.stopping.store(true, Ordering::Release);
        let _ = self.control.send(Control::Stop);
        let claimed_ahead = self
            .dispatcher
            .take()
            .and_then(|d| d.join().ok())
            .unwrap_or_default();
        let deadline = Instant::now() + grace;
        for _ in 0..self.started.load(Ordering::Acquire) {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.exited.recv_timeout(left).is_err() {
                tracing::warn!(
                    "delivery workers still busy after the grace period; those deliveries will show as interrupted"
                );
                break;
            }
        }
        // Claimed ahead, or queued for workers stuck in a POST: none of it was started.
        let mut left = claimed_ahead;
        left.extend(
            self.jobs
                .try_iter()
                .filter(|j| j.work != Work::Check)
                .map(|j| Claim::new(j.endpoint_id, j.delivery_id)),
        );
        if !left.is_empty()
            && let Err(e) = self.store.unclaim(left)
        {
            tracing::error!(error = %e, "cannot return unstarted deliveries to pending");
        }
    }
}

/// What is handed back at shutdown: the claims no worker took, and what was owed.
fn owing(mut claimed: Vec<Claim>, owed: Vec<Claim>) -> Vec<Claim> {
    claimed.extend(owed);
    claimed
}

/// Returns claimed, unstarted deliveries to `pending`; what the store cannot take now is owed
/// and tried again each second (`owed`), so none is left `sending` while the node lives.
fn give_back(store: &SharedStore, claims: Vec<Claim>, owed: &mut Vec<Claim>) {
    if claims.is_empty() {
        return;
    }
    if let Err(e) = store.unclaim(claims.clone()) {
        tracing::warn!(error = %e, count = claims.len(), "cannot return deliveries to pending yet; trying again");
        owed.extend(claims);
    }
}

/// The worker threads as the dispatcher sees them: their queue, and how to start more.
struct Workers {
    jobs: ChannelSender<Job>,
    started: Arc<AtomicUsize>,
    spawn: Box<dyn Fn() + Send>,
}

impl Workers {
    /// Starts workers until there are `needed` (the deliveries handed out and not done).
    fn ensure(&self, needed: usize) {
        while self.started.load(Ordering::Acquire) < needed {
            let before = self.started.load(Ordering::Acquire);
            (self.spawn)();
            if self.started.load(Ordering::Acquire) == before {
                return; // the system refused a thread: work with what there is
            }
        }
    }
}

/// The dispatcher thread: claims just ahead in groups (without waiting for the commit),
/// hands claimed deliveries to idle workers, starting workers as needed, and at the end
/// returns what it had claimed but not handed out.
fn dispatch(
    store: SharedStore,
    control: Receiver<Control>,
    answers: ChannelSender<Control>,
    workers: Workers,
    mut lanes: Lanes,
    metrics: Arc<Metrics>,
) -> Vec<Claim> {
    match store.endpoints_with_pending() {
        Ok(eps) => {
            for b in eps {
                lanes.on_backlog(&b.endpoint_id, b.rate_limit_per_sec);
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot read pending deliveries"),
    }
    let jobs = &workers.jobs;
    let capacity = jobs.capacity().unwrap_or(1);
    let idle_tick = Duration::from_secs(1);
    let mut last_prune = Instant::now();
    let mut claims_out = 0usize;
    // Claimed, unstarted deliveries the store could not take back yet.
    let mut owed: Vec<Claim> = Vec::new();
    let mut stopping = false;
    loop {
        let now = Instant::now();
        if now.duration_since(last_prune) >= idle_tick {
            lanes.prune(now);
            metrics.endpoints_paused.set(lanes.held() as i64);
            metrics.deliveries_held.set(lanes.held_waiting() as i64);
            last_prune = now;
            if !owed.is_empty() {
                let again = std::mem::take(&mut owed);
                give_back(&store, again, &mut owed);
            }
        }
        let mut pool_full = false;
        lanes.set_nodes(store.live_nodes());
        if !stopping {
            for (ep, after, want) in lanes.wanting_refill() {
                match store.pending_of(&ep, &after, want) {
                    Ok(ids) => lanes.on_refill(&ep, ids, want),
                    Err(e) => tracing::error!(error = %e, "cannot read pending deliveries"),
                }
            }
            // A store that failed refuses every claim at once: do not spin on it.
            let asked = if store.is_failed() {
                Vec::new()
            } else {
                lanes.to_claim(jobs.len())
            };
            if !asked.is_empty() {
                claims_out += 1;
                let answers = answers.clone();
                let echo = asked.clone();
                store.claim_then(
                    asked,
                    Box::new(move |result| {
                        let _ = answers.send(Control::Claimed {
                            asked: echo,
                            result: result.map_err(|e| e.to_string()),
                        });
                    }),
                );
            }
            let idle = capacity.saturating_sub(lanes.in_flight());
            let handed = lanes.hand_out(idle, jobs.is_empty(), now);
            workers.ensure(lanes.in_flight());
            for Claim {
                endpoint_id,
                delivery_id,
            } in handed
            {
                let work = if lanes.probing(&endpoint_id) {
                    Work::Probe
                } else {
                    Work::Send
                };
                let job = Job {
                    sent_per_sec: lanes.sent_per_sec(&endpoint_id, now),
                    endpoint_id,
                    delivery_id,
                    handed_at: now,
                    work,
                };
                if jobs.send(job).is_err() {
                    return owing(lanes.take_claimed(), owed);
                }
            }
            for endpoint_id in lanes.due_checks(now) {
                let job = Job {
                    endpoint_id: endpoint_id.clone(),
                    delivery_id: String::new(),
                    handed_at: now,
                    work: Work::Check,
                    sent_per_sec: 0.0,
                };
                // Never wait for room: a check can come a moment later.
                if jobs.try_send(job).is_err() {
                    let later = now + Duration::from_millis(100);
                    let _ = lanes.hold(&endpoint_id, later);
                }
            }
            pool_full = lanes.in_flight() >= capacity;
        } else if claims_out == 0 {
            return owing(lanes.take_claimed(), owed);
        }
        // A rate-limited lane's wake-up only matters when a worker could take its delivery;
        // while stopping, only the claims still being committed are waited for.
        let wait = match lanes.next_wakeup(Instant::now()) {
            Some(t) if !pool_full && !stopping => {
                t.saturating_duration_since(Instant::now()).min(idle_tick)
            }
            // The writer answers every claim; wait for those still being committed, so that
            // none is left claimed and unsent (it would show `interrupted` after a restart).
            _ if stopping => Duration::from_secs(30),
            // A quick endpoint turns slow by the clock alone: look again within `QUICK`.
            _ => idle_tick.min(dispatcher::QUICK / 2),
        };
        let first = match control.recv_timeout(wait) {
            Ok(msg) => Some(msg),
            Err(RecvTimeoutError::Timeout) if stopping => return owing(lanes.take_claimed(), owed),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return owing(lanes.take_claimed(), owed),
        };
        for msg in first.into_iter().chain(control.try_iter()) {
            match msg {
                Control::Ready(items) => {
                    for r in items {
                        if r.is_resumed() {
                            lanes.recheck(&r.endpoint_id, Instant::now());
                        } else {
                            lanes.on_ready(&r.endpoint_id, r.delivery_id, r.rate_limit_per_sec);
                        }
                    }
                }
                Control::Backlog(endpoints) => {
                    for b in endpoints {
                        lanes.on_backlog(&b.endpoint_id, b.rate_limit_per_sec);
                    }
                }
                Control::Done {
                    endpoint,
                    handed_at,
                    took,
                    signal,
                    closes,
                } => {
                    if signal == limit::Signal::Answered {
                        lanes.note_connection(&endpoint, closes);
                    }
                    let decrease =
                        lanes.on_done(&endpoint, handed_at, took, signal, Instant::now());
                    metrics.limit_sample(lanes.limit_of(&endpoint), decrease);
                }
                Control::Claimed { asked, result } => {
                    claims_out = claims_out.saturating_sub(1);
                    match result {
                        Ok(claimed) => {
                            give_back(&store, lanes.on_claimed(&asked, claimed), &mut owed)
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "cannot claim deliveries");
                            lanes.on_claim_failed(&asked);
                        }
                    }
                }
                Control::Held { endpoint, until_ms } => {
                    let wait = (until_ms - now_ms()).max(0) as u64;
                    let until = Instant::now() + Duration::from_millis(wait);
                    give_back(&store, lanes.hold(&endpoint, until), &mut owed);
                }
                Control::Counted { endpoint, waiting } => {
                    lanes.set_held_waiting(&endpoint, waiting)
                }
                Control::CheckPassed { endpoint } => lanes.on_check_passed(&endpoint),
                Control::Resumed { endpoint, cool_to } => {
                    lanes.resume(&endpoint, cool_to, Instant::now())
                }
                // Hand out nothing more; wait (a moment) for claims still being committed.
                Control::GiveBack(claims) => owed.extend(claims),
                Control::Stop => stopping = true,
            }
        }
    }
}
