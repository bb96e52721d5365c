//! One call, whatever the wire it came by: the loop between a decoded call and its answer.
//! Each wire ([`super::sdk`] for SOAP, [`super::vijson`] for VI/JSON) decodes its request into
//! a call and hands it to [`serve`] with its [`Wire`], which writes the outcome its own way;
//! the fault rules, the trace's note and the answer loop are here once.
//!
//! The call runs under the endpoint's lock ([`attempt`]); CPU-heavy methods run on
//! [`super::offload`]'s bounded pool ([`heavy`]); a login's password hash is checked off the
//! lock and the call made again with the outcome; a vCenter's call for a host is forwarded
//! once the vCenter's lock is released ([`crate::vim::route`]). A WaitForUpdates(Ex) with
//! nothing to report parks ([`Waiter`]) until the API state's change signal, the horizon of
//! what it read, its maxWaitSeconds, a move of the clock or the server stopping, and only then
//! asks the model again (`vim::changes`): an idle wait costs a timer and a place on a watch
//! list, no CPU.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::USER_AGENT;
use hyper::{Request, StatusCode};

use super::faults::{self as fault_rules, Action, Hit};
use super::trace::{CallNote, RuleNote};
use super::{text, HostDown, Resp, Shared};
use crate::api::{Call, Fault, Value};
use crate::vim::{Answer, Ctx, Horizon};

/// A legacy WaitForUpdates never answers "nothing"; we still end it after this.
const WAIT_CAP: Duration = Duration::from_secs(15 * 60);
/// A value that drifts with time alone (a task's progress, an uptime) wakes a wait at most
/// this often: at a high clock speed it drifts every few microseconds. Events (a task's work)
/// are not held back.
const DRIFT_NAP: Duration = Duration::from_millis(100);

/// How a wire writes what a call came to: a fault, or the value (a Login's new session handed
/// to the client its own way: SOAP's cookie, VI/JSON's header).
pub trait Wire {
    fn fault(&self, f: &Fault) -> Resp;
    fn answer(&self, call: &Call, v: Option<&Value>, new_session: Option<&str>) -> Resp;
}

/// The client's `User-Agent` (the session remembers it).
pub fn user_agent(req: &Request<Incoming>) -> String {
    req.headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Serves a decoded call on `wire`: the fault rules first, then [`answer`], then the wire
/// writes the outcome; the trace's note rides on the response.
pub async fn serve(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    token: Option<String>,
    agent: String,
    call: &Call,
    wire: &(dyn Wire + Sync),
) -> Result<Resp, HostDown> {
    // Only a traced endpoint pays for the note (an allocation or three per request).
    let mut note = shared.cfg.trace.is_some().then(|| CallNote {
        method: call.method.clone(),
        object: Some(format!("{}:{}", call.this.ty, call.this.id)),
        host: shared
            .index
            .or_else(|| crate::vim::vcenter::host_index_of(&call.this.id)),
        ..CallNote::default()
    });
    let hit = shared.fault_for(&call.method, Some(&call.this));
    let rule = hit.as_ref().map(|h| h.rule);
    if let Some(h) = &hit {
        if let Some(early) = apply_before(shared, h, &|f| wire.fault(f)).await? {
            if let Some(n) = note.as_mut() {
                n.fault =
                    fault_rules::injected_fault(&h.action).map(|f| (f.ty.to_string(), f.message));
            }
            return Ok(noted(early, note, rule));
        }
    }
    let answered = answer(shared, peer, token, agent, call).await?;
    if let Some(n) = note.as_mut() {
        n.user = answered.user;
        n.fault = answered
            .result
            .as_ref()
            .err()
            .map(|f| (f.ty.to_string(), f.message.clone()));
    }
    let resp = match &answered.result {
        Ok(v) => wire.answer(call, v.as_ref(), answered.new_session.as_deref()),
        Err(f) => wire.fault(f),
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

/// A request no call could be read from: its fault response, noted for the trace.
pub fn unreadable(shared: &Shared, f: &Fault, resp: Resp) -> Resp {
    let note = shared.cfg.trace.is_some().then(|| CallNote {
        method: "(unreadable)".into(),
        fault: Some((f.ty.to_string(), f.message.clone())),
        ..CallNote::default()
    });
    noted(resp, note, None)
}

/// Hands what the trace tells of a call to the recorder ([`super::trace`]) on its response.
fn noted(mut r: Resp, note: Option<CallNote>, rule: Option<u64>) -> Resp {
    if let Some(n) = note {
        r.extensions_mut().insert(n);
        if let Some(id) = rule {
            r.extensions_mut().insert(RuleNote(id));
        }
    }
    r
}

/// What a fault rule does before the host sees a request: wait, then answer in its place (a
/// fault as `fault` writes it, a status, nothing at all) or let the request through (`delay`,
/// `reset`).
pub async fn apply_before(
    shared: &Shared,
    hit: &Hit,
    fault: &(dyn Fn(&Fault) -> Resp + Sync),
) -> Result<Option<Resp>, HostDown> {
    tracing::info!(endpoint = %shared.label, rule = hit.rule, action = fault_rules::action_name(&hit.action), "fault rule fired");
    if !hit.delay.is_zero() {
        tokio::time::sleep(hit.delay).await;
    }
    Ok(match &hit.action {
        Action::Fault { .. } => fault_rules::injected_fault(&hit.action).map(|f| fault(&f)),
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

/// What a call came to: its value or fault, a Login's new session token (the wire hands it to
/// the client its own way), and, on a traced endpoint, who called.
pub struct Answered {
    pub result: Result<Option<Value>, Fault>,
    pub new_session: Option<String>,
    pub user: Option<String>,
}

/// Answers a decoded call: under the endpoint's lock (CPU-heavy methods on the bounded pool),
/// a login's password hash checked off the lock, a wait with nothing to report parked, a
/// vCenter's call for a host forwarded after the vCenter's lock is released.
pub async fn answer(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    token: Option<String>,
    agent: String,
    call: &Call,
) -> Result<Answered, HostDown> {
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
        tracing::debug!(%peer, method = %call.method, this = %call.this, ok = result.is_ok(), "call");
        let user = match (&shared.cfg.trace, call.method.as_str()) {
            (None, _) => None,
            // The name it logged in (or failed to log in) with.
            (Some(_), "Login") => call.param("userName").map(|u| u.text.clone()),
            // Looked up before the call: a Logout's session is gone after it.
            (Some(_), _) => user_before,
        };
        return Ok(Answered {
            result,
            new_session: ctx.new_session,
            user,
        });
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
fn attempt(shared: &Shared, call: &Call, mut ctx: Ctx) -> Result<Attempt, HostDown> {
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
