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
    let key = rcgen::KeyPair::generate().map_err(|e| format!("generating a key: {e}"))?;
    let cn = names.first().cloned().unwrap_or_default();
    let cert = endpoint_params(names, ips, cn)?
        .self_signed(&key)
        .map_err(|e| format!("signing the certificate: {e}"))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// An endpoint certificate's parameters: the names and addresses as SANs, and the subject a
/// freshly installed ESXi presents.
fn endpoint_params(
    names: &[String],
    ips: &[IpAddr],
    common_name: String,
) -> Result<rcgen::CertificateParams, String> {
    let mut sans: Vec<String> = names.to_vec();
    sans.extend(ips.iter().map(|i| i.to_string()));
    sans.sort();
    sans.dedup();
    let mut params =
        rcgen::CertificateParams::new(sans).map_err(|e| format!("certificate names: {e}"))?;
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "VMware, Inc.");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    Ok(params)
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
    from_pem(&cert_pem, &key_pem)
}

fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| format!("reading certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate found in the PEM input".into());
    }
    let key: PrivateKeyDer<'static> = match rustls_pemfile::private_key(&mut &key_pem[..])
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

/// The fleet's certificate authority: one CA and one leaf key pair for every host (making a key
/// per host would cost more than the host itself). Each host still gets its own certificate,
/// for its own names and address, signed by the CA and made on its first connection, so a
/// client that trusts the CA (`GET /v1/ca.pem`, `serve --ca-out`) verifies every host.
pub struct SharedKey {
    ca_params: rcgen::CertificateParams,
    ca_key: rcgen::KeyPair,
    ca_pem: String,
    leaf: rcgen::KeyPair,
}

impl SharedKey {
    pub fn generate() -> Result<SharedKey, String> {
        let ca_key = rcgen::KeyPair::generate().map_err(|e| format!("generating a key: {e}"))?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|e| format!("CA parameters: {e}"))?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "esxi-sim");
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "esxi-sim fleet CA");
        let ca = ca_params
            .self_signed(&ca_key)
            .map_err(|e| format!("signing the CA: {e}"))?;
        let leaf = rcgen::KeyPair::generate().map_err(|e| format!("generating a key: {e}"))?;
        Ok(SharedKey {
            ca_pem: ca.pem(),
            ca_params,
            ca_key,
            leaf,
        })
    }

    /// The CA certificate (PEM) a client trusts to verify every host of the fleet.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A host's certificate chain (leaf, CA) and the leaf key, PEM.
    fn host_cert(&self, names: &[String], ips: &[IpAddr]) -> Result<(String, String), String> {
        let cn = names.get(1).or(names.first()).cloned().unwrap_or_default();
        let params = endpoint_params(names, ips, cn)?;
        let issuer = rcgen::Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params
            .signed_by(&self.leaf, &issuer)
            .map_err(|e| format!("signing the certificate: {e}"))?;
        Ok((
            format!("{}{}", cert.pem(), self.ca_pem),
            self.leaf.serialize_pem(),
        ))
    }
}

enum Source {
    Given(CertSource),
    Shared(Arc<SharedKey>),
}

/// An endpoint's TLS acceptor, made when the endpoint is bound (a single host) or on its first
/// connection (a fleet's host).
pub struct Acceptor {
    source: Source,
    names: Vec<String>,
    ips: Vec<IpAddr>,
    made: std::sync::OnceLock<Result<tokio_rustls::TlsAcceptor, String>>,
}

impl Acceptor {
    pub fn eager(source: CertSource) -> Acceptor {
        Acceptor {
            source: Source::Given(source),
            names: Vec::new(),
            ips: Vec::new(),
            made: std::sync::OnceLock::new(),
        }
    }
    pub fn lazy(key: Arc<SharedKey>) -> Acceptor {
        Acceptor {
            source: Source::Shared(key),
            ..Acceptor::eager(CertSource::SelfSigned)
        }
    }
    pub fn set_identity(&mut self, names: Vec<String>, ips: Vec<IpAddr>) {
        self.names = names;
        self.ips = ips;
    }
    /// Makes an eager acceptor now, so a bad certificate file fails at start.
    pub fn prepare(&self) -> Result<(), String> {
        match self.source {
            Source::Given(_) => self.get().map(|_| ()),
            Source::Shared(_) => Ok(()),
        }
    }
    pub fn get(&self) -> Result<tokio_rustls::TlsAcceptor, String> {
        self.made
            .get_or_init(|| {
                let cfg = match &self.source {
                    Source::Given(src) => server_config(src, &self.names, &self.ips)?,
                    Source::Shared(key) => {
                        let (c, k) = key.host_cert(&self.names, &self.ips)?;
                        from_pem(c.as_bytes(), k.as_bytes())?
                    }
                };
                Ok(tokio_rustls::TlsAcceptor::from(cfg))
            })
            .clone()
    }
}
