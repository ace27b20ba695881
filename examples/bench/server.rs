//! The server under test: the real binary, built once before anything is timed, started on a
//! temporary data file; its memory as the kernel reports it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::api::Api;

/// The server under test, as a child process.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub admin: String,
    /// Flags after `serve` (kept for restarts).
    extra: Vec<String>,
}

/// The binary under test: this tree's, built once; or `BENCH_SERVER`, to measure another
/// build (an earlier commit, say) with the same benchmark.
pub fn server_binary() -> PathBuf {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY
        .get_or_init(|| match std::env::var_os("BENCH_SERVER") {
            Some(path) => PathBuf::from(path),
            None => build_server(),
        })
        .clone()
}

fn build_server() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let release = profile_dir.ends_with("release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    // With the example in the same build, features resolve as for `cargo run --example bench`:
    // nothing is rebuilt.
    build.args([
        "build",
        "--quiet",
        "--bin",
        "webhooks",
        "--example",
        "bench",
    ]);
    if release {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "cannot build the server");
    profile_dir.join("webhooks")
}

impl Server {
    pub fn start(data: &Path, extra: &[String]) -> Self {
        Self::spawn(data, None, extra).0
    }

    /// A server whose working directory is `dir` (a node on PostgreSQL writes its first
    /// start's secrets there); `admin` when another node bootstrapped the database.
    pub fn start_node(dir: &Path, admin: Option<&str>, extra: &[String]) -> Self {
        std::fs::create_dir_all(dir).expect("a node's directory");
        Self::spawn(&dir.join("unused.redb"), admin, extra).0
    }

    fn spawn(data: &Path, admin: Option<&str>, extra: &[String]) -> (Self, Instant) {
        let started = Instant::now();
        let mut child = Command::new(server_binary())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            // On PostgreSQL (`--database` among the flags) there is no data file.
            .args(if extra.iter().any(|a| a == "--database") {
                Vec::new()
            } else {
                vec![
                    std::ffi::OsString::from("--data"),
                    data.as_os_str().to_owned(),
                ]
            })
            .current_dir(data.parent().unwrap_or(Path::new(".")))
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .trim_start_matches("portal: http://")
            .trim_end_matches('/')
            .to_owned();
        let admin = match admin {
            Some(a) => a.to_owned(),
            None => {
                let mut l = String::new();
                out.read_line(&mut l).unwrap();
                // Not a terminal: the secrets are in a file named on this line (builds before
                // 2026-11-28 printed them here).
                let text = match l.split(" are in ").nth(1) {
                    Some(rest) => {
                        let path = rest.split(" (readable").next().unwrap_or(rest).trim();
                        std::fs::read_to_string(path).expect("the first start's secrets file")
                    }
                    None => l,
                };
                text.lines()
                    .find_map(|l| l.strip_prefix("admin token: "))
                    .expect("the admin token")
                    .trim()
                    .to_owned()
            }
        };
        std::thread::spawn(move || for _ in out.lines() {});
        let s = Self {
            child: Some(child),
            base: format!("http://{addr}"),
            admin,
            extra: extra.to_vec(),
        };
        (s, started)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// CPU time the server process has used (user and system), from /proc.
    pub fn cpu_secs(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name (which may hold spaces) closed by ')'.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        // utime and stime are fields 14 and 15: 12th and 13th after the name; in clock ticks.
        let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
        ticks as f64 / 100.0
    }

    pub fn rss_kb(&self) -> u64 {
        status_kb(self.pid(), "VmRSS:")
    }

    /// Samples the resident memory (VmRSS) every 100 ms until stopped, keeping the highest:
    /// the peak of this phase (VmHWM would be the whole life's, earlier phases included).
    pub fn rss_sampler(&self, peak: Arc<AtomicU64>) -> Sampler {
        let pid = self.pid();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let t = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                peak.fetch_max(status_kb(pid, "VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Sampler {
            stop,
            thread: Some(t),
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts on the same file; how long until /healthz answers.
    pub fn time_to_healthy(data: &Path, old: &mut Server) -> Duration {
        let (s, started) = Server::spawn(data, Some(&old.admin), &old.extra.clone());
        let api = Api::new(&s.base, &s.admin);
        let deadline = Instant::now() + Duration::from_secs(600);
        while api.get("/healthz").is_none() {
            assert!(Instant::now() < deadline, "the server did not come back");
            std::thread::sleep(Duration::from_millis(5));
        }
        let took = started.elapsed();
        *old = s;
        took
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct Sampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
