//! A vSphere SOAP client for the harness and the tests: real TLS (rustls), one keep-alive
//! connection re-opened when the server drops it, the session cookie, and faults decoded into
//! their type, message and fields. It shares the envelope reader with the simulator
//! (`esxi_sim::soap`), so both sides agree on what the wire looks like.

use std::sync::Arc;
use std::time::Duration;

use base64ct::{Base64, Encoding};
use bytes::Bytes;
use esxi_sim::api::MoRef;
use esxi_sim::soap::xml::{self, escape, Element};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;

/// What can go wrong talking to a host.
#[derive(Debug)]
pub enum ClientError {
    /// A SOAP fault: its type (`InvalidLogin`, `MismatchedBundle`, ...), message and detail.
    Fault {
        ty: String,
        message: String,
        detail: Box<Element>,
    },
    /// An HTTP answer that is not SOAP (status and body).
    Http(StatusCode, String),
    /// Could not connect, or the connection dropped without an answer (a rebooting host).
    Io(String),
    /// The answer did not parse.
    Protocol(String),
}

impl ClientError {
    pub fn fault_type(&self) -> Option<&str> {
        match self {
            ClientError::Fault { ty, .. } => Some(ty),
            _ => None,
        }
    }
    /// A field of the fault's detail (`bundleUuid`, `file`, `text`).
    pub fn field(&self, name: &str) -> Option<String> {
        match self {
            ClientError::Fault { detail, .. } => detail.child_text(name).map(str::to_string),
            _ => None,
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Fault { ty, message, .. } => write!(f, "{ty}: {message}"),
            ClientError::Http(s, b) => write!(f, "HTTP {s}: {}", b.trim()),
            ClientError::Io(m) => write!(f, "connection: {m}"),
            ClientError::Protocol(m) => write!(f, "protocol: {m}"),
        }
    }
}
impl std::error::Error for ClientError {}

/// An HTTP answer: status, headers, body.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How to trust the server's certificate.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Accept any certificate (ESXi's self-signed default; `--insecure`).
    Any,
    /// Only certificates signed by these PEM roots.
    Roots(Vec<u8>),
}

pub struct Client {
    scheme: String,
    host: String,
    port: u16,
    tls: Option<tokio_rustls::TlsConnector>,
    sender: Option<SendRequest<Full<Bytes>>>,
    cookie: Option<String>,
    /// `SOAPAction: "urn:vim25/<version>"`.
    pub api_version: String,
    pub timeout: Duration,
}

