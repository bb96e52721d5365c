//! VI/JSON over HTTP (vSphere 8.0 U1+, vCenter only), beside SOAP on the same endpoint:
//!
//! - `POST /api/vcenter/system?action=hello`: release negotiation (`{"api_releases":[...]}` →
//!   `{"api_release": the first of them this vCenter speaks, or ""}`), no session needed;
//! - `GET /sdk/vim25/{release}/{Type}/{moId}/{property}`: a property read (Fetch), 200 with the
//!   value or 204 when unset; `ServiceInstance/.../content` without a session, as vim_rs's first
//!   call;
//! - `POST /sdk/vim25/{release}/{Type}/{moId}/{Method}`: a call, its parameters one JSON object
//!   ([`crate::vijson::read`]), 200 with the value or 204 for void;
//! - the session in the `vmware-api-session-id` header both ways (Login's answer carries it;
//!   no cookies); faults as HTTP 500 with the fault object ([`crate::vijson::write::fault`]).
//!
//! RestoreFirmwareConfiguration's 204 and faults as 500 with a JSON body are facts section 5's;
//! the paths, the header, `_typeName` and the boxes are what vim_rs 0.7 sends and reads (its
//! `core::client` and generated types), the rest [inferred] (docs/vi-json.md).
//!
//! Only where [`ServerConfig::vi_json`](super::ServerConfig::vi_json) lists releases (a vCenter
//! of 8.0U1 or later); elsewhere these paths are 404, as on a host, so that a client's
//! automatic mode (vim_rs's `TransportMode::Auto`) falls back to SOAP. Any release in the URL
//! is taken (govmomi puts its own newest there before it reads vimServiceVersions.xml); the
//! call is the same whichever it names. The call itself is [`super::call::serve`]'s, as SOAP's.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::{text, Body, HostDown, Resp, Shared};
use crate::api::{Call, Fault, MoRef, Param, Value};
use crate::profile::Profile;

/// The session header of VI/JSON (and of the vSphere Automation API).
pub const SESSION_HEADER: &str = "vmware-api-session-id";
/// VI/JSON came with vSphere 8.0 U1: its first release.
const FIRST: &str = "8.0.1.0";

/// The releases a vCenter of build `p` negotiates, newest first: every API release of the
/// catalogue from 8.0.1.0 up to its own. Empty before 8.0 U1 (SOAP only).
pub fn releases(p: &Profile) -> Vec<String> {
    let own = release_key(&p.api_version);
    let first = release_key(FIRST);
    let mut all: Vec<String> = Profile::all()
        .iter()
        .map(|q| q.api_version.clone())
        .filter(|r| {
            let k = release_key(r);
            k >= first && k <= own
        })
        .collect();
    all.sort_by_key(|r| std::cmp::Reverse(release_key(r)));
    all.dedup();
    all
}

/// `8.0.3.0` → [8, 0, 3, 0] (missing parts are 0).
fn release_key(r: &str) -> [u32; 4] {
    let mut k = [0; 4];
    for (i, part) in r.split('.').take(4).enumerate() {
        k[i] = part.parse().unwrap_or(0);
    }
    k
}

/// Whether a request is VI/JSON's on an endpoint that speaks it.
pub fn serves(shared: &Shared, path: &str) -> bool {
    !shared.cfg.vi_json.is_empty()
        && (path == "/api/vcenter/system" || path.starts_with("/sdk/vim25/"))
}

