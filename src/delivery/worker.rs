//! A delivery worker: takes a claimed delivery, signs and POSTs it once, records the outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender as ChannelSender};

use super::limit::Signal;
use super::{Control, Job, WebhookSender};
use crate::domain::DeliveryError;
use crate::domain::Outcome;
use crate::domain::SendJob;
use crate::domain::signing::signature_header;
use crate::domain::time::now_ms;
use crate::metrics::Metrics;
use crate::store::SharedStore;

#[derive(Clone)]
pub(super) struct WorkerCtx {
    pub store: SharedStore,
    pub sender: Arc<WebhookSender>,
    pub metrics: Arc<Metrics>,
    pub jobs: Receiver<Job>,
    pub done: ChannelSender<Control>,
    pub stopping: Arc<AtomicBool>,
    pub log: Arc<super::log::DeliveryLog>,
}

pub(super) fn run(ctx: WorkerCtx) {
    while let Ok(job) = ctx.jobs.recv() {
        let mut took = Duration::ZERO;
        let mut signal = Signal::Ignored;
        if ctx.stopping.load(Ordering::Acquire) {
            // Claimed but not started: it certainly was not sent, so it stays pending.
            if let Err(e) = ctx
                .store
                .unclaim(vec![(job.endpoint_id.clone(), job.delivery_id.clone())])
            {
                tracing::error!(error = %e, delivery = %job.delivery_id, "cannot return a delivery to pending");
            }
            continue;
        }
        match ctx.store.load_send_job(&job.delivery_id) {
            // A node whose lease might lapse during the POST sends nothing: the claim goes back.
            Ok(Some(_)) if !ctx.store.may_send() => {
                tracing::warn!(delivery = %job.delivery_id, "not sending: this node's lease is not current");
                if let Err(e) = ctx
                    .store
                    .unclaim(vec![(job.endpoint_id.clone(), job.delivery_id.clone())])
                {
                    tracing::error!(error = %e, delivery = %job.delivery_id, "cannot return a delivery to pending");
                }
            }
            Ok(Some(send)) => {
                ctx.metrics.in_flight.inc();
                let started = Instant::now();
                let outcome = deliver_one(&ctx.sender, &send);
                took = started.elapsed();
                signal = signal_of(&outcome);
                ctx.metrics.in_flight.dec();
                ctx.metrics.record(&outcome);
                ctx.log.finished(&send, &outcome);
                ctx.store.finish(outcome);
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
        });
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
        };
    }
    let timestamp = started_at / 1000;
    let signature = signature_header(
        &endpoint.signing_secrets(started_at),
        &event.id,
        timestamp,
        event.body.as_bytes(),
    );
    let ts = timestamp.to_string();
    let mut headers: Vec<(&str, &str)> = vec![
        ("content-type", "application/json"),
        ("webhook-id", &event.id),
        ("webhook-timestamp", &ts),
        ("webhook-signature", &signature),
    ];
    headers.extend(
        endpoint
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let result = sender.post(&endpoint.url, &headers, event.body.as_bytes());
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
    }
}
