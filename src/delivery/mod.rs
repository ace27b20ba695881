//! Delivery: the dispatcher thread that feeds a bounded channel fairly, and the pool of
//! plain worker threads that each claim, sign and POST one delivery at a time.

pub mod dispatcher;
pub mod resolver;
pub mod sender;
pub mod special_ranges;
mod worker;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender as ChannelSender, bounded, unbounded};

use crate::metrics::Metrics;
use crate::store::Ready;
use crate::store::SharedStore;
use dispatcher::Lanes;
pub use sender::{SendResult, SenderConfig, WebhookSender};
pub use worker::deliver_one;

/// A claimed delivery on its way to a worker.
#[derive(Debug, Clone)]
pub struct Job {
    pub endpoint_id: String,
    pub delivery_id: String,
}

enum Control {
    Ready(Vec<Ready>),
    Done(String),
    Claimed {
        asked: Vec<(String, String)>,
        result: Result<Vec<(String, String)>, String>,
    },
    Stop,
}

/// The running dispatcher and workers.
pub struct Pool {
    control: ChannelSender<Control>,
    stopping: Arc<AtomicBool>,
    dispatcher: Option<JoinHandle<Vec<(String, String)>>>,
    exited: Receiver<()>,
    workers: usize,
    /// To take back, at shutdown, what no worker started.
    jobs: Receiver<Job>,
    store: SharedStore,
}

impl Pool {
    /// Starts `workers` threads and the dispatcher, queues what the store has pending, and
    /// hooks itself to the store's commits.
    pub fn start(
        store: SharedStore,
        sender: WebhookSender,
        workers: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        let workers = workers.max(1);
        let (control, control_rx) = unbounded();
        let (jobs, jobs_rx) = bounded::<Job>(workers);
        let (exited_tx, exited) = unbounded();
        let stopping = Arc::new(AtomicBool::new(false));
        let sender = Arc::new(sender);

        let hook = control.clone();
        store.on_commit(Box::new(move |ready| {
            let _ = hook.send(Control::Ready(ready));
        }));

        for i in 0..workers {
            let ctx = worker::WorkerCtx {
                store: store.clone(),
                sender: sender.clone(),
                metrics: metrics.clone(),
                jobs: jobs_rx.clone(),
                done: control.clone(),
                stopping: stopping.clone(),
            };
            let exited_tx = exited_tx.clone();
            std::thread::Builder::new()
                .name(format!("delivery-{i}"))
                .spawn(move || {
                    worker::run(ctx);
                    let _ = exited_tx.send(());
                })
                .expect("spawn a delivery worker");
        }

        let share = (workers / 4).max(1);
        // Claims may run two pool-fulls ahead: larger groups per commit, and a crash can still
        // leave at most 5 × workers deliveries interrupted (BENCHMARKS.md).
        let lanes = Lanes::new(share, 2 * workers);
        let dispatcher = {
            let (store, answers) = (store.clone(), control.clone());
            std::thread::Builder::new()
                .name("dispatcher".into())
                .spawn(move || dispatch(store, control_rx, answers, jobs, lanes))
                .expect("spawn the dispatcher")
        };
        Self {
            control,
            stopping,
            dispatcher: Some(dispatcher),
            exited,
            workers,
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
        for _ in 0..self.workers {
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
        left.extend(self.jobs.try_iter().map(|j| (j.endpoint_id, j.delivery_id)));
        if !left.is_empty()
            && let Err(e) = self.store.unclaim(left)
        {
            tracing::error!(error = %e, "cannot return unstarted deliveries to pending");
        }
    }
}

/// The dispatcher thread: claims ahead in groups (without waiting for the commit), hands
/// claimed deliveries to the workers as they free up, and at the end returns what it had
/// claimed but not handed out.
fn dispatch(
    store: SharedStore,
    control: Receiver<Control>,
    answers: ChannelSender<Control>,
    jobs: ChannelSender<Job>,
    mut lanes: Lanes,
) -> Vec<(String, String)> {
    match store.endpoints_with_pending() {
        Ok(eps) => {
            for (ep, rate) in eps {
                lanes.on_backlog(&ep, rate);
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot read pending deliveries"),
    }
    let idle_tick = Duration::from_secs(1);
    let mut last_prune = Instant::now();
    let mut claims_out = 0usize;
    let mut stopping = false;
    loop {
        if last_prune.elapsed() >= idle_tick {
            lanes.prune(Instant::now());
            last_prune = Instant::now();
        }
        let mut pool_full = false;
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
                lanes.to_claim()
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
            let capacity = jobs.capacity().unwrap_or(1);
            let free = capacity.saturating_sub(jobs.len());
            for (endpoint_id, delivery_id) in lanes.hand_out(free, jobs.is_empty(), Instant::now())
            {
                let job = Job {
                    endpoint_id,
                    delivery_id,
                };
                if jobs.send(job).is_err() {
                    return lanes.take_claimed();
                }
            }
            pool_full = jobs.len() >= capacity;
        } else if claims_out == 0 {
            return lanes.take_claimed();
        }
        // A rate-limited lane's wake-up only matters when a worker could take its delivery;
        // while stopping, only the claims still being committed are waited for.
        let wait = match lanes.next_wakeup() {
            Some(t) if !pool_full && !stopping => {
                t.saturating_duration_since(Instant::now()).min(idle_tick)
            }
            _ if stopping => Duration::from_secs(5),
            _ => idle_tick,
        };
        let first = match control.recv_timeout(wait) {
            Ok(msg) => Some(msg),
            Err(RecvTimeoutError::Timeout) if stopping => return lanes.take_claimed(),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return lanes.take_claimed(),
        };
        for msg in first.into_iter().chain(control.try_iter()) {
            match msg {
                Control::Ready(items) => {
                    for r in items {
                        lanes.on_ready(&r.endpoint_id, r.delivery_id, r.rate_limit_per_sec);
                    }
                }
                Control::Done(ep) => lanes.on_done(&ep),
                Control::Claimed { asked, result } => {
                    claims_out = claims_out.saturating_sub(1);
                    match result {
                        Ok(claimed) => lanes.on_claimed(&asked, claimed),
                        Err(e) => {
                            tracing::error!(error = %e, "cannot claim deliveries");
                            lanes.on_claim_failed(&asked);
                        }
                    }
                }
                // Hand out nothing more; wait (a moment) for claims still being committed.
                Control::Stop => stopping = true,
            }
        }
    }
}
