//! TLS for the API listener: a self-signed certificate made at start (SANs for the listen
//! address, `localhost` and the host name, as a freshly installed ESXi presents), or the
//! operator's own PEM files.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// Where the certificate comes from.
#[derive(Clone, Debug)]
pub enum CertSource {
    SelfSigned,
    Files {
        cert: std::path::PathBuf,
        key: std::path::PathBuf,
    },
}

/// A self-signed certificate and its key (PEM), for the names and addresses given.
pub fn self_signed(names: &[String], ips: &[IpAddr]) -> Result<(String, String), String> {
    let mut sans: Vec<String> = names.to_vec();
    sans.extend(ips.iter().map(|i| i.to_string()));
    sans.sort();
    sans.dedup();
    let key = rcgen::KeyPair::generate().map_err(|e| format!("generating a key: {e}"))?;
    let mut params =
        rcgen::CertificateParams::new(sans).map_err(|e| format!("certificate names: {e}"))?;
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "VMware, Inc.");
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("signing the certificate: {e}"))?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The rustls server configuration (HTTP/1.1 only, as hostd).
pub fn server_config(
    source: &CertSource,
    names: &[String],
    ips: &[IpAddr],
) -> Result<Arc<ServerConfig>, String> {
    let (cert_pem, key_pem) = match source {
        CertSource::SelfSigned => {
            let (c, k) = self_signed(names, ips)?;
            (c.into_bytes(), k.into_bytes())
        }
        CertSource::Files { cert, key } => (read_pem(cert)?, read_pem(key)?),
    };
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("reading certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate found in the PEM input".into());
    }
    let key: PrivateKeyDer<'static> = match rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| format!("reading the private key: {e}"))?
    {
        Some(k) => k,
        None => return Err("no private key found in the PEM input".into()),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
