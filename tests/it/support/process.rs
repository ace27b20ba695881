//! The real binary as a child process, started one way for every test that needs one: a
//! server (`Proc`), a client subcommand (`webhooks`, `run`, `Running`), and producers that
//! ingest until told to stop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use super::{Api, Lines, TestServer, lines_of, next_line_with, wait_for};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_webhooks");

pub struct Proc {
    pub child: Child,
    pub api: Api,
    pub banner: Vec<String>,
    /// The lines of the first start's secrets file, if this was one.
    pub secrets: Vec<String>,
}

impl Proc {
    /// Starts `webhooks serve` on a free port and reads its banner.
    pub fn start(data: &Path) -> Self {
        Self::start_with(data, &["--workers", "4"])
    }

    pub fn start_with(data: &Path, extra: &[&str]) -> Self {
        let mut cmd = Command::new(BIN);
        if let Some(url) = crate::support::database_for(data) {
            // The first start's secrets go to the working directory: the test's own.
            cmd.arg("serve")
                .args(["--database", &url])
                .current_dir(data.parent().unwrap());
        } else {
            cmd.arg("serve").arg("--data").arg(data);
        }
        cmd.stderr(Stdio::null());
        Self::spawn(cmd, extra)
    }

    /// A node on the database that stands for `data`, with a short lease so tests see it
    /// lapse.
    pub fn node(data: &Path, id: &str, workers: &str) -> Self {
        Self::start_with(
            data,
            &[
                "--node-id",
                id,
                "--workers",
                workers,
                "--lease-secs",
                "4",
                "--request-timeout-secs",
                "2",
            ],
        )
    }

    /// `webhooks serve` in `dir` with exactly these flags (say, a `--database` of its own).
    /// Its log (warnings and up) goes to `dir/server.log`, for the test to show on failure.
    pub fn start_in(dir: &Path, extra: &[&str]) -> Self {
        let mut cmd = Command::new(BIN);
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        cmd.arg("serve").current_dir(dir).stderr(log);
        Self::spawn(cmd, extra)
    }

    /// Starts `cmd` (its stderr set, or discarded) and reads its banner.
    fn spawn(mut cmd: Command, extra: &[&str]) -> Self {
        let mut child = cmd
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = lines_of(child.stdout.take().unwrap());
        let first = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the server prints its portal line");
        let addr = first
            .strip_prefix("portal: http://")
            .and_then(|s| s.strip_suffix('/'))
            .unwrap()
            .to_owned();
        let mut banner = vec![first];
        // Where the secrets are follows at once, on a first start (stdout is a pipe here).
        while let Ok(l) = lines.recv_timeout(Duration::from_millis(300)) {
            banner.push(l);
        }
        let secrets = banner
            .iter()
            .find_map(|l| {
                let rest = l.strip_prefix("first start: ")?;
                let path = rest.split(" are in ").nth(1)?.split(" (readable").next()?;
                Some(std::fs::read_to_string(path).unwrap())
            })
            .map(|text| text.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        Self {
            child,
            api: Api::new(&format!("http://{addr}")),
            banner,
            secrets,
        }
    }

    /// A secret from the first start's file.
    pub fn secret(&self, label: &str) -> String {
        self.secrets
            .iter()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label:?} in {:?}", self.banner))
            .trim()
            .to_owned()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    pub fn wait_exit(&mut self) -> i32 {
        wait_for(20, "the process to exit", || {
            self.child
                .try_wait()
                .unwrap()
                .map(|s| s.code().unwrap_or(-1))
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process that is killed when the test ends.
pub struct Running {
    pub child: Child,
    pub out: Lines,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = lines_of(child.stdout.take().unwrap());
        Self { child, out }
    }

    pub fn line_with(&self, needle: &str) -> String {
        next_line_with(&self.out, needle, 20)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn webhooks(s: &TestServer, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("WEBHOOKS_SERVER", &s.api.base)
        .env("WEBHOOKS_ADMIN_TOKEN", &s.admin)
        .env_remove("WEBHOOKS_API_KEY");
    cmd
}

/// Runs to the end; (exit code, stdout, stderr).
pub fn run(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Each line of a `--json` output, parsed (every line must be a JSON object).
pub fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// Events accepted (202) while `stop` is not set, from `threads` concurrent producers.
pub fn ingest_until(
    base: &str,
    admin: &str,
    customer: &str,
    threads: usize,
    stop: &std::sync::atomic::AtomicBool,
) -> Vec<String> {
    use std::sync::atomic::Ordering;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(Duration::from_secs(10)))
                        .build()
                        .new_agent();
                    let mut accepted = Vec::new();
                    let mut i = 0;
                    while !stop.load(Ordering::Acquire) {
                        i += 1;
                        let body = json!({"customer_id": customer, "event": "transactions.fetched",
                                          "data": {"producer": t, "n": i}});
                        let sent = agent
                            .post(format!("{base}/api/v1/events"))
                            .header("authorization", format!("Bearer {admin}"))
                            .header("content-type", "application/json")
                            .send(body.to_string());
                        match sent {
                            Ok(mut r) if r.status().as_u16() == 202 => {
                                let v: serde_json::Value =
                                    serde_json::from_str(&r.body_mut().read_to_string().unwrap())
                                        .unwrap();
                                accepted.push(v["id"].as_str().unwrap().to_owned());
                            }
                            _ => break, // the server is gone
                        }
                    }
                    accepted
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}
