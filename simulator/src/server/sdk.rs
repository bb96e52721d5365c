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
use hyper::header::{HeaderValue, CONTENT_TYPE, SET_COOKIE, USER_AGENT};
use hyper::{Request, Response, StatusCode};

use super::faults::{self as fault_rules, Action, Hit};
use super::trace::{RuleNote, SoapNote};
use super::{text, Body, HostDown, Resp, Shared};
use crate::api::Fault;
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
    let traced = shared.cfg.trace.is_some();
    let token = super::cookie::token(&req);
    let agent = req
        .headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = match read_body(req, shared.cfg.max_soap_body, shared.cfg.body_timeout).await {
        Ok(b) => b,
        Err(resp) => return Ok(resp),
    };
    let call = match soap::parse_with(&body, crate::vim::registry::declaring_type) {
        Ok(c) => c,
        Err(f) => {
            tracing::debug!(%peer, "bad SOAP request: {}", f.message);
            let note = traced.then(|| SoapNote {
                method: "(unreadable)".into(),
                fault: Some((f.ty.to_string(), f.message.clone())),
                ..SoapNote::default()
            });
            return Ok(noted(fault(&f), note, None));
        }
    };
    // Only a traced endpoint pays for the note (an allocation or three per request).
    let mut note = traced.then(|| SoapNote {
        method: call.method.clone(),
        object: Some(format!("{}:{}", call.this.ty, call.this.id)),
        host: shared
            .index
            .or_else(|| crate::vim::vcenter::host_index_of(&call.this.id)),
        ..SoapNote::default()
    });
    let hit = shared.fault_for(&call.method, Some(&call.this));
    let rule = hit.as_ref().map(|h| h.rule);
    if let Some(h) = &hit {
        if let Some(early) = apply_before(shared, h).await? {
            if let Some(n) = note.as_mut() {
                n.fault = fault_rules::soap_fault(&h.action).map(|f| (f.ty.to_string(), f.message));
            }
            return Ok(noted(early, note, rule));
        }
    }
    let answered = super::call::answer(shared, peer, token, agent, &call).await?;
    if let Some(n) = note.as_mut() {
        n.user = answered.user;
        n.fault = answered
            .result
            .as_ref()
            .err()
            .map(|f| (f.ty.to_string(), f.message.clone()));
    }
    let resp = match answered.result {
        Ok(v) => {
            let mut r = xml(StatusCode::OK, soap::response(&call.method, v.as_ref()));
            // A Login's new session travels as SOAP's cookie.
            let cookie = answered
                .new_session
                .map(|t| super::cookie::set_cookie(&t, shared.scheme == "https"));
            if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
                r.headers_mut().insert(SET_COOKIE, c);
            }
            r
        }
        Err(f) => fault(&f),
    };
    let resp = noted(resp, note, rule);
    Ok(match hit {
        Some(Hit {
            action: Action::Reset,
            ..
        }) => super::cut_short(resp),
        _ => resp,
    })
}

/// Hands what the trace tells of a call to the recorder ([`super::trace`]) on its response.
fn noted(mut r: Resp, note: Option<SoapNote>, rule: Option<u64>) -> Resp {
    if let Some(n) = note {
        r.extensions_mut().insert(n);
        if let Some(id) = rule {
            r.extensions_mut().insert(RuleNote(id));
        }
    }
    r
}

/// What a fault rule does before the host sees a request: wait, then answer in its place (a
/// fault, a status, nothing at all) or let the request through (`delay`, `reset`).
pub async fn apply_before(shared: &Shared, hit: &Hit) -> Result<Option<Resp>, HostDown> {
    tracing::info!(endpoint = %shared.label, rule = hit.rule, action = fault_rules::action_name(&hit.action), "fault rule fired");
    if !hit.delay.is_zero() {
        tokio::time::sleep(hit.delay).await;
    }
    Ok(match &hit.action {
        Action::Fault { .. } => fault_rules::soap_fault(&hit.action).map(|f| fault(&f)),
        Action::Status { status } => Some(text(
            StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            format!("injected HTTP {status}\n"),
        )),
        Action::Timeout => {
            // Held until the client gives up; the connection then closes without an answer.
            tokio::time::sleep(Duration::from_secs(600)).await;
            return Err(HostDown);
        }
        Action::Delay | Action::Reset => None,
    })
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
