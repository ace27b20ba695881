//! Delivery: the dispatcher thread that feeds a bounded channel fairly, and the pool of
//! plain worker threads that each claim, sign and POST one delivery at a time.

pub mod dispatcher;
pub mod sender;
pub mod signing;
mod worker;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender as ChannelSender, bounded, unbounded};

use crate::metrics::Metrics;
use crate::store::{Ready, Store};
use dispatcher::Lanes;
pub use sender::{SendResult, Sender, SenderConfig};
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
    Stop,
}

/// The running dispatcher and workers.
pub struct Delivery {
    control: ChannelSender<Control>,
    stopping: Arc<AtomicBool>,
    dispatcher: Option<JoinHandle<()>>,
    exited: Receiver<()>,
    workers: usize,
    /// To take back, at shutdown, what no worker started.
    jobs: Receiver<Job>,
    store: Arc<Store>,
}

impl Delivery {
    /// Starts `workers` threads and the dispatcher, queues what the store has pending, and
    /// hooks itself to the store's commits.
    pub fn start(store: Arc<Store>, sender: Sender, workers: usize, metrics: Arc<Metrics>) -> Self {
        let workers = workers.max(1);
        let (control, control_rx) = unbounded();
        let (jobs, jobs_rx) = bounded::<Job>(workers);
        let (exited_tx, exited) = unbounded();
        let stopping = Arc::new(AtomicBool::new(false));
        let sender = Arc::new(sender);

        let hook = control.clone();
        store.on_commit(move |ready| {
            let _ = hook.send(Control::Ready(ready));
        });

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
        let dispatcher = {
            let store = store.clone();
            std::thread::Builder::new()
                .name("dispatcher".into())
                .spawn(move || dispatch(store, control_rx, jobs, share))
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
        if let Some(d) = self.dispatcher.take() {
            let _ = d.join();
        }
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
        // Workers stuck in a POST cannot take what is still queued: it was not started.
        let left: Vec<(String, String)> = self
            .jobs
            .try_iter()
            .map(|j| (j.endpoint_id, j.delivery_id))
            .collect();
        if !left.is_empty()
            && let Err(e) = self.store.unclaim(left)
        {
            tracing::error!(error = %e, "cannot return unstarted deliveries to pending");
        }
    }
}

fn dispatch(store: Arc<Store>, control: Receiver<Control>, jobs: ChannelSender<Job>, share: usize) {
    let mut lanes = Lanes::new(share);
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
    loop {
        if last_prune.elapsed() >= idle_tick {
            lanes.prune(Instant::now());
            last_prune = Instant::now();
        }
        for (ep, after, want) in lanes.wanting_refill() {
            match store.pending_of(&ep, &after, want) {
                Ok(ids) => lanes.on_refill(&ep, ids, want),
                Err(e) => tracing::error!(error = %e, "cannot read pending deliveries"),
            }
        }
        let free = jobs.capacity().unwrap_or(1).saturating_sub(jobs.len());
        let picked = lanes.pick(free, Instant::now());
        if !picked.is_empty() {
            let asked: Vec<String> = picked.iter().map(|(ep, _)| ep.clone()).collect();
            let (claimed, claim_failed) = match store.claim(picked) {
                Ok(c) => (c, false),
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim deliveries");
                    (Vec::new(), true)
                }
            };
            // Lanes whose delivery was deleted or disabled meanwhile get their slot back.
            let mut unclaimed = asked;
            for (ep, _) in &claimed {
                if let Some(i) = unclaimed.iter().position(|e| e == ep) {
                    unclaimed.swap_remove(i);
                }
            }
            for ep in unclaimed {
                if claim_failed {
                    lanes.on_claim_failed(&ep);
                } else {
                    lanes.on_done(&ep);
                }
            }
            for (endpoint_id, delivery_id) in claimed {
                if jobs
                    .send(Job {
                        endpoint_id,
                        delivery_id,
                    })
                    .is_err()
                {
                    return;
                }
            }
        }
        let wait = match lanes.next_wakeup() {
            Some(t) => t.saturating_duration_since(Instant::now()).min(idle_tick),
            None => idle_tick,
        };
        let first = match control.recv_timeout(wait) {
            Ok(msg) => Some(msg),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        for msg in first.into_iter().chain(control.try_iter()) {
            match msg {
                Control::Ready(items) => {
                    for r in items {
                        lanes.on_ready(&r.endpoint_id, r.delivery_id, r.rate_limit_per_sec);
                    }
                }
                Control::Done(ep) => lanes.on_done(&ep),
                Control::Stop => return,
            }
        }
    }
}
