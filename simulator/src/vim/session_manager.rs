//! SessionManager: Login against the host's own `/etc/shadow` (so a restored or reset
//! configuration changes who can log in), Logout, SessionIsActive, `currentSession`.
//!
//! The session travels in the cookie `vmware_soap_session="<40 hex>"`. pyVmomi echoes the whole
//! Set-Cookie value back, attributes included, so the cookie is read leniently.

use super::lockout::Outcome;
use super::{method_not_found, required, Ctx, Vim};
use crate::api::{Call, Data, Fault, Value};
use crate::clock::SimTime;
use crate::host::{accounts, EventKind};
use crate::secret;

pub const INVALID_LOGIN: &str = "Cannot complete login due to an incorrect user name or password.";

#[derive(Clone, Debug)]
pub struct Session {
    /// `UserSession.key` (a VMware-style uuid); the cookie token is separate and secret.
    pub key: String,
    pub user: String,
    pub login_time: SimTime,
    pub last_active: SimTime,
    pub calls: i64,
    pub peer: String,
    pub user_agent: String,
    pub locale: String,
    /// CancelWaitForUpdates was called: the waiting call ends with RequestCanceled.
    pub cancel_wait: bool,
}

/// A password to check against a shadow hash field: the costly part of a login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordCheck {
    pub field: String,
    pub password: String,
}

impl PasswordCheck {
    /// Runs the hash (milliseconds at the default 5,000 rounds; minutes for a planted
    /// `rounds=999999999` field, which is why the server runs this off its async workers).
    pub fn run(&self) -> bool {
        accounts::verify(&self.password, &self.field)
    }
}

impl Vim {
    /// Whether `password` opens `user`'s account: decided now when that is cheap (no such
    /// user, an empty or locked field, the vCenter's SSO account), or when the caller checks
    /// hashes inline; otherwise None, with the hash to check handed back in `ctx.verify`. A
    /// call made again with the outcome in `ctx.verified` uses it only if the account's hash is
    /// still the one that was checked.
    ///
    /// A host's accounts lock after repeated failures ([`super::lockout`]): a locked account
    /// fails without a hash check, and each checked outcome is counted.
    pub fn credentials_ok(&mut self, ctx: &mut Ctx, user: &str, password: &str) -> Option<bool> {
        let field = match &self.estate {
            Some(e) => {
                let ok = user.eq_ignore_ascii_case(&e.user)
                    && secret::equal(password.as_bytes(), e.password.as_bytes());
                return Some(ok);
            }
            None => match self.host.password_hash(user) {
                None => return Some(false),
                Some(f) => f,
            },
        };
        let now = self.now();
        if self.lockouts.locked(user, now) {
            return Some(false);
        }
        let check = PasswordCheck {
            field,
            password: password.to_string(),
        };
        let ok = if accounts::verify_is_cheap(&check.field) {
            check.run()
        } else {
            match &ctx.verified {
                Some((done, ok)) if *done == check => *ok,
                _ if ctx.offload_hashing => {
                    ctx.verify = Some(check);
                    return None;
                }
                _ => check.run(),
            }
        };
        let policy = super::option_manager::lockout_policy(self);
        if let Outcome::NowLocked(p) = self.lockouts.record(user, ok, now, policy) {
            self.host.log(EventKind::AccountLocked {
                user: user.to_string(),
                failures: p.failures,
                seconds: p.unlock.as_secs(),
            });
        }
        Some(ok)
    }
}

/// The session key for a token if the session is live; refreshes its idle timer.
pub fn touch(vim: &mut Vim, token: &str) -> Option<String> {
    let now = vim.now();
    let timeout = vim.cfg.session_timeout;
    let expired = {
        let s = vim.sessions.get(token)?;
        now.since(s.last_active) > timeout
    };
    if expired {
        let s = vim.sessions.remove(token)?;
        end_session(vim, &s.key);
        return None;
    }
    let s = vim.sessions.get_mut(token)?;
    s.last_active = now;
    s.calls += 1;
    Some(s.key.clone())
}

/// The session of a trusted in-process caller (vCenter's `vpxuser` on its hosts): made on first
/// use, kept alive by use like any other, gone at a reboot like any other.
pub fn system_session(vim: &mut Vim, user: &str) -> String {
    let token = format!("system:{user}");
    if let Some(key) = touch(vim, &token) {
        return key;
    }
    let now = vim.now();
    let session = Session {
        key: secret::vmware_uuid(),
        user: user.to_string(),
        login_time: now,
        last_active: now,
        calls: 1,
        peer: "127.0.0.1".into(),
        user_agent: "VMware VirtualCenter".into(),
        locale: "en".into(),
        cancel_wait: false,
    };
    let key = session.key.clone();
    vim.sessions.insert(token, session);
    key
}

pub fn session_by_key<'a>(vim: &'a Vim, key: &str) -> Option<&'a Session> {
    vim.sessions.values().find(|s| s.key == key)
}

pub fn session_by_key_mut<'a>(vim: &'a mut Vim, key: &str) -> Option<&'a mut Session> {
    vim.sessions.values_mut().find(|s| s.key == key)
}

