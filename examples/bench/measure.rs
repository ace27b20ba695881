//! The measures: the sender's own ceiling, ingest, end to end, latency, fan-out and the
//! store's ceiling. Each returns figures; `main` puts them next to their baselines.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use webhooks::delivery::{SenderConfig, WebhookSender};

use crate::api::Api;
use crate::receiver::Receiver;
use crate::report::percentile;
use crate::{BODY, WORKERS};

pub fn baseline(receiver: &Receiver, for_: Duration) -> f64 {
    let sender = Arc::new(WebhookSender::new(&SenderConfig {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(15),
        block_private_networks: false,
        roots: None,
    }));
    let url = receiver.url("/fast/baseline");
    let done = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            let (sender, url, done) = (sender.clone(), url.clone(), &done);
            s.spawn(move || {
                let headers = [
                    ("content-type", "application/json"),
                    ("webhook-id", "evt_baseline"),
                ];
                while start.elapsed() < for_ {
                    let r = sender.post(&url, &headers, BODY.as_bytes());
                    assert_eq!(r.status, Some(204), "{:?}", r.detail);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

pub fn ingest_single(
    api: &Api,
    customer: &str,
    n: usize,
    clients: usize,
) -> (f64, Duration, Duration) {
    let start = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let api = api.clone();
                s.spawn(move || {
                    (0..n / clients)
                        .map(|_| {
                            let t = Instant::now();
                            api.event(customer);
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let rate = latencies.len() as f64 / start.elapsed().as_secs_f64();
    latencies.sort();
    (
        rate,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    )
}

/// Events sent when `n` are asked for in batches of up to 1000.
pub fn batched(n: usize) -> usize {
    let per_batch = 1000.min(n);
    n / per_batch * per_batch
}

pub fn ingest_batches(api: &Api, customers: &[String], n: usize, clients: usize) -> f64 {
    let per_batch = 1000.min(n);
    let batches = n / per_batch;
    let next = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients {
            let (api, next) = (api.clone(), &next);
            s.spawn(move || {
                while (next.fetch_add(1, Ordering::Relaxed) as usize) < batches {
                    api.batch(customers, per_batch);
                }
            });
        }
    });
    (batches * per_batch) as f64 / start.elapsed().as_secs_f64()
}

/// Posts `n` events (in batches) and waits until the receiver has them all; deliveries/s from
/// the first post to the last receipt.
pub fn end_to_end(api: &Api, receiver: &Receiver, customers: &[String], n: usize) -> f64 {
    let before = receiver.total();
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| ingest_batches(api, customers, n, 2));
        let deadline = start + Duration::from_secs(900);
        while receiver.total() - before < batched(n) as u64 {
            assert!(Instant::now() < deadline, "deliveries stalled");
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    (receiver.total() - before) as f64 / start.elapsed().as_secs_f64()
}

/// Single events offered at `rate` per second for `for_`: accepted (202) → received.
pub fn latency_at(
    api: &Api,
    receiver: &Receiver,
    customers: &[String],
    rate: f64,
    for_: Duration,
) -> (Duration, Duration, f64) {
    let gap = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let accepted: Mutex<Vec<(String, Instant)>> = Mutex::default();
    let start = Instant::now();
    std::thread::scope(|s| {
        // Several producers share the pace, so one slow answer does not stall the schedule.
        let producers = 8;
        for p in 0..producers {
            let (api, accepted) = (api.clone(), &accepted);
            s.spawn(move || {
                let mut k = p as u32;
                loop {
                    let due = start + gap * k;
                    if due.duration_since(start) >= for_ {
                        break;
                    }
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let e = api.event(&customers[k as usize % customers.len()]);
                    accepted
                        .lock()
                        .unwrap()
                        .push((e["id"].as_str().unwrap().to_owned(), Instant::now()));
                    k += producers as u32;
                }
            });
        }
    });
    let accepted = accepted.into_inner().unwrap();
    let offered = accepted.len() as f64 / start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(120);
    while accepted.iter().any(|(id, _)| receiver.count(id) == 0) {
        assert!(Instant::now() < deadline, "latency events never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut lat: Vec<Duration> = accepted
        .iter()
        .map(|(id, at)| {
            receiver
                .first_seen(id)
                .unwrap()
                .saturating_duration_since(*at)
        })
        .collect();
    lat.sort();
    (percentile(&lat, 0.5), percentile(&lat, 0.99), offered)
}

pub fn fan_out(api: &Api, receiver: &Receiver, customer: &str, endpoints: usize) -> Duration {
    let start = Instant::now();
    let e = api.event(customer);
    let id = e["id"].as_str().unwrap();
    assert_eq!(e["deliveries"].as_u64(), Some(endpoints as u64));
    let deadline = start + Duration::from_secs(120);
    while (receiver.count(id) as usize) < endpoints {
        assert!(Instant::now() < deadline, "fan-out stalled");
        std::thread::sleep(Duration::from_millis(1));
    }
    start.elapsed()
}

/// redb alone: rows shaped like a delivery record, 1000 per commit, default durability.
pub fn store_ceiling(dir: &Path, rows: usize) -> f64 {
    const T: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("rows");
    let db = redb::Database::builder()
        .set_cache_size(64 * 1024 * 1024)
        .create(dir.join("ceiling.redb"))
        .unwrap();
    let value = vec![b'x'; 420];
    let start = Instant::now();
    for chunk in 0..rows / 1000 {
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(T).unwrap();
            for i in 0..1000 {
                t.insert(format!("dlv_{chunk:08}{i:06}").as_str(), value.as_slice())
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    rows as f64 / start.elapsed().as_secs_f64()
}

/// Single events posted over HTTP by `clients` at once, spread over `customers`, while they
/// are delivered: deliveries received per second, from the first post to the last receipt.
pub fn end_to_end_single(
    api: &Api,
    receiver: &Receiver,
    customers: &[String],
    n: usize,
    clients: usize,
) -> f64 {
    let before = receiver.total();
    let next = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients {
            let (api, next) = (api.clone(), &next);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= n {
                        break;
                    }
                    api.event(&customers[i % customers.len()]);
                }
            });
        }
        let deadline = start + Duration::from_secs(900);
        while receiver.total() - before < n as u64 {
            assert!(Instant::now() < deadline, "deliveries stalled");
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    (receiver.total() - before) as f64 / start.elapsed().as_secs_f64()
}

/// POSTs in flight as the server's gauge showed them while work ran.
pub struct InFlight {
    /// The mean over the samples after the first POSTs started (the ramp-up excluded, the
    /// tail when the last ones drain included).
    pub mean: f64,
    pub peak: u64,
}

/// Samples the server's POSTs in flight every 20 ms while `work` runs.
pub fn with_in_flight<T: Send>(api: &Api, work: impl FnOnce() -> T + Send) -> (T, InFlight) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let samples: Mutex<Vec<u64>> = Mutex::default();
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let n = api.metric("webhooks_deliveries_in_flight");
                samples.lock().unwrap().push(n);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let r = work();
        stop.store(true, Ordering::Relaxed);
        r
    });
    let samples = samples.into_inner().unwrap();
    let peak = samples.iter().copied().max().unwrap_or(0);
    let busy: Vec<u64> = samples
        .iter()
        .copied()
        .skip_while(|n| *n < peak / 2)
        .collect();
    let mean = busy.iter().sum::<u64>() as f64 / busy.len().max(1) as f64;
    (result, InFlight { mean, peak })
}

/// The server's in-flight limits so far, summed over finished POSTs, and how many POSTs:
/// the difference over a run gives the mean limit its POSTs went out under (0 for a build
/// without adaptive limits).
pub fn limits(api: &Api) -> (f64, f64) {
    let text = api.get("/metrics").unwrap_or_default();
    let read = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|r| r.trim().parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    };
    (
        read("webhooks_endpoint_limit_sum "),
        read("webhooks_endpoint_limit_count "),
    )
}

/// The mean limit between two readings of `limits`.
pub fn mean_limit(before: (f64, f64), after: (f64, f64)) -> f64 {
    (after.0 - before.0) / (after.1 - before.1).max(1.0)
}
