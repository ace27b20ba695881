//! A real local HTTP receiver for tests: answers each request as told and reports what it got
//! through a channel. Small on purpose: HTTP/1.1 with Content-Length and keep-alive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver as ChannelReceiver, Sender, unbounded};

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub fn header_map(&self) -> ureq::http::HeaderMap {
        let mut map = ureq::http::HeaderMap::new();
        for (k, v) in &self.headers {
            map.append(
                ureq::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }
}

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16, &'static str),
    /// A status with a body of this many bytes.
    Big(u16, usize),
    /// 302 to this location.
    Redirect(&'static str),
    /// Read the request, then never answer (until the receiver is dropped).
    Hang,
}

pub struct Receiver {
    pub port: u16,
    got: ChannelReceiver<Received>,
    reply: Arc<Mutex<Reply>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    pub fn start(reply: Reply) -> Self {
        Self::start_with(reply, None)
    }

    /// An HTTPS receiver with this server configuration.
    pub fn start_tls(reply: Reply, tls: Arc<rustls::ServerConfig>) -> Self {
        Self::start_with(reply, Some(tls))
    }

    fn start_with(reply: Reply, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, got) = unbounded();
        let reply = Arc::new(Mutex::new(reply));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (reply.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Acquire) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                let (tx, r, s, tls) = (tx.clone(), r.clone(), s.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    Some(cfg) => {
                        let Ok(session) = rustls::ServerConnection::new(cfg) else {
                            return;
                        };
                        serve(rustls::StreamOwned::new(session, conn), &tx, &r, &s);
                    }
                    None => serve(conn, &tx, &r, &s),
                });
            }
        });
        Self {
            port,
            got,
            reply,
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn set_reply(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    /// The next request, or a failed test after `secs`.
    pub fn next(&self, secs: u64) -> Received {
        self.got
            .recv_timeout(Duration::from_secs(secs))
            .expect("the receiver got a request in time")
    }

    /// Every request received so far.
    pub fn drain(&self) -> Vec<Received> {
        self.got.try_iter().collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(conn: impl Read + Write, tx: &Sender<Received>, reply: &Mutex<Reply>, stop: &AtomicBool) {
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_owned(), v.trim().to_owned());
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.parse().unwrap_or(0);
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let _ = tx.send(Received {
            path,
            headers,
            body,
        });
        let current = reply.lock().unwrap().clone();
        let answer = |code: u16, extra: &str, body: &str| {
            format!(
                "HTTP/1.1 {code} X\r\ncontent-type: text/plain\r\n{extra}content-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let resp = match current {
            Reply::Status(code, text) => answer(code, "", text),
            Reply::Big(code, n) => answer(code, "", &"x".repeat(n)),
            Reply::Redirect(to) => answer(302, &format!("location: {to}\r\n"), ""),
            Reply::Hang => {
                while !stop.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return;
            }
        };
        let writer = reader.get_mut();
        if writer
            .write_all(resp.as_bytes())
            .and_then(|_| writer.flush())
            .is_err()
        {
            return;
        }
    }
}