/// Before a Login adds a session: sessions idle past the timeout end (nobody else sweeps them,
/// and their filters and tokens would stay), and at the cap the least recently used one ends
/// ([`super::limits`]).
fn make_room_for_a_session(vim: &mut Vim) {
    let now = vim.now();
    let timeout = vim.cfg.session_timeout;
    let idle: Vec<String> = vim
        .sessions
        .iter()
        .filter(|(_, s)| now.since(s.last_active) > timeout)
        .map(|(t, _)| t.clone())
        .collect();
    for t in idle {
        if let Some(s) = vim.sessions.remove(&t) {
            end_session(vim, &s.key);
        }
    }
    while vim.sessions.len() >= vim.cfg.limits.sessions.max(1) {
        let lru = vim
            .sessions
            .iter()
            .min_by_key(|(_, s)| (s.last_active, s.login_time))
            .map(|(t, _)| t.clone())
            .expect("at the cap, so not empty");
        if let Some(s) = vim.sessions.remove(&lru) {
            end_session(vim, &s.key);
        }
    }
}

/// What a session owned dies with it.
fn end_session(vim: &mut Vim, key: &str) {
    vim.filters.retain(|_, f| f.session != key);
    vim.views.retain(|_, v| v.session != key);
    vim.pages.retain(|_, p| p.session != key);
    vim.collector_versions.retain(|(s, _), _| s != key);
    vim.collectors.retain(|_, s| s != key);
    vim.event_collectors.retain(|_, c| c.session != key);
    vim.task_collectors.retain(|_, c| c.session != key);
}

pub fn user_session(s: &Session) -> Data {
    Data::new("UserSession")
        .with("key", s.key.as_str())
        .with("userName", s.user.as_str())
        .with("fullName", full_name(&s.user))
        .with("loginTime", s.login_time)
        .with("lastActiveTime", s.last_active)
        .with("locale", s.locale.as_str())
        .with("messageLocale", s.locale.as_str())
        .with("extensionSession", false)
        .with("ipAddress", s.peer.as_str())
        .with("userAgent", s.user_agent.as_str())
        .with("callCount", s.calls)
}

fn full_name(user: &str) -> String {
    if user == "root" {
        "Administrator".into()
    } else {
        user.into()
    }
}

pub fn call(vim: &mut Vim, ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    match req.method.as_str() {
        "Login" => login(vim, ctx, req),
        "Logout" => {
            if let Some(key) = ctx.session.clone() {
                vim.sessions.retain(|_, s| s.key != key);
                end_session(vim, &key);
            }
            Ok(None)
        }
        "SessionIsActive" => {
            let id = required(req, "sessionID")?.text.trim().to_string();
            let user = required(req, "userName")?.text.trim().to_string();
            let timeout = vim.cfg.session_timeout;
            let now = vim.now();
            let active = session_by_key(vim, &id)
                .is_some_and(|s| s.user == user && now.since(s.last_active) <= timeout);
            Ok(Some(Value::Bool(active)))
        }
        _ => Err(method_not_found(req)),
    }
}

fn login(vim: &mut Vim, ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    let user = required(req, "userName")?.text.clone();
    let password = required(req, "password")?.text.clone();
    let locale = req
        .param("locale")
        .map(|l| l.text.trim().to_string())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "en".into());
    match vim.credentials_ok(ctx, &user, &password) {
        None => return Ok(None), // the server checks the hash and calls again
        Some(false) => return Err(Fault::new("InvalidLogin", INVALID_LOGIN)),
        Some(true) => {}
    }
    // A second Login on a live session replaces it, as hostd does.
    if let Some(old) = ctx.token.as_deref() {
        if let Some(s) = vim.sessions.remove(old) {
            end_session(vim, &s.key);
        }
    }
    make_room_for_a_session(vim);
    let token = secret::hex(40);
    let now = vim.now();
    let session = Session {
        key: secret::vmware_uuid(),
        user,
        login_time: now,
        last_active: now,
        calls: 0,
        peer: ctx.peer.clone(),
        user_agent: ctx.user_agent.clone(),
        locale,
        cancel_wait: false,
    };
    let answer = user_session(&session);
    ctx.session = Some(session.key.clone());
    vim.sessions.insert(token.clone(), session);
    // The transport hands it to the client its own way (SOAP: a cookie).
    ctx.new_session = Some(token);
    Ok(Some(answer.into()))
}

pub fn properties(vim: &Vim, session: Option<&str>) -> Data {
    let current = session.and_then(|k| session_by_key(vim, k));
    let mut list: Vec<&Session> = vim.sessions.values().collect();
    list.sort_by(|a, b| a.key.cmp(&b.key));
    Data::new("SessionManager")
        .with(
            "sessionList",
            Value::Array(
                "UserSession",
                list.into_iter().map(|s| user_session(s).into()).collect(),
            ),
        )
        .opt("currentSession", current.map(user_session))
        .with("defaultLocale", "en")
        .with("supportedLocaleList", Value::strings(["en".to_string()]))
}
