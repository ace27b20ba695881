//! Name resolution under the request's deadline. The system resolver cannot be interrupted,
//! so lookups run on a small fixed pool of threads and a worker waits for the answer no
//! longer than its deadline: a stalled lookup holds a resolver thread, never a worker past
//! `--request-timeout-secs`, and never starts a thread per request. One name is looked up
//! once at a time (others asking for it wait for that answer), and a name whose lookup
//! stalled fails at once for a while: one endpoint with a dead name server cannot use up
//! the threads that every other endpoint's lookups need.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};

/// Resolves "host:port" to addresses; the system's resolver unless a test gives another.
pub type LookupFn = Arc<dyn Fn(&str) -> std::io::Result<Vec<SocketAddr>> + Send + Sync>;

/// Lookups running at once; more wait in the queue.
const THREADS: usize = 16;
/// How long a name whose lookup outlived a deadline fails at once.
const STALLED_FOR: Duration = Duration::from_secs(30);
/// Lookups waiting at most; past that a lookup fails at once.
const QUEUE: usize = 4096;

#[derive(Debug, PartialEq, Eq)]
pub enum DnsError {
    /// The name does not resolve.
    NotFound,
    /// No answer within the deadline.
    TimedOut,
}

struct Lookup {
    host_port: String,
    deadline: Instant,
    flight: Arc<Flight>,
}

/// One lookup of one name and whoever waits for it.
#[derive(Default)]
struct Flight {
    answer: Mutex<Option<Result<Vec<SocketAddr>, ()>>>,
    done: Condvar,
}

#[derive(Default)]
struct Names {
    /// Lookups under way, by name.
    in_flight: HashMap<String, Arc<Flight>>,
    /// Names whose lookup stalled past a deadline, until when they fail at once.
    stalled: HashMap<String, Instant>,
}

pub struct Dns {
    jobs: Sender<Lookup>,
    names: Arc<Mutex<Names>>,
}

impl Dns {
    pub fn system() -> Self {
        Self::with_lookup(Arc::new(|host_port: &str| {
            host_port.to_socket_addrs().map(Iterator::collect)
        }))
    }

    pub fn with_lookup(lookup: LookupFn) -> Self {
        let (jobs, queue) = crossbeam_channel::bounded::<Lookup>(QUEUE);
        let names: Arc<Mutex<Names>> = Arc::default();
        for i in 0..THREADS {
            let queue = queue.clone();
            let lookup = lookup.clone();
            let names = names.clone();
            std::thread::Builder::new()
                .name(format!("dns-{i}"))
                .spawn(move || {
                    for job in queue {
                        let answer = if Instant::now() >= job.deadline {
                            Err(()) // its workers stopped waiting: not worth asking any more
                        } else {
                            lookup(&job.host_port).map_err(|_| ())
                        };
                        let late = Instant::now() > job.deadline;
                        {
                            let mut n = names.lock().unwrap_or_else(|e| e.into_inner());
                            n.in_flight.remove(&job.host_port);
                            if late {
                                n.stalled
                                    .insert(job.host_port.clone(), Instant::now() + STALLED_FOR);
                            }
                        }
                        *job.flight.answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(answer);
                        job.flight.done.notify_all();
                    }
                })
                .expect("spawn a resolver thread");
        }
        Self { jobs, names }
    }

    /// The addresses of "host:port" (an IP literal needs no lookup), within `within`.
    pub fn resolve(&self, host_port: &str, within: Duration) -> Result<Vec<SocketAddr>, DnsError> {
        if let Ok(addr) = host_port.parse::<SocketAddr>() {
            return Ok(vec![addr]);
        }
        let deadline = Instant::now() + within;
        let flight = {
            let mut n = self.names.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            n.stalled.retain(|_, until| *until > now);
            if n.stalled.contains_key(host_port) {
                return Err(DnsError::TimedOut);
            }
            match n.in_flight.get(host_port) {
                Some(f) => f.clone(),
                None => {
                    let flight = Arc::new(Flight::default());
                    let job = Lookup {
                        host_port: host_port.to_owned(),
                        deadline,
                        flight: flight.clone(),
                    };
                    match self.jobs.try_send(job) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => return Err(DnsError::TimedOut),
                        Err(TrySendError::Disconnected(_)) => return Err(DnsError::NotFound),
                    }
                    n.in_flight.insert(host_port.to_owned(), flight.clone());
                    flight
                }
            }
        };
        let mut answer = flight.answer.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match answer.as_ref() {
                Some(Ok(addrs)) if !addrs.is_empty() => return Ok(addrs.clone()),
                Some(_) => return Err(DnsError::NotFound),
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DnsError::TimedOut);
            }
            answer = flight
                .done
                .wait_timeout(answer, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stalled_lookup_is_given_up_at_the_deadline() {
        let dns = Dns::with_lookup(Arc::new(|host: &str| {
            if host.starts_with("stall") {
                std::thread::sleep(Duration::from_secs(30));
            }
            Ok(vec!["192.0.2.1:80".parse().unwrap()])
        }));
        let started = Instant::now();
        // More stalled lookups than threads: each still ends at its own deadline.
        for _ in 0..THREADS + 2 {
            assert_eq!(
                dns.resolve("stall.example:80", Duration::from_millis(100)),
                Err(DnsError::TimedOut)
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        // Literals never wait for the pool, however stalled it is.
        assert_eq!(
            dns.resolve("127.0.0.1:9", Duration::from_millis(1))
                .unwrap(),
            vec!["127.0.0.1:9".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            dns.resolve("[::1]:9", Duration::from_millis(1)).unwrap(),
            vec!["[::1]:9".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn one_stalled_name_holds_one_thread_and_then_fails_at_once() {
        let dns = Dns::with_lookup(Arc::new(|host: &str| {
            if host.starts_with("stall") {
                std::thread::sleep(Duration::from_millis(600));
            }
            Ok(vec!["192.0.2.1:80".parse().unwrap()])
        }));
        // Many asking for the stalled name at once: one lookup, the rest wait for it.
        std::thread::scope(|s| {
            for _ in 0..50 {
                s.spawn(|| {
                    assert_eq!(
                        dns.resolve("stall.example:80", Duration::from_millis(100)),
                        Err(DnsError::TimedOut)
                    );
                });
            }
        });
        // Other names are answered meanwhile.
        assert!(
            dns.resolve("fine.example:80", Duration::from_secs(2))
                .is_ok()
        );
        // Once the stalled lookup ends (late), the name fails at once for a while.
        std::thread::sleep(Duration::from_millis(700));
        let t = Instant::now();
        assert_eq!(
            dns.resolve("stall.example:80", Duration::from_secs(5)),
            Err(DnsError::TimedOut)
        );
        assert!(t.elapsed() < Duration::from_millis(50));
    }

    #[test]
    fn names_resolve_through_the_pool() {
        let dns = Dns::with_lookup(Arc::new(|host: &str| match host {
            "known.example:443" => Ok(vec!["192.0.2.7:443".parse().unwrap()]),
            _ => Err(std::io::Error::other("no such host")),
        }));
        assert_eq!(
            dns.resolve("known.example:443", Duration::from_secs(5))
                .unwrap(),
            vec!["192.0.2.7:443".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            dns.resolve("unknown.example:443", Duration::from_secs(5)),
            Err(DnsError::NotFound)
        );
    }
}
