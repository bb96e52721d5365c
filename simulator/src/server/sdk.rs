//! `POST /sdk` (SOAP) and `GET /sdk/vimServiceVersions.xml`.
//!
//! Every SOAP error is answered as a SOAP fault with HTTP 500 (malformed XML, wrong namespace,
//! missing `_this` → InvalidRequest); only transport problems (oversized or slow bodies) get a
//! bare HTTP status.
//!
//! A WaitForUpdates(Ex) with nothing to report parks ([`Waiter`]) until the API state's change
//! signal, the horizon of what it read, its maxWaitSeconds, a move of the clock or the server
//! stopping, and only then asks the model again (`vim::changes`): an idle wait costs a timer
//! and a place on a watch list, no CPU.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
use crate::vim::{Answer, Ctx, Horizon};

/// A legacy WaitForUpdates never answers "nothing"; we still end it after this.
const WAIT_CAP: Duration = Duration::from_secs(15 * 60);
/// A value that drifts with time alone (a task's progress, an uptime) wakes a wait at most
/// this often: at a high clock speed it drifts every few microseconds. Events (a task's work)
/// are not held back.
const DRIFT_NAP: Duration = Duration::from_millis(100);

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
    let call = match soap::Request::parse_with(&body, crate::vim::registry::declaring_type) {
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
    let (resp, outcome) = answer(shared, peer, token, agent, &call).await?;
    if let Some(n) = note.as_mut() {
        n.user = outcome.user;
        n.fault = outcome.fault;
    }
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

/// Who made a call and how it ended, for the trace.
#[derive(Default)]
struct Outcome {
    user: Option<String>,
    fault: Option<(String, String)>,
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

async fn answer(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    token: Option<String>,
    agent: String,
    call: &soap::Request,
) -> Result<(Resp, Outcome), HostDown> {
    let started = Instant::now();
    let mut retry = false;
    let mut verified = None;
    // Who is calling, for the trace: looked up before the call (a Logout ends the session).
    let user_before = match (&shared.cfg.trace, token.as_deref()) {
        (Some(_), Some(t)) => shared.lock().token_user(t),
        _ => None,
    };
    // Watching before the first look: a change after it is never missed.
    let mut waiter = Waiter::new(shared);
    loop {
        let ctx = Ctx {
            token: token.clone(),
            peer: peer.ip().to_string(),
            user_agent: agent.clone(),
            retry,
            offload_hashing: true,
            verified: verified.take(),
            ..Ctx::default()
        };
        let (result, ctx) = if heavy(&call.method) {
            let (s, c) = (shared.clone(), call.clone());
            super::offload::run(&shared.cpu_slots, move || attempt(&s, &c, ctx))
                .await
                .ok_or(HostDown)??
        } else {
            attempt(shared, call, ctx)?
        };
        // A login's password hash: checked off the lock and the async workers, then the call
        // is made again with the outcome.
        if let Some(check) = ctx.verify {
            let ok = super::offload::verify(&shared.cpu_slots, check.clone()).await;
            verified = Some((check, ok));
            continue;
        }
        if let (Ok(_), Some(pending)) = (&result, ctx.pending) {
            let limit = pending.max_wait.unwrap_or(WAIT_CAP).min(WAIT_CAP);
            let waited = started.elapsed();
            if waited < limit {
                if !waiter.park(limit - waited, pending.horizon).await {
                    // The server is stopping: the connection closes, as a restarting hostd's.
                    return Err(HostDown);
                }
                retry = true;
                continue;
            }
        }
        tracing::debug!(%peer, method = %call.method, this = %call.this, ok = result.is_ok(), "soap");
        let mut outcome = Outcome::default();
        if shared.cfg.trace.is_some() {
            outcome.user = match call.method.as_str() {
                // The name it logged in (or failed to log in) with.
                "Login" => call.param("userName").map(|u| u.text.clone()),
                // Looked up before the call: a Logout's session is gone after it.
                _ => user_before,
            };
            outcome.fault = result
                .as_ref()
                .err()
                .map(|f| (f.ty.to_string(), f.message.clone()));
        }
        let resp = match result {
            Ok(v) => {
                let mut r = xml(StatusCode::OK, soap::response(&call.method, v.as_ref()));
                let cookie = ctx
                    .new_session
                    .map(|t| super::cookie::set_cookie(&t, shared.scheme == "https"));
                if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    r.headers_mut().insert(SET_COOKIE, c);
                }
                r
            }
            Err(f) => fault(&f),
        };
        return Ok((resp, outcome));
    }
}

/// A WaitForUpdates call between two looks at the model.
struct Waiter<'a> {
    shared: &'a Shared,
    changes: tokio::sync::watch::Receiver<u64>,
    clock: tokio::sync::watch::Receiver<u64>,
}

