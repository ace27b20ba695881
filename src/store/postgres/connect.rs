//! Reaching PostgreSQL: the URL (hosts, TLS modes, `sslrootcert`), connections of a node's
//! own for its long-lived threads, what PostgreSQL's errors mean in a line an operator can
//! act on, a URL without its password for logs, and the warning for a multi-host URL whose
//! primary has no synchronous standby.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::{OpenError, Result, StoreError};

/// Opens connections of its own (outside the pool) for the long-lived threads.
#[derive(Clone)]
pub(super) struct Connector {
    pub(super) config: postgres::Config,
    pub(super) tls: MakeRustlsConnect,
}

impl Connector {
    pub(super) fn connect(&self) -> Result<Client> {
        self.config
            .connect(self.tls.clone())
            .map_err(|e| StoreError::Unavailable(explain(&e)))
    }
}

/// What PostgreSQL said, in a line an operator can act on: the server's own message and
/// SQLSTATE (the client library prints a bare "db error"), or the connection's cause, with
/// what to do for the usual setup mistakes.
pub fn explain(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let advice = match code {
            "28P01" => "; check the user and password in the URL",
            "28000" => "; create the role, or fix the user in the URL (README: PostgreSQL setup)",
            "3D000" => "; create the database first (README: PostgreSQL setup)",
            "42501" => {
                "; the role needs rights on the database and its schema public: on PostgreSQL 15+ run GRANT CREATE ON SCHEMA public TO the role, or make it the database's owner (README: PostgreSQL setup)"
            }
            "53300" => "; the server has no free connection slots: raise max_connections",
            _ => "",
        };
        let detail = db.detail().map_or(String::new(), |d| format!(" ({d})"));
        return format!("{}{detail} [SQLSTATE {code}]{advice}", db.message());
    }
    let mut why = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        why = format!("{why}: {s}");
        source = s.source();
    }
    if why.contains("refused") {
        why.push_str("; is PostgreSQL running, and listening on that host and port?");
    }
    format!("cannot reach the database: {why}")
}

/// A URL naming several hosts is there to follow a promoted standby. At most once then needs
/// every commit on the standby before the primary acknowledges it: a claim the standby did
/// not have is `pending` again after a failover, and is POSTed a second time. Said at start,
/// once, when the primary this node reached has no synchronous standby.
pub(super) fn warn_without_sync_standby(client: &mut Client) {
    let row = client.query_one(
        "SELECT pg_is_in_recovery(), current_setting('synchronous_standby_names'),
                current_setting('synchronous_commit')",
        &[],
    );
    match row {
        Ok(r) => {
            let (in_recovery, names, commit): (bool, String, String) =
                (r.get(0), r.get(1), r.get(2));
            let synchronous =
                !names.trim().is_empty() && !matches!(commit.as_str(), "off" | "local");
            if !in_recovery && !synchronous {
                tracing::warn!(
                    synchronous_standby_names = %names,
                    synchronous_commit = %commit,
                    "the database URL names several hosts (to follow a promoted standby), but this primary has no synchronous standby: after a failover, deliveries claimed in the last moments before it are pending again and are sent a second time, and events accepted then are lost; set synchronous_standby_names and synchronous_commit = on (README: failover)"
                );
            }
        }
        Err(e) => {
            tracing::warn!(error = %explain(&e), "cannot read the database's replication settings")
        }
    }
}

/// The URL as postgres::Config takes it, where it points (without the password), and the TLS
/// connector: webpki roots, plus the URL's `sslrootcert` file if it names one.
pub(super) fn parse_url(
    url: &str,
) -> Result<(postgres::Config, String, MakeRustlsConnect), OpenError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut root_file = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| match p.strip_prefix("sslrootcert=") {
            Some(path) => {
                root_file = Some(path.to_owned());
                false
            }
            None => true,
        })
        .collect();
    let cleaned = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let location = redact(base);
    let bad = |reason: String| OpenError::Database {
        location: location.clone(),
        reason,
    };
    let mut config = postgres::Config::from_str(&cleaned)
        .map_err(|e| bad(format!("not a PostgreSQL URL ({e})")))?;
    if config.get_application_name().is_none() {
        config.application_name("webhooks");
    }
    config.connect_timeout(Duration::from_secs(10));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?;
    // As libpq: `verify-ca` and `verify-full` check the server's certificate (public roots
    // plus `sslrootcert`); `prefer` and `require` encrypt without checking it.
    let verify = kept.iter().any(|p| p.starts_with("sslmode=verify-"));
    let tls = if verify {
        let mut roots = rustls::RootCertStore::empty();
        for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
            let _ = roots.add(cert.clone());
        }
        if let Some(path) = root_file {
            let extra =
                crate::tls::trust_roots(Path::new(&path)).map_err(|e| bad(e.to_string()))?;
            for cert in extra {
                let _ = roots.add(rustls::pki_types::CertificateDer::from(cert.der().to_vec()));
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth()
    };
    Ok((config, location, MakeRustlsConnect::new(tls)))
}

/// `sslmode=prefer|require`: encryption without checking the server's certificate (libpq's
/// meaning); signatures are still checked, so the session key is the certificate holder's.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A URL without its password (for logs and errors).
pub(super) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a PostgreSQL URL)".into();
    };
    // Query parameters may carry a password (`?password=…`) or key files: never shown.
    let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
    let (auth, host) = match rest.rsplit_once('@') {
        Some((auth, host)) => (Some(auth), host),
        None => (None, rest),
    };
    match auth {
        Some(auth) => {
            let user = auth.split_once(':').map_or(auth, |(u, _)| u);
            format!("{scheme}://{user}@{host}")
        }
        None => format!("{scheme}://{host}"),
    }
}

#[cfg(test)]
mod redact_tests {
    #[test]
    fn a_password_never_shows() {
        for (url, shown) in [
            ("postgres://u:s3cret@db:5432/w", "postgres://u@db:5432/w"),
            (
                "postgresql://u:p%40ss@db/w?sslmode=require",
                "postgresql://u@db/w",
            ),
            ("postgres://u@db/w?password=s3cret", "postgres://u@db/w"),
            ("postgres://db/w", "postgres://db/w"),
            ("not a url s3cret", "(a PostgreSQL URL)"),
        ] {
            let r = super::redact(url);
            assert_eq!(r, shown);
            assert!(!r.contains("s3cret") && !r.contains("p%40ss"), "{r}");
        }
    }
}
