//! The client's side of the API: a JSON client for one server and one bearer token, and why a
//! command failed (`ClientError`), said in one line with an exit code.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use super::terminal_safe;
use crate::http::api::backup::{DEVICE_HEADER, INODE_HEADER};
use crate::store::{FileIdentity, file_identity};

/// Why a client command failed: `Usage` and the server's 4xx for bad input exit 2, the rest 1.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach {0}: is `webhooks serve` running?")]
    Unreachable(String),
    #[error(
        "TLS: {0} (if the server's certificate comes from a private CA, pass --server-ca-file)"
    )]
    Tls(String),
    #[error("the server refused the credentials (401): check {0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Failed(String),
}

impl ClientError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ClientError::Usage(_) | ClientError::Rejected(_) => ExitCode::from(2),
            _ => ExitCode::from(1),
        }
    }
}

/// What a 404 means, naming the object the path is about and the command that lists them.
fn not_found(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let mut parts = path.trim_start_matches("/api/v1/").split('/');
    let (kind, id) = (parts.next().unwrap_or_default(), parts.next());
    let (what, list) = match kind {
        "endpoints" => ("endpoint", "webhooks endpoints list"),
        "deliveries" => ("delivery", "webhooks deliveries list"),
        "events" => ("event", "webhooks deliveries list"),
        "customers" => ("customer", "webhooks customers list"),
        _ => return format!("not found: {path}"),
    };
    match id {
        Some(id) => {
            format!("no {what} {id} (or it is not this key's customer's): `{list}` shows them")
        }
        None => format!("not found: {path}"),
    }
}

/// The first start's secrets file in this directory, if there is one (where `webhooks serve`
/// leaves it when its output is not a terminal).
fn first_start_file_here() -> Option<String> {
    let data = std::env::var("WEBHOOKS_DATA").unwrap_or_else(|_| "./webhooks.redb".into());
    [
        crate::serve::first_start_file(Path::new(&data)),
        Path::new("webhooks.first-start.txt").to_path_buf(),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .map(|p| p.display().to_string())
}

/// Prints the error as one line and gives the exit code.
pub fn finish(result: Result<(), ClientError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", terminal_safe(&e.to_string()));
            e.exit_code()
        }
    }
}

/// A JSON client for one server and one bearer token.
pub struct Client {
    server: String,
    token: Option<String>,
    /// Which flag gave the token, for the 401 message.
    token_flag: &'static str,
    pub(super) agent: ureq::Agent,
    /// The trust roots for an HTTPS server, when `--server-ca-file` is given.
    tls: Option<ureq::tls::TlsConfig>,
    /// Why `--server-ca-file` could not be used, told at the first request.
    ca_error: Option<String>,
}

