//! Bundle transfers: `GET`/`HEAD /downloads/<uuid>/<file>` (no credentials: the uuid is the
//! capability, as Ansible and Salt rely on) and `PUT /tmp/configBundle.tgz` (HTTP Basic auth or
//! the session cookie; any content type, since urllib sends form-urlencoded). Ansible sends a
//! `HEAD` to the upload URL first; it is answered without credentials and reveals nothing.

use base64ct::{Base64, Encoding};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::call::apply_before;
use super::faults::{Action, Hit};
use super::sdk::read_body;
use super::{text, Body, HostDown, Resp, Shared};
use crate::vim::{Ctx, UploadAuth, UploadError};

pub async fn handle(shared: &Shared, req: Request<Incoming>) -> Result<Resp, HostDown> {
    // Fault rules name the transfers as pseudo-methods `Download` and `Upload`.
    let method = if req.uri().path() == "/tmp/configBundle.tgz" {
        "Upload"
    } else {
        "Download"
    };
    let hit = if matches!(*req.method(), Method::GET | Method::PUT) {
        shared.fault_for(method, None)
    } else {
        None
    };
    let rule = hit.as_ref().map(|h| super::trace::RuleNote(h.rule));
    let with_rule = |mut r: Resp| {
        if let Some(n) = rule {
            r.extensions_mut().insert(n);
        }
        r
    };
    if let Some(h) = &hit {
        if let Some(early) = apply_before(shared, h, &super::sdk::fault).await? {
            return Ok(with_rule(early));
        }
    }
    let resp = with_rule(serve(shared, req).await?);
    Ok(match hit {
        Some(Hit {
            action: Action::Reset,
            ..
        }) => super::cut_short(resp),
        _ => resp,
    })
}

async fn serve(shared: &Shared, req: Request<Incoming>) -> Result<Resp, HostDown> {
    let path = req.uri().path().to_string();
    // Each branch checks that the host is up under the one lock it takes.
    if path == "/tmp/configBundle.tgz" {
        return match *req.method() {
            Method::PUT => upload(shared, req).await,
            _ if !shared.reachable() => Err(HostDown),
            Method::HEAD => Ok(text(StatusCode::OK, "")),
            _ => Ok(text(StatusCode::METHOD_NOT_ALLOWED, "use PUT\n")),
        };
    }
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ if !shared.reachable() => return Err(HostDown),
        _ => return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n")),
    };
    let rest = path.trim_start_matches("/downloads/");
    let Some((uuid, file)) = rest.split_once('/') else {
        return Ok(text(StatusCode::NOT_FOUND, "not found\n"));
    };
    let found = {
        let mut vim = shared.lock();
        if !vim.reachable() {
            return Err(HostDown);
        }
        // Forgetting expired bundles changes nothing a filter reports: no waiter wakes.
        vim.quiet().download(uuid, file)
    };
    Ok(match found {
        None => text(StatusCode::NOT_FOUND, "not found\n"),
        Some(bytes) => {
            let len = bytes.len();
            let body = if head {
                Bytes::new()
            } else {
                Bytes::copy_from_slice(&bytes)
            };
            let mut r = Response::new(Body::full(body));
            let h = r.headers_mut();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            h.insert(CONTENT_LENGTH, HeaderValue::from(len));
            r
        }
    })
}

/// `Authorization: Basic base64(user:password)`.
fn basic(req: &Request<Incoming>) -> Option<(String, String)> {
    let v = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = Base64::decode_vec(b64.trim()).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn unauthorized() -> Resp {
    let mut r = text(StatusCode::UNAUTHORIZED, "authentication required\n");
    r.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"VMware HTTP server\""),
    );
    r
}

async fn upload(shared: &Shared, req: Request<Incoming>) -> Result<Resp, HostDown> {
    let creds = basic(&req);
    let token = super::cookie::token(&req);
    let auth = match (&creds, &token) {
        (Some((u, p)), _) => UploadAuth::Basic {
            user: u,
            password: p,
        },
        (None, Some(t)) => UploadAuth::Cookie(t),
        (None, None) => return Ok(unauthorized()),
    };
    // Credentials are checked before a possibly large body is read; a password hash off the
    // lock (see [`super::offload`]).
    let mut ctx = Ctx {
        offload_hashing: true,
        ..Ctx::default()
    };
    loop {
        let allowed = {
            let mut vim = shared.lock();
            if !vim.reachable() {
                return Err(HostDown);
            }
            // A session's or a lockout's bookkeeping only: no waiter wakes (the upload does).
            vim.quiet().authorize_upload(auth, &mut ctx)
        };
        match (allowed, ctx.verify.take()) {
            (Some(true), _) => break,
            (None, Some(check)) => {
                let ok = super::offload::verify(&shared.cpu_slots, check.clone()).await;
                ctx.verified = Some((check, ok));
            }
            _ => return Ok(unauthorized()),
        }
    }
    let body = match read_body(req, shared.cfg.max_upload, shared.cfg.body_timeout).await {
        Ok(b) => b,
        Err(resp) => return Ok(resp),
    };
    // A 7.0 U2+ bundle's NONE-mode key costs 100,000 PBKDF2 rounds: paid here, on the blocking
    // pool, rather than by the boot that restores it (under the host's lock, on a worker).
    let b = body.clone();
    super::offload::run(&shared.cpu_slots, move || {
        crate::state::warm_bundle_keys(&b, &crate::bundle::Limits::default())
    })
    .await;
    let mut vim = shared.lock();
    if !vim.reachable() {
        return Err(HostDown);
    }
    let mut r = match vim.upload(body.to_vec()) {
        Ok(()) => text(StatusCode::OK, ""),
        Err(UploadError::TooLarge) => text(StatusCode::PAYLOAD_TOO_LARGE, "bundle too large\n"),
        Err(UploadError::Unavailable(m)) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{m}\n")),
    };
    r.extensions_mut().insert(super::trace::TransferNote {
        bytes: Some(body.len() as u64),
        user: creds.map(|(u, _)| u),
    });
    Ok(r)
}
