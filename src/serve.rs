//! `webhooks serve`: binds, opens and bootstraps the data file, starts delivery, HTTP and
//! retention, and on SIGINT/SIGTERM stops them in order (HTTP, dispatch, workers, writer).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender as ChannelSender};

use crate::config::{ConfigError, LogFormat, ServeArgs};
use crate::delivery::{Pool, SenderConfig, WebhookSender};
use crate::domain::ApiKey;
use crate::domain::secret::hash_token;
use crate::http::AppState;
use crate::http::client_addr::TrustedProxies;
use crate::http::limits::Limits;
use crate::http::portal::Portal;
use crate::http::portal::sessions::LoginTokens;
use crate::http::server::HttpServerHandle;
use crate::metrics::Metrics;
use crate::store::postgres::{PgOptions, PgStore};
use crate::store::prelude::*;
use crate::store::redb::RedbStore;
use crate::store::{OpenError, Pruned, SharedStore, StoreError};

/// redb's page cache; its default (1 GiB) is far more than a small appliance should hold.
const CACHE_BYTES: usize = 64 * 1024 * 1024;
/// How long POSTs in flight may finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
const PRUNE_BATCH: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot start the HTTP server: {0}")]
    Http(std::io::Error),
}

impl StartError {
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Config(_) => 2,
            _ => 1,
        }
    }
}

/// The secrets made on the first start of a data file, printed once.
pub struct FirstStart {
    pub admin_token: String,
    /// The operator gave the admin token (`--admin-token`, `WEBHOOKS_ADMIN_TOKEN`): it is
    /// theirs already, so it is never printed or written anywhere.
    pub admin_token_given: bool,
    pub api_key: String,
}

/// A running appliance.
pub struct Server {
    pub addr: SocketAddr,
    /// "http", or "https" with --tls-cert.
    pub scheme: &'static str,
    pub first_start: Option<FirstStart>,
    pub store: SharedStore,
    http: HttpServerHandle,
    delivery: Pool,
    retention: Option<(ChannelSender<()>, JoinHandle<()>)>,
    retention_days: u32,
}

impl Server {
    pub fn start(args: &ServeArgs) -> Result<Self, StartError> {
        args.validate()?;
        raise_open_file_limit();
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
            _ => None,
        };
        // The store first: a second process on the data file (or a live node's id) stops here.
        let store: SharedStore = match &args.database {
            None => RedbStore::open(&args.data, CACHE_BYTES)?,
            Some(url) => PgStore::open(
                url,
                PgOptions {
                    node_id: args.node_id(),
                    lease: Duration::from_secs(args.lease_secs()),
                    request_timeout: args.request_timeout(),
                },
            )?,
        };
        let listener =
            TcpListener::bind(args.listen).map_err(|e| StartError::Bind(args.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Bind(args.listen, e))?;
        let first_start = bootstrap(store.as_ref(), args.admin_token.as_deref())?;
        let form_key = store.form_key()?;
        let interrupted = store.interrupt_in_flight()?;
        if interrupted > 0 {
            tracing::warn!(
                count = interrupted,
                "deliveries that were in flight when the last process stopped are now interrupted"
            );
        }
        let metrics = Arc::new(Metrics::new());
        let sender = WebhookSender::new(&SenderConfig {
            connect_timeout: args.connect_timeout(),
            request_timeout: args.request_timeout(),
            block_private_networks: args.block_private_networks,
            roots: args
                .ca_file
                .as_deref()
                .map(crate::tls::trust_roots)
                .transpose()?,
        });
        let delivery = Pool::start(
            store.clone(),
            sender,
            args.workers,
            args.max_hold_hours * 3600,
            metrics.clone(),
        );
        let http_workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let http = crate::http::server::start(
            listener,
            AppState {
                store: store.clone(),
                metrics,
                portal: Arc::new(Portal {
                    secure_cookies: tls.is_some(),
                    login_tokens: LoginTokens::new(form_key),
                    ..Portal::default()
                }),
                node_id: args.node_id().into(),
                public_url: args
                    .public_url
                    .clone()
                    .unwrap_or_else(|| {
                        let scheme = if tls.is_some() { "https" } else { "http" };
                        format!("{scheme}://{addr}")
                    })
                    .trim_end_matches('/')
                    .into(),
                limits: Arc::new(Limits::new(
                    TrustedProxies::new(args.trusted_proxies.clone()),
                    args.max_connections_per_ip,
                    Duration::from_secs(args.read_timeout_secs),
                    args.max_auth_failures_per_min,
                    args.max_endpoints_per_customer,
                    args.max_sends_per_customer_per_min,
                )),
            },
            http_workers,
            tls,
        )
        .map_err(StartError::Http)?;
        let retention = start_retention(store.clone(), args.retention_days);
        tracing::info!(%addr, data = %store.location(), workers = args.workers, "webhooks is serving");
        Ok(Self {
            addr,
            scheme: if args.tls_cert.is_some() {
                "https"
            } else {
                "http"
            },
            first_start,
            store,
            http,
            delivery,
            retention: Some(retention),
            retention_days: args.retention_days,
        })
    }