impl Client {
    /// `server` may leave out the scheme (`localhost:8080` means `http://localhost:8080`).
    pub fn new(
        server: &str,
        ca_file: Option<&Path>,
        token: Option<String>,
        token_flag: &'static str,
    ) -> Self {
        let (tls, ca_error) = match ca_file.map(crate::tls::trust_roots) {
            None => (None, None),
            Some(Ok(roots)) => (
                Some(
                    ureq::tls::TlsConfig::builder()
                        .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots)))
                        .build(),
                ),
                None,
            ),
            Some(Err(e)) => (None, Some(e.to_string())),
        };
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(30)));
        if let Some(tls) = &tls {
            config = config.tls_config(tls.clone());
        }
        let agent = config.build().new_agent();
        // An empty variable (`WEBHOOKS_ADMIN_TOKEN=`) gives no credentials.
        let token = token.filter(|t| !t.trim().is_empty());
        let server = server.trim().trim_end_matches('/');
        let server = if server.contains("://") {
            server.to_owned()
        } else {
            format!("http://{server}")
        };
        Self {
            server,
            token,
            token_flag,
            agent,
            tls,
            ca_error,
        }
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    fn token(&self) -> Result<&str, ClientError> {
        let token = self.token.as_deref().ok_or_else(|| {
            let printed = match first_start_file_here() {
                Some(f) => format!("the first start of `webhooks serve` wrote them to {f}"),
                None => "the first start of `webhooks serve` printed them".to_owned(),
            };
            ClientError::Usage(format!(
                "no credentials: pass {} ({printed})",
                self.token_flag
            ))
        })?;
        // The wrong kind of secret is named as such rather than answered "refused".
        let wants_admin = self.token_flag.contains("ADMIN_TOKEN");
        if wants_admin && token.starts_with(crate::domain::ApiKey::CUSTOMER_PREFIX) {
            return Err(ClientError::Usage(format!(
                "{} is given a customer API key ({}…); this command needs the admin token ({}…)",
                self.token_flag,
                crate::domain::ApiKey::CUSTOMER_PREFIX,
                crate::domain::ApiKey::ADMIN_PREFIX
            )));
        }
        if !wants_admin && token.starts_with(crate::domain::ApiKey::ADMIN_PREFIX) {
            return Err(ClientError::Usage(format!(
                "{} is given the admin token ({}…); it needs a customer API key ({}…)",
                self.token_flag,
                crate::domain::ApiKey::ADMIN_PREFIX,
                crate::domain::ApiKey::CUSTOMER_PREFIX
            )));
        }
        Ok(token)
    }

    pub fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &str) -> Result<Value, ClientError> {
        self.call("POST", path, Some(body))
    }

    pub fn patch(&self, path: &str, body: &str) -> Result<Value, ClientError> {
        self.call("PATCH", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.call("DELETE", path, None)
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> Result<Value, ClientError> {
        if let Some(e) = &self.ca_error {
            return Err(ClientError::Usage(e.clone()));
        }
        let url = format!("{}{}", self.server, path);
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.token()?))
            .header("content-type", "application/json");
        let req = req
            .body(body.unwrap_or("").as_bytes().to_vec())
            .map_err(|_| {
                ClientError::Usage(format!("{} is not a valid server URL", self.server))
            })?;
        let mut resp = self
            .agent
            .run(req)
            .map_err(|e| self.transport_error(e, &url))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let message = || {
            value["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("the server answered {status}"))
        };
        match status {
            200..=299 => Ok(value),
            401 => Err(ClientError::Unauthorized(self.token_flag)),
            404 => Err(ClientError::Rejected(not_found(path))),
            400..=499 => Err(ClientError::Rejected(message())),
            _ => Err(ClientError::Failed(format!(
                "the server failed ({status}): {}",
                message()
            ))),
        }
    }

    /// What a failed request says: a TLS failure as such, an unreachable server as such.
    pub(super) fn transport_error(&self, e: ureq::Error, url: &str) -> ClientError {
        match e {
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
                ClientError::Tls(e.to_string())
            }
            ureq::Error::Io(io) if io.get_ref().is_some_and(|e| e.is::<rustls::Error>()) => {
                ClientError::Tls(io.to_string())
            }
            ureq::Error::Io(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Timeout(_) => ClientError::Unreachable(self.server.clone()),
            e => ClientError::Failed(format!("request to {url} failed: {e}")),
        }
    }

    /// Downloads a backup to `out`. Never writes over the server's live data file (the answer
    /// names its device and inode; any path or link to it is refused), never replaces an
    /// existing file unless `force`, and writes a temporary file beside `out` (owner-only),
    /// synced, then renamed into place. Returns the bytes written.
    pub fn download_backup(&self, out: &Path, force: bool) -> Result<u64, ClientError> {
        let exists = std::fs::symlink_metadata(out).is_ok();
        let url = format!("{}/api/v1/backup", self.server);
        // A large copy may take long: bound connecting and the wait for the answer, not the
        // whole transfer.
        if let Some(e) = &self.ca_error {
            return Err(ClientError::Usage(e.clone()));
        }
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(600)));
        if let Some(tls) = &self.tls {
            config = config.tls_config(tls.clone());
        }
        let agent = config.build().new_agent();
        let req = ureq::http::Request::builder()
            .method("POST")
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.token()?))
            .body(Vec::new())
            .map_err(|_| {
                ClientError::Usage(format!("{} is not a valid server URL", self.server))
            })?;
        let mut resp = agent.run(req).map_err(|e| self.transport_error(e, &url))?;
        match resp.status().as_u16() {
            200 => {}
            401 => return Err(ClientError::Unauthorized(self.token_flag)),
            s => {
                // A JSON error says why (a PostgreSQL deployment: use pg_dump).
                let text = resp
                    .body_mut()
                    .with_config()
                    .limit(64 * 1024)
                    .read_to_string()
                    .unwrap_or_default();
                let why = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("the server answered {s}"));
                return Err(ClientError::Failed(why));
            }
        }
        let header =
            |name: &str| -> Option<u64> { resp.headers().get(name)?.to_str().ok()?.parse().ok() };
        let live = match (header(DEVICE_HEADER), header(INODE_HEADER)) {
            (Some(device), Some(inode)) => Some(FileIdentity { device, inode }),
            _ => None,
        };
        let refuse_live = || -> Result<(), ClientError> {
            if live.is_some() && file_identity(out).ok() == live {
                return Err(ClientError::Usage(format!(
                    "{} is the server's live data file: a backup must go elsewhere",
                    out.display()
                )));
            }
            Ok(())
        };
        // The live file first: --force would not make that target right.
        refuse_live()?;
        if exists && !force {
            return Err(ClientError::Usage(format!(
                "{} exists; pass --force to replace it",
                out.display()
            )));
        }
        let cannot =
            |e: std::io::Error| ClientError::Failed(format!("cannot write {}: {e}", out.display()));
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // Created 0600 by tempfile; removed if anything below fails.
        let mut tmp = tempfile::Builder::new()
            .prefix(".webhooks-backup-")
            .tempfile_in(dir)
            .map_err(cannot)?;
        let n = std::io::copy(&mut resp.into_body().into_reader(), tmp.as_file_mut())
            .map_err(cannot)?;
        tmp.as_file().sync_all().map_err(cannot)?;
        // Checked again just before the rename: the name may have changed hands meanwhile.
        refuse_live()?;
        if force {
            tmp.persist(out).map_err(|e| cannot(e.error))?;
        } else {
            // Never replaces a file that appeared meanwhile.
            tmp.persist_noclobber(out).map_err(|e| {
                if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                    ClientError::Usage(format!(
                        "{} appeared while downloading; pass --force to replace it",
                        out.display()
                    ))
                } else {
                    cannot(e.error)
                }
            })?;
        }
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(n)
    }

    /// Every item of a paged list.
    pub fn get_all(&self, path: &str) -> Result<Vec<Value>, ClientError> {
        let mut all = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let page = match &before {
                Some(b) => self.get(&format!("{path}{sep}limit=250&before={b}"))?,
                None => self.get(&format!("{path}{sep}limit=250"))?,
            };
            if let Some(items) = page["data"].as_array() {
                all.extend(items.iter().cloned());
            }
            match page["next"].as_str() {
                Some(n) => before = Some(n.to_owned()),
                None => return Ok(all),
            }
        }
    }
}
