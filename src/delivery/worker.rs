//! A delivery worker: takes a claimed delivery, signs and POSTs it once, records the outcome,
//! and pauses or reopens its endpoint by what the outcome says of the receiver; or checks a
//! paused endpoint's receiver without sending a webhook.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender as ChannelSender};

use super::limit::Signal;
use super::{Control, Job, WebhookSender, Work};
use crate::domain::delivery::SentHeaders;
use crate::domain::hold::{self, Pause, Verdict};
use crate::domain::signing as signature;
use crate::domain::time::now_ms;
use crate::domain::{Claim, DeliveryError, DeliveryStatus, Endpoint, Outcome, SendJob};
use crate::metrics::Metrics;
use crate::store::{PauseChange, SharedStore};

#[derive(Clone)]
pub(super) struct WorkerCtx {
    pub store: SharedStore,
    pub sender: Arc<WebhookSender>,
    pub metrics: Arc<Metrics>,
    pub jobs: Receiver<Job>,
    pub done: ChannelSender<Control>,
    pub stopping: Arc<AtomicBool>,
    pub log: Arc<super::log::DeliveryLines>,
    /// `--max-hold-hours` in seconds: an endpoint's own `max_hold_secs` wins.
    pub max_hold_secs: u64,
}

pub(super) fn run(ctx: WorkerCtx) {
    while let Ok(job) = ctx.jobs.recv() {
        if job.work == Work::Check {
            check(&ctx, &job.endpoint_id);
            continue;
        }
        let mut took = Duration::ZERO;
        let mut signal = Signal::Ignored;
        let mut closes = false;
        if ctx.stopping.load(Ordering::Acquire) {
            // Claimed but not started: it certainly was not sent, so it stays pending.
            give_back(&ctx, &job);
            continue;
        }
        match ctx.store.load_send_job(&job.delivery_id) {
            // A node whose lease might lapse during the POST sends nothing: the claim goes back.
            Ok(Some(_)) if !ctx.store.may_send() => {
                tracing::warn!(delivery = %job.delivery_id, "not sending: this node's lease is not current");
                give_back(&ctx, &job);
            }
            // Paused since it was claimed (here or on another node): it waits, untried. A
            // probe, or a test send (which serves as one), goes.
            Ok(Some(ref send))
                if job.work == Work::Send
                    && !send.delivery.test
                    && let Some(pause) = &send.endpoint.pause =>
            {
                give_back(&ctx, &job);
                tell(&ctx, &job.endpoint_id, Some(pause));
            }
            Ok(Some(send)) => {
                ctx.metrics.in_flight.inc();
                let started = Instant::now();
                let outcome = deliver_one(&ctx.sender, &send);
                took = started.elapsed();
                signal = signal_of(&outcome);
                closes = outcome.closes;
                ctx.metrics.in_flight.dec();
                ctx.metrics.record(&outcome);
                ctx.log.finished(&send, &outcome);
                let alone = job.work == Work::Probe || send.delivery.test;
                let change = judge(&ctx, &send, &outcome, alone, job.sent_per_sec);
                ctx.store.finish(outcome);
                if let Some(change) = change {
                    match ctx.store.change_pause(&job.endpoint_id, change) {
                        Ok(Some(e)) => {
                            announce(&send.endpoint, &e);
                            let cool_to = send
                                .endpoint
                                .pause
                                .as_ref()
                                .and_then(|p| p.suggested_rate_per_sec);
                            match &e.pause {
                                None if cool_to.is_some() => {
                                    let _ = ctx.done.send(Control::Resumed {
                                        endpoint: job.endpoint_id.clone(),
                                        cool_to,
                                    });
                                }
                                p => tell(&ctx, &job.endpoint_id, p.as_ref()),
                            }
                        }
                        Ok(None) => tell(&ctx, &job.endpoint_id, None),
                        Err(e) => {
                            tracing::error!(error = %e, endpoint = %job.endpoint_id, "cannot store the endpoint's pause")
                        }
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, delivery = %job.delivery_id, "cannot load a delivery; it is failed, not sent");
                ctx.store.fail_unsent(
                    job.endpoint_id.clone(),
                    job.delivery_id.clone(),
                    "the server could not read this delivery's records, so it was not sent; see the server log".into(),
                );
            }
        }
        let _ = ctx.done.send(Control::Done {
            endpoint: job.endpoint_id,
            handed_at: job.handed_at,
            took,
            signal,
            closes,
        });
    }
}

/// What a finished POST does to its endpoint's pause, if anything: a failure that says the
/// receiver is down pauses it (its outcome stays: failed is failed); the 2xx of a delivery
/// sent alone while paused reopens it; a failed one extends the pause.
fn judge(
    ctx: &WorkerCtx,
    send: &SendJob,
    outcome: &Outcome,
    alone: bool,
    sent_per_sec: f64,
) -> Option<PauseChange> {
    let hold_secs = send.endpoint.max_hold_secs.unwrap_or(ctx.max_hold_secs);
    let paused = send.endpoint.pause.is_some();
    if hold_secs == 0 && !paused {
        return None; // never held: fail fast
    }
    let verdict = hold::verdict(outcome, outcome.retry_after);
    let now = now_ms();
    let succeeded = outcome.status() == DeliveryStatus::Succeeded;
    match (alone, succeeded, &verdict) {
        (true, true, _) if paused => Some(Box::new(|_| None)),
        (true, false, _) if paused => Some(Box::new(move |p| match p {
            Some(p) => Some(p.after_failed_probe(&verdict, now)),
            None => Pause::start(&verdict, now),
        })),
        (_, _, Verdict::Down { .. }) => Some(Box::new(move |p| {
            p.cloned()
                .or_else(|| Pause::start(&verdict, now).map(|p| p.drawn_at(sent_per_sec)))
        })),
        _ => None,
    }
}

/// One log line when an endpoint pauses and one when it resumes (by this node's hand).
fn announce(before: &Endpoint, after: &Endpoint) {
    match (&before.pause, &after.pause) {
        (None, Some(p)) => tracing::info!(
            endpoint = %after.id,
            reason = %p.reason,
            next_check_in_ms = p.next_check_at - p.since,
            "endpoint paused: its deliveries wait, untried, until its receiver is back"
        ),
        (Some(_), None) => tracing::info!(endpoint = %after.id, "endpoint resumed"),
        _ => {}
    }
}

/// A claimed delivery this worker did not start goes back to `pending`; if the store cannot
/// take it back now, the dispatcher does once it answers (it is never left `sending`).
fn give_back(ctx: &WorkerCtx, job: &Job) {
    let claim = Claim::new(&job.endpoint_id, &job.delivery_id);
    if let Err(e) = ctx.store.unclaim(vec![claim.clone()]) {
        tracing::warn!(error = %e, delivery = %job.delivery_id, "cannot return a delivery to pending yet; the dispatcher retries");
        let _ = ctx.done.send(Control::GiveBack(vec![claim]));
    }
}

/// Tells the dispatcher where the endpoint's pause stands.
fn tell(ctx: &WorkerCtx, endpoint: &str, pause: Option<&Pause>) {
    let endpoint = endpoint.to_owned();
    let _ = ctx.done.send(match pause {
        Some(p) => Control::Held {
            endpoint,
            until_ms: p.next_check_at,
        },
        None => Control::Resumed {
            endpoint,
            cool_to: None,
        },
    });
}

/// Held deliveries are counted (for the metric) up to this many an endpoint.
const HELD_COUNT_CAP: usize = 100_000;

/// How many waiting deliveries one expiry step fails (one small transaction).
const EXPIRE_STEP: usize = 500;

/// A paused endpoint's check: expire what waited too long, then (when due) check that its
/// receiver takes connections, sending no webhook. After an answer (429/5xx) no connection is
/// checked: its wait being over is the check.
fn check(ctx: &WorkerCtx, endpoint_id: &str) {
    let now = now_ms();
    let endpoint = ctx.store.owner_of(endpoint_id).and_then(|c| match c {
        Some(c) => ctx.store.get_endpoint(&c, endpoint_id),
        None => Ok(None),
    });
    let e = match endpoint {
        Ok(Some(e)) => e,
        Ok(None) => return tell(ctx, endpoint_id, None), // deleted: no more checks
        Err(err) => {
            tracing::error!(error = %err, endpoint = %endpoint_id, "cannot read a paused endpoint");
            let later = now + hold::FIRST_BACKOFF_MS;
            let _ = ctx.done.send(Control::Held {
                endpoint: endpoint_id.to_owned(),
                until_ms: later,
            });
            return;
        }
    };
    let Some(pause) = e.pause.clone() else {
        return tell(ctx, endpoint_id, None); // resumed (by hand, or by another node)
    };
    let hold_secs = e.max_hold_secs.unwrap_or(ctx.max_hold_secs);
    // Age is the store's clock (what retention uses too): tests move it on by hours.
    let before = hold::expiry_cutoff(hold_secs, ctx.store.clock().now_ms());
    loop {
        match ctx
            .store
            .fail_waiting(endpoint_id, Some(before), hold::EXPIRED_DETAIL, EXPIRE_STEP)
        {
            Ok(n) if n == EXPIRE_STEP => continue,
            Ok(_) => break,
            Err(err) => {
                tracing::error!(error = %err, endpoint = %endpoint_id, "cannot expire held deliveries");
                break;
            }
        }
    }
    match ctx.store.waiting(endpoint_id, HELD_COUNT_CAP) {
        Ok(n) => {
            let _ = ctx.done.send(Control::Counted {
                endpoint: endpoint_id.to_owned(),
                waiting: n,
            });
        }
        Err(err) => {
            tracing::warn!(error = %err, endpoint = %endpoint_id, "cannot count held deliveries")
        }
    }
    if !pause.due(now) {
        return tell(ctx, endpoint_id, Some(&pause)); // another node moved it on
    }
    if pause.answered || ctx.sender.check(&e.url).is_ok() {
        return take_probe(ctx, endpoint_id, &pause);
    }
    let change: PauseChange = Box::new(move |p| p.map(|p| p.after_failed_check(now)));
    match ctx.store.change_pause(endpoint_id, change) {
        Ok(Some(e)) => tell(ctx, endpoint_id, e.pause.as_ref()),
        Ok(None) => tell(ctx, endpoint_id, None),
        Err(err) => {
            tracing::error!(error = %err, endpoint = %endpoint_id, "cannot store the endpoint's pause");
            tell(ctx, endpoint_id, Some(&pause.after_failed_check(now)));
        }
    }
}

/// The check passed: one delivery goes alone, from one node only. The stored pause is moved
/// past the probe's longest time in the same transaction that finds it still due, so a node
/// that finds it no longer due (another took the probe) waits for that probe's outcome.
fn take_probe(ctx: &WorkerCtx, endpoint_id: &str, pause: &Pause) {
    let now = now_ms();
    let probe_ms = ctx.sender.request_timeout().as_millis() as i64;
    let taken = Arc::new(AtomicBool::new(false));
    let change: PauseChange = {
        let taken = taken.clone();
        Box::new(move |p| {
            let p = p?;
            let mine = p.due(now);
            taken.store(mine, Ordering::Release);
            Some(if mine {
                p.probe_taken(now, probe_ms)
            } else {
                p.clone()
            })
        })
    };
    match ctx.store.change_pause(endpoint_id, change) {
        Ok(Some(e)) if taken.load(Ordering::Acquire) && e.pause.is_some() => {
            let _ = ctx.done.send(Control::CheckPassed {
                endpoint: endpoint_id.to_owned(),
            });
        }
        Ok(Some(e)) => tell(ctx, endpoint_id, e.pause.as_ref()),
        Ok(None) => tell(ctx, endpoint_id, None),
        Err(err) => {
            tracing::error!(error = %err, endpoint = %endpoint_id, "cannot store the endpoint's pause");
            tell(ctx, endpoint_id, Some(&pause.after_failed_check(now)));
        }
    }
}

/// What a POST tells the endpoint's limit: an answer's time, or a sign of overload.
fn signal_of(outcome: &Outcome) -> Signal {
    match outcome.error {
        None => Signal::Answered,
        Some(
            DeliveryError::Timeout
            | DeliveryError::ConnectionRefused
            | DeliveryError::Connection
            | DeliveryError::Dns
            | DeliveryError::Tls,
        ) => Signal::Dropped,
        Some(_) => Signal::Ignored,
    }
}

/// Sends one delivery (or refuses to, for a disabled endpoint) and says how it went.
/// Synchronous and free of the store, so tests can drive it directly.
pub fn deliver_one(sender: &WebhookSender, job: &SendJob) -> Outcome {
    let SendJob {
        delivery,
        endpoint,
        event,
    } = job;
    let started_at = now_ms();
    if !endpoint.enabled && !delivery.test {
        return Outcome {
            delivery_id: delivery.id.clone(),
            endpoint_id: endpoint.id.clone(),
            url: endpoint.url.clone(),
            response_status: None,
            response_body: None,
            error: Some(DeliveryError::EndpointDisabled),
            error_detail: Some("the endpoint is disabled".into()),
            duration_ms: 0,
            started_at,
            finished_at: started_at,
            retry_after: None,
            request_headers: None,
            closes: false,
        };
    }
    let signed = signature::webhook_headers(event, endpoint, started_at);
    let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    headers.extend(signed.iter().map(|(k, v)| (*k, v.as_str())));
    headers.extend(
        endpoint
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let result = sender.post(&endpoint.url, &headers, event.body.as_bytes());
    // As sent, custom values masked: written once here, kept as it is by either store.
    let standard = headers.len() - endpoint.headers.len();
    let request_headers = Some(SentHeaders::encode(&headers, standard));
    Outcome {
        delivery_id: delivery.id.clone(),
        endpoint_id: endpoint.id.clone(),
        url: endpoint.url.clone(),
        response_status: result.status,
        response_body: result.body,
        error: result.error,
        error_detail: result.detail,
        duration_ms: result.duration.as_millis() as u64,
        started_at,
        finished_at: now_ms(),
        retry_after: result.retry_after,
        request_headers,
        closes: result.closes,
    }
}
