//! A small receiver that really blocks, as the quick receivers people write do (Python's
//! `http.server`, a one-thread Flask): a listen backlog of 5 and a fixed number of threads,
//! each taking one connection at a time, working `work` on it and closing it. More
//! connections than its threads and its backlog hold are refused or reset by the kernel:
//! what a sender that floods it loses. Shared by the tests and the benchmark.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

/// The listen backlog of the receivers people start without thinking about it.
pub const BACKLOG: i32 = 5;

pub struct SmallReceiver {
    pub port: u16,
    /// The listening socket, to close it at once on drop (as a process that exits does).
    socket: Socket,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// webhook-id → times received.
    seen: Arc<Mutex<HashMap<String, u32>>>,
    total: Arc<AtomicU64>,
}

impl SmallReceiver {
    /// Listens on 127.0.0.1 (a free port) with a backlog of 5 and `threads` threads, each
    /// answering 200 after `work`.
    pub fn start(threads: usize, work: Duration) -> Self {
        Self::start_on(0, threads, work).expect("bind a port on 127.0.0.1")
    }

    /// The same on a given port (0: any), for a receiver that restarts on its port.
    pub fn start_on(port: u16, threads: usize, work: Duration) -> std::io::Result<Self> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
        socket.listen(BACKLOG)?;
        let closer = socket.try_clone()?;
        let listener: TcpListener = socket.into();
        let port = listener.local_addr()?.port();
        let listener = Arc::new(listener);
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let total = Arc::new(AtomicU64::new(0));
        let threads = (0..threads.max(1))
            .map(|_| {
                let (listener, stop, seen, total) =
                    (listener.clone(), stop.clone(), seen.clone(), total.clone());
                std::thread::spawn(move || {
                    while let Ok((conn, _)) = listener.accept() {
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                        if let Some(id) = serve(conn, work) {
                            total.fetch_add(1, Ordering::Relaxed);
                            *seen.lock().unwrap().entry(id).or_insert(0) += 1;
                        }
                    }
                })
            })
            .collect();
        Ok(Self {
            port,
            socket: closer,
            stop,
            threads,
            seen,
            total,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Requests answered.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Distinct webhook-ids received, and how many arrived more than once.
    pub fn distinct_and_twice(&self) -> (usize, usize) {
        let seen = self.seen.lock().unwrap();
        (seen.len(), seen.values().filter(|n| **n > 1).count())
    }
}

impl Drop for SmallReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Stop listening at once, as a receiver that exits does: new connections are refused,
        // those waiting to be accepted are reset, and every thread's accept returns.
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        // Threads serving a request finish it first. Bounded: one stuck past that is left.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while self.threads.iter().any(|t| !t.is_finished()) && std::time::Instant::now() < deadline
        {
            // Where shutting a listener down does not wake accept, a connection does.
            let _ = TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], self.port)),
                Duration::from_millis(100),
            );
        }
        for t in self.threads.drain(..).filter(|t| t.is_finished()) {
            let _ = t.join();
        }
    }
}

/// Reads one request (head and `content-length` body), works, answers 200 and closes.
/// Returns its webhook-id.
fn serve(mut conn: TcpStream, work: Duration) -> Option<String> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
    };
    let length: usize = header("content-length:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let id = header("webhook-id:").unwrap_or_default();
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    std::thread::sleep(work);
    conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .ok()?;
    Some(id)
}
