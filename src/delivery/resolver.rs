//! Name resolution under the request's deadline. The system resolver cannot be interrupted,
//! so lookups run on a small fixed pool of threads and a worker waits for the answer no
//! longer than its deadline: a stalled lookup holds a resolver thread, never a worker past
//! `--request-timeout-secs`, and never starts a thread per request.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};

/// Resolves "host:port" to addresses; the system's resolver unless a test gives another.
pub type LookupFn = Arc<dyn Fn(&str) -> std::io::Result<Vec<SocketAddr>> + Send + Sync>;

/// Lookups running at once; more wait in the queue (a stalled name server stalls only these).
const THREADS: usize = 8;
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
    reply: Sender<std::io::Result<Vec<SocketAddr>>>,
}

pub struct Dns {
    jobs: Sender<Lookup>,
}

impl Dns {
    pub fn system() -> Self {
        Self::with_lookup(Arc::new(|host_port: &str| {
            host_port.to_socket_addrs().map(Iterator::collect)
        }))
    }

    pub fn with_lookup(lookup: LookupFn) -> Self {
        let (jobs, queue) = crossbeam_channel::bounded::<Lookup>(QUEUE);
        for i in 0..THREADS {
            let queue = queue.clone();
            let lookup = lookup.clone();
            std::thread::Builder::new()
                .name(format!("dns-{i}"))
                .spawn(move || {
                    for job in queue {
                        // Its worker stopped waiting: not worth asking any more.
                        if Instant::now() >= job.deadline {
                            continue;
                        }
                        let _ = job.reply.send(lookup(&job.host_port));
                    }
                })
                .expect("spawn a resolver thread");
        }
        Self { jobs }
    }

    /// The addresses of "host:port" (an IP literal needs no lookup), within `within`.
    pub fn resolve(&self, host_port: &str, within: Duration) -> Result<Vec<SocketAddr>, DnsError> {
        if let Ok(addr) = host_port.parse::<SocketAddr>() {
            return Ok(vec![addr]);
        }
        let deadline = Instant::now() + within;
        let (reply, answer) = crossbeam_channel::bounded(1);
        let job = Lookup {
            host_port: host_port.to_owned(),
            deadline,
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(DnsError::TimedOut),
            Err(TrySendError::Disconnected(_)) => return Err(DnsError::NotFound),
        }
        match answer.recv_deadline(deadline) {
            Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
            Ok(_) => Err(DnsError::NotFound),
            Err(_) => Err(DnsError::TimedOut),
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