    /// The lines printed to stdout at start: the portal address always; on the first start
    /// of a data file, the secrets when stdout is a terminal, else only where they were
    /// written (`secrets_file`), so that they do not end up in a journal or a pipe.
    pub fn banner(&self, terminal: bool, secrets_file: &Path) -> std::io::Result<String> {
        let mut s = format!("portal: {}://{}/\n", self.scheme, self.addr);
        if let Some(f) = &self.first_start {
            let admin = if f.admin_token_given {
                String::new()
            } else {
                format!("admin token: {}\n", f.admin_token)
            };
            let secrets = format!("{admin}api key (customer default): {}\n", f.api_key);
            if terminal {
                s.push_str(&secrets);
                s.push_str("(shown only this once: keep them somewhere safe)\n");
            } else {
                write_private(secrets_file, &secrets)?;
                let what = if f.admin_token_given {
                    "the API key of customer default is"
                } else {
                    "the admin token and the API key of customer default are"
                };
                s.push_str(&format!(
                    "first start: {what} in {} (readable by you only)\n",
                    secrets_file.display()
                ));
            }
        }
        Ok(s)
    }

    /// Runs a retention pass now, as the hourly one does.
    pub fn prune_now(&self) {
        prune_once(self.store.as_ref(), self.retention_days);
    }

    /// Stops taking requests, lets deliveries in flight finish for a few seconds, returns
    /// unstarted ones to `pending`, and flushes the store.
    pub fn shutdown(mut self) {
        self.http.stop();
        self.delivery.shutdown(SHUTDOWN_GRACE);
        if let Some((stop, thread)) = self.retention.take() {
            drop(stop);
            let _ = thread.join();
        }
        self.store.close();
    }
}

/// On a file that has no admin token yet (a first start, or one that died half-way), makes
/// the admin token and the customer `default` with a key: the secrets printed once.
/// Otherwise only replaces the admin token when one is given.
fn bootstrap(
    store: &dyn Store,
    given_token: Option<&str>,
) -> Result<Option<FirstStart>, StoreError> {
    if let Some(stored) = store.admin_hash() {
        if let Some(token) = given_token
            && hash_token(token) != stored
        {
            // A new admin token: every operator session made with the old one ends.
            store.set_admin_token(token)?;
            let ended = store.end_operator_sessions()?;
            tracing::info!(
                sessions_ended = ended,
                "the admin token changed: operator sessions made with the old one ended"
            );
        }
        return Ok(None);
    }
    // Nodes starting together on a new database may both get here: one wins each step.
    let (customer_id, key) = match store.find_customer("default")? {
        Some(c) => (c.id.clone(), store.create_api_key(&c.id)?),
        None => match store.create_customer("default".into()) {
            Ok(made) => (made.customer.id, made.key),
            Err(StoreError::Invalid(_)) => {
                let c = store
                    .find_customer("default")?
                    .ok_or(StoreError::NotFound)?;
                (c.id.clone(), store.create_api_key(&c.id)?)
            }
            Err(e) => return Err(e),
        },
    };
    let api_key = (key.record.id, key.plaintext);
    let admin_token = given_token.map_or_else(
        || ApiKey::generate(ApiKey::ADMIN_PREFIX).as_str().to_owned(),
        str::to_owned,
    );
    // Last: until the token is stored, the next start bootstraps again.
    if !store.init_admin_token(&admin_token)? {
        // Another node bootstrapped first and printed its secrets: this key is not needed.
        let _ = store.delete_api_key(&customer_id, &api_key.0);
        return Ok(None);
    }
    Ok(Some(FirstStart {
        admin_token,
        admin_token_given: given_token.is_some(),
        api_key: api_key.1,
    }))
}

