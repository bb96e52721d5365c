//! `POST /sdk` (SOAP) and `GET /sdk/vimServiceVersions.xml`: the envelope read into a call,
//! the fault rules applied, the call answered ([`super::call`], the same for any wire), the
//! answer written as SOAP with a Login's session as its cookie ([`super::cookie`]).
//!
//! Every SOAP error is answered as a SOAP fault with HTTP 500 (malformed XML, wrong namespace,
//! missing `_this` → InvalidRequest); only transport problems (oversized or slow bodies) get a
//! bare HTTP status.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, SET_COOKIE};
use hyper::{Request, Response, StatusCode};

use super::{text, Body, HostDown, Resp, Shared};
use crate::api::{Call, Fault, Value};
use crate::soap::{self};

fn xml(status: StatusCode, body: String) -> Resp {
    let mut r = Response::new(Body::full(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

/// The paths SOAP is posted to: `/sdk`, and (WSDL clients) the WSDL's address or URL.
pub fn is_soap_path(p: &str) -> bool {
    matches!(
        p,
        "/sdk" | "/sdk/" | "/sdk/vimService" | "/sdk/vimService.wsdl"
    )
}

pub fn fault(f: &Fault) -> Resp {
    xml(StatusCode::INTERNAL_SERVER_ERROR, f.to_xml())
}

/// Reads a body up to `max` bytes within `timeout`; the error is the response to send.
pub async fn read_body(
    req: Request<Incoming>,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, Resp> {
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {max} bytes\n"),
        ));
    }
    let limited = Limited::new(req.into_body(), max);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {max} bytes\n"),
        )),
        Ok(Err(e)) => Err(text(
            StatusCode::BAD_REQUEST,
            format!("could not read the request body: {e}\n"),
        )),
        Err(_) => Err(text(
            StatusCode::REQUEST_TIMEOUT,
            format!("request body not received within {} s\n", timeout.as_secs()),
        )),
    }
}

pub async fn soap(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Resp, HostDown> {
    let token = super::cookie::token(&req);
    let agent = super::call::user_agent(&req);
    let body = match read_body(req, shared.cfg.max_soap_body, shared.cfg.body_timeout).await {
        Ok(b) => b,
        Err(resp) => return Ok(resp),
    };
    let call = match soap::parse_with(&body, crate::vim::registry::declaring_type) {
        Ok(c) => c,
        Err(f) => {
            tracing::debug!(%peer, "bad SOAP request: {}", f.message);
            return Ok(super::call::unreadable(shared, &f, fault(&f)));
        }
    };
    super::call::serve(shared, peer, token, agent, &call, &Soap { shared }).await
}

/// How SOAP writes an answer: the response envelope, and a Login's session as its cookie.
struct Soap<'a> {
    shared: &'a Shared,
}

impl super::call::Wire for Soap<'_> {
    fn fault(&self, f: &Fault) -> Resp {
        fault(f)
    }
    fn answer(&self, call: &Call, v: Option<&Value>, new_session: Option<&str>) -> Resp {
        let mut r = xml(StatusCode::OK, soap::response(&call.method, v));
        let cookie =
            new_session.map(|t| super::cookie::set_cookie(t, self.shared.scheme == "https"));
        if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
            r.headers_mut().insert(SET_COOKIE, c);
        }
        r
    }
}

/// The document pyVmomi's SmartConnect reads first (facts section 3).
pub fn service_versions(shared: &Shared) -> Result<Resp, HostDown> {
    let vim = shared.lock();
    if !vim.reachable() {
        return Err(HostDown);
    }
    let p = vim.host.profile();
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<namespaces version=\"1.0\">\n  <namespace>\n    <name>urn:vim25</name>\n",
    );
    s.push_str(&format!("    <version>{}</version>\n", p.api_version));
    s.push_str("    <priorVersions>\n");
    for v in &p.prior_api_versions {
        s.push_str(&format!("      <version>{v}</version>\n"));
    }
    s.push_str("    </priorVersions>\n  </namespace>\n</namespaces>\n");
    Ok(xml(StatusCode::OK, s))
}
