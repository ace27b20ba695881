//! The `serve` configuration: defaults, then `WEBHOOKS_*` environment, then flags (clap does
//! the layering), checked once by `validate`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ipnet::IpNet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = "WEBHOOKS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The data file, created on first start
    #[arg(long, env = "WEBHOOKS_DATA", default_value = "./webhooks.redb")]
    pub data: PathBuf,
    /// Store everything in PostgreSQL instead of the data file (postgres://user:pass@host/db,
    /// TLS by its sslmode); any number of nodes may share one database
    #[arg(long, env = "WEBHOOKS_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// With --database: how long a node's claims stay its own without a heartbeat; a node
    /// sends only while its lease outlasts --request-timeout-secs [default: 30, or
    /// --request-timeout-secs + 15 when that is more]
    #[arg(long, env = "WEBHOOKS_LEASE_SECS")]
    pub lease_secs: Option<u64>,
    /// Most POSTs in flight at once (worker threads, started as needed); every endpoint is
    /// guaranteed a quarter, a quick one may use what is idle
    #[arg(long, env = "WEBHOOKS_WORKERS", default_value_t = 512)]
    pub workers: usize,
    /// Admin token; generated on first start if not given, replaces the stored one if given
    #[arg(long, env = "WEBHOOKS_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Refuse to deliver to loopback, private, link-local and unique-local addresses [default: off]
    #[arg(long, env = "WEBHOOKS_BLOCK_PRIVATE_NETWORKS")]
    pub block_private_networks: bool,
    /// Events and deliveries older than this are deleted
    #[arg(long, env = "WEBHOOKS_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u32,
    /// Time allowed to connect to a receiver
    #[arg(long, env = "WEBHOOKS_CONNECT_TIMEOUT_SECS", default_value_t = 5)]
    pub connect_timeout_secs: u64,
    /// Deadline for a whole delivery request, connect to last byte
    #[arg(long, env = "WEBHOOKS_REQUEST_TIMEOUT_SECS", default_value_t = 15)]
    pub request_timeout_secs: u64,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key
    #[arg(long, env = "WEBHOOKS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert
    #[arg(long, env = "WEBHOOKS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Also trust this CA (PEM) when delivering over HTTPS, for receivers behind a private CA
    #[arg(long, env = "WEBHOOKS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Log format on stderr
    #[arg(long, env = "WEBHOOKS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// A load balancer or proxy in front (address or CIDR; repeat or comma-separate): its
    /// X-Forwarded-For names the client, and its connections are not capped
    #[arg(long = "trusted-proxy", env = "WEBHOOKS_TRUSTED_PROXY", value_delimiter = ',', value_parser = parse_net)]
    pub trusted_proxies: Vec<IpNet>,
    /// Open connections allowed from one client address
    #[arg(long, env = "WEBHOOKS_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: u32,
    /// Time allowed to send a whole request body (the headers get 5 s)
    #[arg(long, env = "WEBHOOKS_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub read_timeout_secs: u64,
    /// Failed bearer checks allowed from one client address a minute; then 429 for the rest of it
    #[arg(long, env = "WEBHOOKS_MAX_AUTH_FAILURES_PER_MIN", default_value_t = 20)]
    pub max_auth_failures_per_min: u32,
    /// Where people reach the portal (portal sign-in links start with it) [default: the
    /// listen address]
    #[arg(long, env = "WEBHOOKS_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// This node's name, shown by `webhooks status` [default: the host name]
    #[arg(long, env = "WEBHOOKS_NODE_ID")]
    pub node_id: Option<String>,
    /// Endpoints one customer may have
    #[arg(
        long,
        env = "WEBHOOKS_MAX_ENDPOINTS_PER_CUSTOMER",
        default_value_t = 100
    )]
    pub max_endpoints_per_customer: u32,
    /// Test sends and resends one customer may start a minute (each delivery a recover makes counts)
    #[arg(
        long,
        env = "WEBHOOKS_MAX_SENDS_PER_CUSTOMER_PER_MIN",
        default_value_t = 120
    )]
    pub max_sends_per_customer_per_min: u32,
    /// How long a delivery may wait while its endpoint is paused (its receiver down), from
    /// its creation; an endpoint's own `max_hold_secs` wins; 0: never hold (fail fast)
    #[arg(long, env = "WEBHOOKS_MAX_HOLD_HOURS", default_value_t = 24)]
    pub max_hold_hours: u64,
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))
}

/// A setting that cannot work; reported as a usage error (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ServeArgs {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError(m.to_owned()));
        if !(1..=4096).contains(&self.workers) {
            return bad("--workers must be from 1 to 4096");
        }
        if self.retention_days == 0 {
            return bad("--retention-days must be at least 1");
        }
        if !(1..=300).contains(&self.connect_timeout_secs) {
            return bad("--connect-timeout-secs must be from 1 to 300");
        }
        if !(1..=600).contains(&self.request_timeout_secs) {
            return bad("--request-timeout-secs must be from 1 to 600");
        }
        if self.max_connections_per_ip == 0 {
            return bad("--max-connections-per-ip must be at least 1");
        }
        // The lease is a PostgreSQL setting: the data file has one process and no lease.
        let lease = self.lease_secs();
        if self.database.is_some() && (lease < self.request_timeout_secs + 2 || lease > 3600) {
            return bad(
                "--lease-secs must be at least --request-timeout-secs + 2 (and at most 3600): a node sends only while its lease outlasts a request",
            );
        }
        if let Some(url) = &self.database
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return bad("--database must be a postgres:// (or postgresql://) URL");
        }
        if let Some(u) = &self.public_url
            && !((u.starts_with("http://") || u.starts_with("https://")) && u.len() > 8)
        {
            return bad("--public-url must be an http:// or https:// URL");
        }
        if !(1..=3600).contains(&self.read_timeout_secs) {
            return bad("--read-timeout-secs must be from 1 to 3600");
        }
        if self.max_auth_failures_per_min == 0 {
            return bad("--max-auth-failures-per-min must be at least 1");
        }
        if self.max_endpoints_per_customer == 0 {
            return bad("--max-endpoints-per-customer must be at least 1");
        }
        if self.max_sends_per_customer_per_min == 0 {
            return bad("--max-sends-per-customer-per-min must be at least 1");
        }
        if self.max_hold_hours > 720 {
            return bad("--max-hold-hours must be from 0 to 720 (30 days)");
        }
        if self
            .node_id
            .as_ref()
            .is_some_and(|n| n.is_empty() || n.len() > 128 || n.chars().any(char::is_control))
        {
            return bad("--node-id must be 1 to 128 printable characters");
        }
        if self.admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            return bad("--admin-token must be at least 16 characters");
        }
        Ok(())
    }

    /// `--node-id`, or the host name.
    pub fn node_id(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into())
        })
    }

    /// `--lease-secs`, or by default 30 s, or the request timeout + 15 s when that is more.
    pub fn lease_secs(&self) -> u64 {
        self.lease_secs
            .unwrap_or_else(|| (self.request_timeout_secs + 15).max(30))
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}
