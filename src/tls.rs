//! TLS material: the server's certificate and key for `--tls-cert`/`--tls-key`, and the extra
//! trust roots of `--ca-file` for deliveries to receivers behind a private CA.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ConfigError;

/// The HTTPS server configuration from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, ConfigError> {
    let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        ConfigError(format!(
            "cannot read the TLS {what} {}: {e}",
            path.display()
        ))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("certificate", cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("certificate", cert, &e))?;
    if certs.is_empty() {
        return Err(bad("certificate", cert, &"no certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("key", key, &e))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            ConfigError(format!(
                "the TLS certificate and key do not go together: {e}"
            ))
        })
}

/// The public web roots plus every certificate in `ca_file`.
pub fn trust_roots(ca_file: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, ConfigError> {
    let bad = |e: &dyn std::fmt::Display| {
        ConfigError(format!(
            "cannot read the CA file {}: {e}",
            ca_file.display()
        ))
    };
    let pem = std::fs::read(ca_file).map_err(|e| bad(&e))?;
    let mut roots: Vec<ureq::tls::Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    let public = roots.len();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| bad(&e))? {
            roots.push(c.to_owned());
        }
    }
    if roots.len() == public {
        return Err(bad(&"no certificate in it"));
    }
    Ok(roots)
}