pub async fn handle(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Resp, HostDown> {
    if !shared.reachable() {
        return Err(HostDown);
    }
    let path = req.uri().path().to_string();
    if path == "/api/vcenter/system" {
        return hello(shared, req).await;
    }
    let target = match Target::parse(&path) {
        Ok(t) => t,
        Err(f) => {
            return Ok(super::call::unreadable(
                shared,
                &f,
                json_fault(&f, StatusCode::NOT_FOUND),
            ))
        }
    };
    let token = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string());
    let agent = super::call::user_agent(&req);
    let this = MoRef::new(target.ty, target.id);
    let (call, read) = match *req.method() {
        // What vim_rs reads first, before any session: the content, which RetrieveServiceContent
        // answers to anyone.
        Method::GET if this.ty == "ServiceInstance" && target.name == "content" => (
            Call {
                method: "RetrieveServiceContent".into(),
                this,
                params: Param {
                    name: "RetrieveServiceContent".into(),
                    ..Param::default()
                },
            },
            true,
        ),
        Method::GET => {
            let prop = Param {
                name: "prop".into(),
                text: target.name.clone(),
                ..Param::default()
            };
            let params = Param {
                name: "Fetch".into(),
                children: vec![prop],
                ..Param::default()
            };
            let call = Call {
                method: "Fetch".into(),
                this,
                params,
            };
            (call, true)
        }
        Method::POST => {
            let body =
                match super::sdk::read_body(req, shared.cfg.max_soap_body, shared.cfg.body_timeout)
                    .await
                {
                    Ok(b) => b,
                    Err(resp) => return Ok(resp),
                };
            match crate::vijson::params(&target.name, &body) {
                Ok(params) => (
                    Call {
                        method: target.name.clone(),
                        this,
                        params,
                    },
                    false,
                ),
                Err(f) => {
                    tracing::debug!(%peer, "bad VI/JSON request: {}", f.message);
                    return Ok(super::call::unreadable(shared, &f, fault(&f)));
                }
            }
        }
        _ => {
            return Ok(text(
                StatusCode::METHOD_NOT_ALLOWED,
                "GET reads a property, POST calls a method\n",
            ))
        }
    };
    super::call::serve(shared, peer, token, agent, &call, &Json { read }).await
}

/// `/sdk/vim25/{release}/{Type}/{moId}/{name}`, each part percent-decoded.
struct Target {
    ty: String,
    id: String,
    name: String,
}

impl Target {
    fn parse(path: &str) -> Result<Target, Fault> {
        let rest = path.strip_prefix("/sdk/vim25/").unwrap_or_default();
        let parts: Vec<&str> = rest.split('/').collect();
        let [release, ty, id, name] = parts.as_slice() else {
            return Err(Fault::invalid_request(format!(
                "{path}: expected /sdk/vim25/{{release}}/{{type}}/{{id}}/{{property or method}}"
            )));
        };
        if release.is_empty()
            || !release
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Fault::invalid_request(format!(
                "{path}: '{release}' is not an API release such as 8.0.3.0"
            )));
        }
        let ty = decode(ty)?;
        let id = decode(id)?;
        let name = decode(name)?;
        let word = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        };
        if !word(&ty) || !word(&name) || id.is_empty() {
            return Err(Fault::invalid_request(format!(
                "{path}: a type, an id and a property or method name are needed"
            )));
        }
        Ok(Target { ty, id, name })
    }
}

/// Percent-decodes one path segment (`%5B` → `[`); invalid escapes or UTF-8 are refused.
fn decode(s: &str) -> Result<String, Fault> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Fault::invalid_request(format!("'{s}': a bad percent escape")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Fault::invalid_request(format!("'{s}' is not UTF-8")))
}

/// How VI/JSON writes an answer: 200 with JSON, 204 for nothing, the session as a header.
struct Json {
    /// A property read: the value as its declared type, not Fetch's anyType box.
    read: bool,
}

impl super::call::Wire for Json {
    fn fault(&self, f: &Fault) -> Resp {
        fault(f)
    }
    fn answer(&self, _call: &Call, v: Option<&Value>, new_session: Option<&str>) -> Resp {
        let mut r = match v {
            None => {
                let mut r = Response::new(Body::full(Bytes::new()));
                *r.status_mut() = StatusCode::NO_CONTENT;
                r
            }
            Some(v) if self.read => json(StatusCode::OK, crate::vijson::property(v)),
            Some(v) => json(StatusCode::OK, crate::vijson::value(v)),
        };
        if let Some(t) = new_session.and_then(|t| HeaderValue::from_str(t).ok()) {
            r.headers_mut().insert(SESSION_HEADER, t);
        }
        r
    }
}