/// One retention pass: events (with their deliveries) older than `days` by the store's clock,
/// then what has expired (Idempotency-Keys, sessions, links), each in small transactions.
pub fn prune_once(store: &dyn Store, days: u32) {
    let cutoff = store.clock().now_ms() - i64::from(days) * 86_400_000;
    let mut after = String::new();
    loop {
        match store.prune_before(cutoff, &after, PRUNE_BATCH) {
            Ok(Pruned {
                last: Some(last), ..
            }) => after = last,
            Ok(_) => break,
            Err(e) => {
                tracing::error!(error = %e, "pruning old events failed");
                break;
            }
        }
    }
    loop {
        match store.prune_expired(PRUNE_BATCH) {
            Ok(n) if n == PRUNE_BATCH => {}
            Ok(_) => break,
            Err(e) => {
                tracing::error!(error = %e, "pruning expired keys, sessions and links failed");
                break;
            }
        }
    }
}

fn start_retention(store: SharedStore, days: u32) -> (ChannelSender<()>, JoinHandle<()>) {
    let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
    let thread = std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || {
            loop {
                prune_once(store.as_ref(), days);
                match stopped.recv_timeout(PRUNE_EVERY) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        })
        .expect("spawn the retention thread");
    (stop, thread)
}

/// Every connection and data file is an open file: take the hard limit, not the soft one.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// Where a first start that is not on a terminal leaves its secrets: beside the data file.
pub fn first_start_file(data: &Path) -> PathBuf {
    let mut name = data.as_os_str().to_owned();
    name.push(".first-start.txt");
    PathBuf::from(name)
}

/// Writes `text` to a new file only its owner can read (replacing an earlier one).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // The database crates say at info what we report ourselves.
        tracing_subscriber::EnvFilter::new(
            "info,refinery_core=warn,postgres=warn,tokio_postgres=warn",
        )
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Waits for SIGINT or SIGTERM, or for the node to lose its place in the cluster (then true).
fn wait_for_signal(store: &dyn Store) -> std::io::Result<bool> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let lost = async {
            while !store.lost() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|_| false),
            _ = term.recv() => Ok(false),
            _ = lost => Ok(true),
        }
    })
}

/// The `serve` command: runs until a signal, exit 0 after an orderly stop.
pub fn run(args: ServeArgs) -> ExitCode {
    init_logging(args.log_format);
    let server = match Server::start(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let secrets_file = match args.database {
        None => first_start_file(&args.data),
        Some(_) => std::env::current_dir()
            .unwrap_or_default()
            .join("webhooks.first-start.txt"),
    };
    match server.banner(terminal, &secrets_file) {
        Ok(banner) => print!("{banner}"),
        Err(e) => {
            eprintln!(
                "error: cannot write the first start's secrets to {}: {e}",
                secrets_file.display()
            );
            server.shutdown();
            return ExitCode::from(1);
        }
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let lost = match wait_for_signal(server.store.as_ref()) {
        Ok(lost) => lost,
        Err(e) => {
            tracing::error!(error = %e, "cannot wait for signals");
            false
        }
    };
    tracing::info!("shutting down");
    server.shutdown();
    if lost {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