impl<'a> Waiter<'a> {
    fn new(shared: &'a Shared) -> Waiter<'a> {
        let mut clock = shared.rebased.clone();
        clock.borrow_and_update();
        Waiter {
            shared,
            changes: shared.changes.subscribe(),
            clock,
        }
    }

    /// Sleeps until the state changes, the clock is moved, the horizon comes (in wall time at
    /// the clock's speed) or `left` is up. False when the server is stopping.
    async fn park(&mut self, left: Duration, horizon: Horizon) -> bool {
        let nap = {
            let clock = self.shared.clock.lock().unwrap_or_else(|e| e.into_inner());
            let event = horizon.event.and_then(|t| clock.wall_until(t));
            let drift = horizon.drift.and_then(|t| clock.wall_until(t));
            let mut nap = left;
            if let Some(d) = event {
                nap = nap.min(d);
            }
            if let Some(d) = drift {
                nap = nap.min(d.max(DRIFT_NAP));
            }
            nap
        };
        if self.shared.closing() {
            return false;
        }
        let _parked = Parked::new(self.shared);
        // A closed channel cannot happen while `shared` lives; it would end the wait too.
        let woke = tokio::select! {
            r = self.changes.changed() => r.is_ok(),
            r = self.clock.changed() => r.is_ok(),
            _ = tokio::time::sleep(nap) => true,
        };
        woke && !self.shared.closing()
    }
}

/// Counts a parked wait ([`Shared::waiters`]) for as long as it lives, even if the client
/// goes away mid-wait.
struct Parked<'a>(&'a Shared);

impl<'a> Parked<'a> {
    fn new(shared: &'a Shared) -> Parked<'a> {
        shared.waiting.fetch_add(1, Ordering::SeqCst);
        Parked(shared)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Methods that pack, encrypt or derive keys on the way (a bundle is packed and the fresh state
/// sealed; a restore reads a sealed bundle; a reset or shutdown saves): they run on the bounded
/// pool of [`super::offload`], so a slow one holds no async worker (issue 12). So do the event
/// and task history reads, which on a vCenter go through every host's log. The rest are a lock
/// and a lookup.
fn heavy(method: &str) -> bool {
    matches!(
        method,
        "BackupFirmwareConfiguration"
            | "RestoreFirmwareConfiguration"
            | "ResetFirmwareToFactoryDefaults"
            | "SyncFirmwareConfiguration"
            | "RebootHost_Task"
            | "ShutdownHost_Task"
            | "QueryEvents"
            | "CreateCollectorForEvents"
            | "CreateCollectorForTasks"
            | "ReadNextEvents"
            | "ReadPreviousEvents"
            | "ReadNextTasks"
            | "ReadPreviousTasks"
            | "ResetCollector"
    )
}

type Attempt = (Result<Option<crate::api::Value>, Fault>, Ctx);

/// One call under the host's (or vCenter's) lock; on a vCenter, a call for a host is
/// forwarded after that lock is released, so calls for different hosts run side by side.
fn attempt(shared: &Shared, call: &soap::Request, mut ctx: Ctx) -> Result<Attempt, HostDown> {
    let answer = {
        let mut vim = shared.lock();
        if !vim.reachable() {
            return Err(HostDown);
        }
        // Whether the call changed anything is the call's rule (`Vim::answer`), not the lock's.
        vim.quiet().answer(call, &mut ctx)
    };
    let result = match answer {
        Answer::Done(r) => r,
        Answer::Forward(f) => f.call(call),
    };
    Ok((result, ctx))
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