fn json(status: StatusCode, body: String) -> Resp {
    let mut r = Response::new(Body::full(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A fault: HTTP 500 and the fault object.
pub fn fault(f: &Fault) -> Resp {
    json_fault(f, StatusCode::INTERNAL_SERVER_ERROR)
}

fn json_fault(f: &Fault, status: StatusCode) -> Resp {
    json(status, crate::vijson::fault(f))
}

/// `POST /api/vcenter/system?action=hello`.
async fn hello(shared: &Shared, req: Request<Incoming>) -> Result<Resp, HostDown> {
    let action = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("action="));
    if action != Some("hello") {
        return Ok(vapi_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "/api/vcenter/system: only ?action=hello is served here",
        ));
    }
    if req.method() != Method::POST {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n"));
    }
    // A hello is small; a large one is refused like any oversized body.
    let body = match super::sdk::read_body(req, 64 << 10, shared.cfg.body_timeout).await {
        Ok(b) => b,
        Err(resp) => return Ok(resp),
    };
    let wanted: Vec<String> = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => match v.get("api_releases").and_then(|r| r.as_array()) {
            Some(rs) => rs
                .iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect(),
            None => {
                return Ok(vapi_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "the body needs api_releases, a list of release IDs",
                ))
            }
        },
        Err(e) => {
            return Ok(vapi_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                &format!("the body is not JSON: {e}"),
            ))
        }
    };
    // The first the client lists that this vCenter speaks; "" when none (the client gives up).
    let chosen = wanted
        .iter()
        .find(|w| shared.cfg.vi_json.contains(w))
        .cloned()
        .unwrap_or_default();
    Ok(json(
        StatusCode::OK,
        serde_json::json!({ "api_release": chosen }).to_string(),
    ))
}

/// An error as the vSphere Automation API (`/api`) writes one [inferred: its documented shape].
fn vapi_error(status: StatusCode, kind: &str, message: &str) -> Resp {
    json(
        status,
        serde_json::json!({
            "error_type": kind,
            "messages": [{"id": "vapi.esxi_sim", "default_message": message, "args": []}],
        })
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vcenter_negotiates_from_8_0_u1_up_to_its_own_release() {
        let r = |name| releases(&Profile::named(name).unwrap());
        assert!(r("8.0U3").starts_with(&[
            "8.0.3.0".to_string(),
            "8.0.2.0".into(),
            "8.0.1.0".into()
        ]));
        assert_eq!(r("8.0U1"), ["8.0.1.0"]);
        assert!(r("8.0GA").is_empty());
        assert!(r("7.0U3").is_empty());
        assert_eq!(r("9.0.0.0")[0], "9.0.0.0");
    }

    #[test]
    fn paths_name_a_release_an_object_and_a_member() {
        let t = Target::parse("/sdk/vim25/8.0.3.0/HostSystem/host-12/name").unwrap();
        assert_eq!(
            (t.ty.as_str(), t.id.as_str(), t.name.as_str()),
            ("HostSystem", "host-12", "name")
        );
        let t = Target::parse("/sdk/vim25/9.9/ContainerView/session%5B52%5Dx/view").unwrap();
        assert_eq!(t.id, "session[52]x");
        for bad in [
            "/sdk/vim25/8.0.3.0/HostSystem/host-12",
            "/sdk/vim25/latest/HostSystem/host-12/name",
            "/sdk/vim25/8.0.3.0/HostSystem/host-12/name/x",
            "/sdk/vim25/8.0.3.0/Host%ZZ/host-12/name",
            "/sdk/vim25/8.0.3.0/HostSystem//name",
            "/sdk/vim25/8.0.3.0/Host System/h/name",
            "/sdk/vim25/8.0.3.0/HostSystem/%FF/name",
        ] {
            let f = Target::parse(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} was taken"));
            assert_eq!(f.ty, "InvalidRequest", "{bad}");
        }
    }
}