impl Client {
    /// A client for `https://host[:port][/sdk]` (or `http://`). Nothing connects yet.
    pub fn new(url: &str, trust: Trust) -> Result<Client, ClientError> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| ClientError::Protocol(format!("bad URL {url}: {e}")))?;
        let scheme = uri.scheme_str().unwrap_or("https").to_string();
        let host = uri
            .host()
            .ok_or_else(|| ClientError::Protocol(format!("no host in {url}")))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        let tls = (scheme == "https")
            .then(|| tls_connector(&trust))
            .transpose()?;
        Ok(Client {
            scheme,
            host,
            port,
            tls,
            sender: None,
            cookie: None,
            api_version: "6.7".into(),
            timeout: Duration::from_secs(60),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn cookie(&self) -> Option<&str> {
        self.cookie.as_deref()
    }
    pub fn set_cookie(&mut self, c: Option<String>) {
        self.cookie = c;
    }

    /// Replaces `*` in a URL the host returned with the address we connected to (what Ansible
    /// and pyVmomi scripts do).
    pub fn resolve_star(&self, url: &str) -> String {
        url.replacen('*', &self.host, 1)
    }

    async fn connect(&mut self) -> Result<(), ClientError> {
        let addr = format!("{}:{}", self.host, self.port);
        let tcp = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&addr))
            .await
            .map_err(|_| ClientError::Io(format!("connect to {addr} timed out")))?
            .map_err(|e| ClientError::Io(format!("connect to {addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let sender = match &self.tls {
            Some(tls) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| ClientError::Io(format!("server name {}: {e}", self.host)))?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| ClientError::Io(format!("TLS with {addr}: {e}")))?;
                let (s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| ClientError::Io(e.to_string()))?;
                tokio::spawn(conn);
                s
            }
            None => {
                let (s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                    .await
                    .map_err(|e| ClientError::Io(e.to_string()))?;
                tokio::spawn(conn);
                s
            }
        };
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends one HTTP request on the kept-alive connection (re-opened if it was closed).
    pub async fn http(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<HttpResponse, ClientError> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.connect().await?;
        }
        if let Some(s) = self.sender.as_mut() {
            if s.ready().await.is_err() {
                self.connect().await?;
            }
        }
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, format!("{}:{}", self.host, self.port))
            .header(hyper::header::USER_AGENT, "esxi-harness");
        for (k, v) in headers {
            b = b.header(*k, v);
        }
        if let Some(c) = &self.cookie {
            b = b.header(hyper::header::COOKIE, c.as_str());
        }
        let req = b
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let sender = self.sender.as_mut().expect("connected above");
        let fut = async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| ClientError::Io(e.to_string()))?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| ClientError::Io(e.to_string()))?
                .to_bytes();
            Ok::<_, ClientError>(HttpResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        let r = match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Io("no answer in time".into())),
        };
        if r.is_err() {
            self.sender = None;
        }
        r
    }

    /// Calls a method: `params` is the XML of the parameters after `_this`. Returns the
    /// `<MethodResponse>` element (its `returnval` children are the result).
    pub async fn call(
        &mut self,
        this: &MoRef,
        method: &str,
        params: &str,
    ) -> Result<Element, ClientError> {
        let mut call = format!("<{method} xmlns=\"urn:vim25\">");
        call.push_str(&moref_xml("_this", this));
        call.push_str(params);
        call.push_str(&format!("</{method}>"));
        self.post_soap(envelope(&call).into_bytes()).await
    }

    /// Posts a raw envelope (tests use it to send malformed ones).
    pub async fn post_soap(&mut self, body: Vec<u8>) -> Result<Element, ClientError> {
        let action = format!("\"urn:vim25/{}\"", self.api_version);
        let r = self
            .http(
                Method::POST,
                "/sdk",
                &[
                    ("content-type", "text/xml; charset=utf-8".into()),
                    ("soapaction", action),
                ],
                body,
            )
            .await?;
        if let Some(c) = r.headers.get(hyper::header::SET_COOKIE) {
            if let Ok(c) = c.to_str() {
                // Echo it back as pyVmomi does: the whole value.
                self.cookie = Some(c.to_string());
            }
        }
        let is_xml = r
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("xml"));
        if !is_xml {
            return Err(ClientError::Http(
                r.status,
                String::from_utf8_lossy(&r.body).into_owned(),
            ));
        }
        let root = xml::parse(&r.body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let body = root
            .child("Body")
            .ok_or_else(|| ClientError::Protocol("no SOAP Body".into()))?;
        let first = body
            .children
            .first()
            .ok_or_else(|| ClientError::Protocol("empty SOAP Body".into()))?;
        if first.name == "Fault" {
            let message = first
                .child_text("faultstring")
                .unwrap_or_default()
                .to_string();
            let detail = first
                .child("detail")
                .and_then(|d| d.children.first())
                .cloned()
                .unwrap_or_default();
            let ty = detail
                .xsi_type
                .clone()
                .or_else(|| detail.name.strip_suffix("Fault").map(str::to_string))
                .unwrap_or_else(|| "Unknown".into());
            return Err(ClientError::Fault {
                ty,
                message,
                detail: Box::new(detail),
            });
        }
        if r.status != StatusCode::OK {
            return Err(ClientError::Http(
                r.status,
                "SOAP answer without fault".into(),
            ));
        }
        Ok(first.clone())
    }

    pub async fn service_content(&mut self) -> Result<Element, ClientError> {
        let r = self
            .call(
                &MoRef::new("ServiceInstance", "ServiceInstance"),
                "RetrieveServiceContent",
                "",
            )
            .await?;
        returnval(&r)
    }

    /// The SessionManager named by the service content (`ha-sessionmgr` on a host,
    /// `SessionManager` on a vCenter), as clients find it.
    async fn session_manager(&mut self) -> Result<MoRef, ClientError> {
        let content = self.service_content().await?;
        content
            .child("sessionManager")
            .map(as_moref)
            .transpose()?
            .ok_or_else(|| ClientError::Protocol("no sessionManager in the service content".into()))
    }

    pub async fn login(&mut self, user: &str, password: &str) -> Result<Element, ClientError> {
        let params = format!(
            "<userName>{}</userName><password>{}</password>",
            esc(user),
            esc(password)
        );
        let sm = self.session_manager().await?;
        let r = self.call(&sm, "Login", &params).await?;
        returnval(&r)
    }

    pub async fn logout(&mut self) -> Result<(), ClientError> {
        let sm = self.session_manager().await?;
        self.call(&sm, "Logout", "").await?;
        Ok(())
    }

    /// Reads one property (nested paths allowed) with the internal Fetch method.
    pub async fn fetch(&mut self, obj: &MoRef, prop: &str) -> Result<Option<Element>, ClientError> {
        let r = self
            .call(obj, "Fetch", &format!("<prop>{}</prop>", esc(prop)))
            .await?;
        Ok(r.child("returnval").cloned())
    }

    /// Fetches a property's text (`""` when unset).
    pub async fn fetch_text(&mut self, obj: &MoRef, prop: &str) -> Result<String, ClientError> {
        Ok(self
            .fetch(obj, prop)
            .await?
            .map(|e| e.text.trim().to_string())
            .unwrap_or_default())
    }

    /// Waits for a task to end by polling `info`; returns `info`, or the task's fault as an error.
    pub async fn wait_task(&mut self, task: &MoRef) -> Result<Element, ClientError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let info = self
                .fetch(task, "info")
                .await?
                .ok_or_else(|| ClientError::Protocol("task without info".into()))?;
            match info.child_text("state") {
                Some("success") => return Ok(info),
                Some("error") => {
                    let err = info.child("error");
                    let fault = err
                        .and_then(|e| e.child("fault"))
                        .cloned()
                        .unwrap_or_default();
                    return Err(ClientError::Fault {
                        ty: fault.xsi_type.clone().unwrap_or_else(|| "Unknown".into()),
                        message: err
                            .and_then(|e| e.child_text("localizedMessage"))
                            .unwrap_or_default()
                            .to_string(),
                        detail: Box::new(fault),
                    });
                }
                _ if tokio::time::Instant::now() > deadline => {
                    return Err(ClientError::Io("task did not finish in time".into()))
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// `GET` a path (downloads: no credentials needed).
    pub async fn get(&mut self, path: &str) -> Result<HttpResponse, ClientError> {
        self.http(Method::GET, path, &[], Vec::new()).await
    }

    /// `PUT` a bundle with HTTP Basic auth, or with the session cookie when `basic` is None.
    pub async fn put(
        &mut self,
        path: &str,
        body: Vec<u8>,
        basic: Option<(&str, &str)>,
    ) -> Result<HttpResponse, ClientError> {
        let mut h = vec![(
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        )];
        if let Some((u, p)) = basic {
            h.push((
                "authorization",
                format!(
                    "Basic {}",
                    Base64::encode_string(format!("{u}:{p}").as_bytes())
                ),
            ));
        }
        let saved = if basic.is_some() {
            self.cookie.take()
        } else {
            None
        };
        let r = self.http(Method::PUT, path, &h, body).await;
        if basic.is_some() {
            self.cookie = saved;
        }
        r
    }

    /// The path part of a URL the host returned (`https://*:8443/downloads/..` → `/downloads/..`).
    pub fn path_of(url: &str) -> String {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        rest.find('/')
            .map_or("/".to_string(), |i| rest[i..].to_string())
    }

    pub fn base_url(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// A SOAP 1.1 envelope around a body element: the same envelope the simulator writes.
pub use esxi_sim::soap::envelope;

/// The single `returnval` of a response.
pub fn returnval(resp: &Element) -> Result<Element, ClientError> {
    resp.child("returnval")
        .cloned()
        .ok_or_else(|| ClientError::Protocol(format!("{} has no returnval", resp.name)))
}

/// `<name type="T">id</name>`.
pub fn moref_xml(name: &str, r: &MoRef) -> String {
    format!("<{name} type=\"{}\">{}</{name}>", esc(&r.ty), esc(&r.id))
}

/// An element's managed object reference.
pub fn as_moref(el: &Element) -> Result<MoRef, ClientError> {
    esxi_sim::soap::parse_moref_element(el).map_err(ClientError::Protocol)
}

pub fn esc(s: &str) -> String {
    let mut out = String::new();
    escape(s, &mut out);
    out
}

fn tls_connector(trust: &Trust) -> Result<tokio_rustls::TlsConnector, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let cfg = match trust {
        Trust::Any => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth(),
        Trust::Roots(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pemfile::certs(&mut pem.as_slice()) {
                let c = c.map_err(|e| ClientError::Protocol(format!("CA file: {e}")))?;
                roots
                    .add(c)
                    .map_err(|e| ClientError::Protocol(format!("CA file: {e}")))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

/// Accepts any certificate but still checks the handshake signatures (so the TLS is real).
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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
