//! The control API: JSON over plain HTTP on its own listener, for tests and the harness (the
//! vSphere API cannot crash a host or move the clock). Documented in `docs/control-api.md`;
//! `esxi-sim ctl` is a command line over it.
//!
//! Every route is under `/v1`. Hosts are named by index, address, vCenter id (`host-12`) or host
//! name. Errors are `{"error": "..."}` with a status that says whose fault it was: 400 bad
//! input, 401 no or wrong bearer token, 404 no such host/file/rule, 409 the host's state forbids
//! it (a file write on a host that is off), 413 too large.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::events::Filter;
use super::{FleetHost, FleetState, Mode};
use crate::clock::parse_duration;
use crate::host::{Host, HostError, PowerState, RebootKind};
use crate::keystore::Mode as CryptMode;
use crate::profile::Era;
use crate::server::faults::RuleSpec;
use crate::state::{peek, Shape};
use crate::vim::Vim;

/// Largest request body (file contents included).
const MAX_BODY: usize = 16 << 20;

/// Who may use the control API. Anyone who reaches it reads `/etc/shadow` and `rui.key`, writes
/// files and crashes hosts, so it is guarded by default (issue 12).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ControlAuth {
    /// A bearer token made at start from the OS's CSPRNG: `serve` prints it and writes it to
    /// [`token_file`], where `esxi-sim ctl` and `esxi-harness` find it.
    #[default]
    Generated,
    /// This bearer token.
    Token(String),
    /// No token at all (explicitly asked for: `--no-control-token`): anyone who reaches the
    /// listener drives the fleet.
    Open,
}

/// Where the token of the control API at `addr` is written, so `esxi-sim ctl` finds it:
/// `$ESXI_SIM_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/esxi-sim`, else `~/.esxi-sim`, as
/// `control-<address>-<port>.token` (mode 0600). None when none of them is set.
pub fn token_file(addr: SocketAddr) -> Option<std::path::PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let dir = env("ESXI_SIM_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| env("XDG_RUNTIME_DIR").map(|d| std::path::Path::new(&d).join("esxi-sim")))
        .or_else(|| env("HOME").map(|d| std::path::Path::new(&d).join(".esxi-sim")))?;
    let ip = addr.ip().to_string().replace(':', "_");
    Some(dir.join(format!("control-{ip}-{}.token", addr.port())))
}

/// Writes `token` to [`token_file`] for `addr` (mode 0600, its directory 0700); returns where.
pub fn write_token_file(addr: SocketAddr, token: &str) -> Result<std::path::PathBuf, String> {
    let path = token_file(addr)
        .ok_or("no directory for the control token: set ESXI_SIM_RUNTIME_DIR or HOME")?;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    std::fs::create_dir_all(dir).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(fail)?;
        // An older file of another owner's umask keeps its mode: set it.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(fail)?;
        std::io::Write::write_all(&mut f, format!("{token}\n").as_bytes()).map_err(fail)?;
    }
    #[cfg(not(unix))]
    std::fs::write(&path, format!("{token}\n")).map_err(fail)?;
    Ok(path)
}

/// The token for the control API at `url` (`http://127.0.0.1:8440`) from its [`token_file`],
/// if a local `serve` wrote one.
pub fn token_for_url(url: &str) -> Option<String> {
    use std::net::ToSocketAddrs;
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    let authority = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    authority.to_socket_addrs().ok()?.find_map(|a| {
        let text = std::fs::read_to_string(token_file(a)?).ok()?;
        let t = text.trim();
        (!t.is_empty()).then(|| t.to_string())
    })
}

/// Binds the control listener and serves it until shutdown.
pub async fn start(
    state: Arc<FleetState>,
    listen: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), String> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("control API: cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let task = tokio::spawn(async move {
        let mut backoff = crate::server::AcceptBackoff::new("control API");
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.changed() => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => {
                    backoff.reset();
                    stream
                }
                Err(e) => {
                    let wait = backoff.failed(&e);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => continue,
                        _ = shutdown.changed() => return,
                    }
                }
            };
            let state = state.clone();
            let rx = shutdown.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    let rx = rx.clone();
                    async move { Ok::<_, Infallible>(handle(state, req, rx).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(20))
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok((addr, task))
}

/// A control response body: a whole JSON document, or a live event stream.
pub enum Body {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        use std::task::Poll;
        match self.get_mut() {
            Body::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|d| Ok(Frame::data(d)))),
        }
    }
    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }
    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Body::Full(Some(d)) => hyper::body::SizeHint::with_exact(d.len() as u64),
            Body::Full(None) => hyper::body::SizeHint::with_exact(0),
            Body::Stream(_) => hyper::body::SizeHint::default(),
        }
    }
}

type Resp = Response<Body>;

fn respond(status: StatusCode, ty: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Body::Full(Some(body.into())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ty));
    r
}

fn json_resp(status: StatusCode, v: &impl Serialize) -> Resp {
    let mut body = serde_json::to_vec_pretty(v).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    respond(status, "application/json", body)
}

fn ok(v: &impl Serialize) -> Resp {
    json_resp(StatusCode::OK, v)
}

/// A request that cannot be done, with its status.
struct Error(StatusCode, String);

impl Error {
    fn bad(msg: impl Into<String>) -> Error {
        Error(StatusCode::BAD_REQUEST, msg.into())
    }
    fn not_found(msg: impl Into<String>) -> Error {
        Error(StatusCode::NOT_FOUND, msg.into())
    }
}

impl From<HostError> for Error {
    fn from(e: HostError) -> Error {
        match e {
            HostError::InvalidPath(_) | HostError::InvalidArgument(_) => {
                Error(StatusCode::BAD_REQUEST, e.to_string())
            }
            HostError::FileNotFound(_) => Error(StatusCode::NOT_FOUND, e.to_string()),
            _ => Error(StatusCode::CONFLICT, e.to_string()),
        }
    }
}

type Answer<T> = std::result::Result<T, Error>;

async fn handle(
    state: Arc<FleetState>,
    req: Request<Incoming>,
    shutdown: watch::Receiver<bool>,
) -> Resp {
    let (parts, body) = req.into_parts();
    // Refused before the body is read: an unauthenticated client cannot make us read 16 MiB.
    if let Some(r) = refusal(&state, &parts) {
        return r;
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return json_resp(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({"error": format!("request body larger than {MAX_BODY} bytes")}),
            )
        }
        Err(e) => {
            return json_resp(
                StatusCode::BAD_REQUEST,
                &json!({"error": format!("could not read the body: {e}")}),
            )
        }
    };
    dispatch(&state, &parts, body, shutdown).await
}

/// One request whose body is already read, answered as the listener answers it (the same
/// admission checks, then the route). The listener reads bodies itself; this is the door for
/// in-process callers (the fuzzer in `fuzz/` drives every route through it, without sockets).
pub async fn answer(
    state: &Arc<FleetState>,
    parts: &Parts,
    body: Bytes,
    shutdown: watch::Receiver<bool>,
) -> Resp {
    if let Some(r) = refusal(state, parts) {
        return r;
    }
    dispatch(state, parts, body, shutdown).await
}

/// Who may ask, and in what form: the Host/Origin checks, the bearer token, the content type.
/// The answer to a request that fails one, if any.
fn refusal(state: &FleetState, parts: &Parts) -> Option<Resp> {
    if let Err(e) = check_origin(&state.cfg, &parts.headers) {
        return Some(json_resp(StatusCode::FORBIDDEN, &json!({ "error": e })));
    }
    if let Some(token) = &state.control_token {
        let given = parts
            .headers
            .get(AUTHORIZATION)
            .map(|v| v.as_bytes())
            .and_then(|v| v.strip_prefix(b"Bearer "));
        // Exactly the token, compared in constant time: no trimming, no prefix games.
        if !given.is_some_and(|g| crate::secret::equal(g, token.as_bytes())) {
            let mut r = json_resp(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "a bearer token is required (Authorization: Bearer ...)"}),
            );
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"esxi-sim control\""),
            );
            return Some(r);
        }
    }
    if let Err(e) = check_content_type(&parts.method, parts.uri.path(), &parts.headers) {
        return Some(json_resp(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &json!({ "error": e }),
        ));
    }
    None
}

async fn dispatch(
    state: &Arc<FleetState>,
    parts: &Parts,
    body: Bytes,
    shutdown: watch::Receiver<bool>,
) -> Resp {
    let last_event_id = parts
        .headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let q = parse_query(parts.uri.query().unwrap_or(""));
    let path = parts.uri.path();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let r = route(
        state,
        &parts.method,
        &segs,
        &q,
        body,
        last_event_id,
        shutdown,
    )
    .await;
    match r {
        Ok(resp) => resp,
        Err(Error(status, msg)) => json_resp(status, &json!({ "error": msg })),
    }
}

/// Refuses what a web page could send: a request whose `Host` is a name other than
/// `localhost` or the allowed ones (a DNS-rebinding page names its own domain), and a request
/// whose `Origin` is not the control API itself (a cross-site page; browsers send `Origin` on
/// every cross-origin write). Clients that are not browsers send neither or the right ones.
fn check_origin(cfg: &super::FleetConfig, headers: &HeaderMap) -> Result<(), String> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let host = header(hyper::header::HOST).unwrap_or("");
    if !host.is_empty() && !host_allowed(host, &cfg.control_hosts) {
        return Err(format!(
            "Host {host:?} is not this control API (an IP address, localhost, or --control-host)"
        ));
    }
    if let Some(origin) = header(hyper::header::ORIGIN) {
        if host.is_empty() || origin != format!("http://{host}") {
            return Err(format!(
                "cross-origin request from {origin:?} refused: the control API takes no                  requests from web pages"
            ));
        }
    }
    if header(hyper::header::HeaderName::from_static("sec-fetch-site"))
        .is_some_and(|v| v == "cross-site" || v == "same-site")
    {
        return Err("cross-site request refused".into());
    }
    Ok(())
}

/// `127.0.0.1:8440`, `[::1]:8440`, `localhost`, or a name given with `--control-host`.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = match host.rsplit_once(':') {
        Some((n, port)) if !n.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => host,
    };
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// Writes must say what they carry: `application/json`, or for a file's contents
/// `application/octet-stream` too. A web page's "simple" cross-origin POST can only send
/// `text/plain`, form data or multipart, so this shuts out CSRF whatever the browser does.
fn check_content_type(m: &Method, path: &str, headers: &HeaderMap) -> Result<(), String> {
    if !matches!(*m, Method::POST | Method::PUT | Method::PATCH) {
        return Ok(());
    }
    let ty = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let file = path.contains("/files/");
    match ty.as_str() {
        "application/json" => Ok(()),
        "application/octet-stream" if file => Ok(()),
        _ => Err(format!(
            "{m} needs Content-Type: application/json{} (got {:?})",
            if file {
                " or application/octet-stream"
            } else {
                ""
            },
            if ty.is_empty() { "none" } else { ty.as_str() }
        )),
    }
}

async fn route(
    state: &Arc<FleetState>,
    method: &Method,
    segs: &[&str],
    q: &BTreeMap<String, String>,
    body: Bytes,
    last_event_id: Option<u64>,
    shutdown: watch::Receiver<bool>,
) -> Answer<Resp> {
    let m = method.as_str();
    match (m, segs) {
        ("GET", ["v1", "fleet"]) => Ok(ok(&fleet_summary(state))),
        ("GET", ["v1", "hosts"]) => {
            let list: Vec<HostState> = state.hosts.iter().map(|h| host_state(state, h)).collect();
            Ok(ok(&list))
        }
        (_, ["v1", "hosts", id, rest @ ..]) => {
            let h = state
                .find(&percent_decode(id))
                .ok_or_else(|| Error::not_found(format!("no host {id:?}")))?;
            let r = host_route(state, h, m, rest, body).await;
            state.collect_host(h);
            state.collect_faults();
            r
        }
        ("GET", ["v1", "ca.pem"]) => match &state.ca_pem {
            Some(pem) => Ok(respond(
                StatusCode::OK,
                "application/x-pem-file",
                Bytes::from(pem.clone()),
            )),
            None => Err(Error::not_found("the fleet serves plain HTTP: no CA")),
        },
        ("GET", ["v1", "clock"]) => Ok(ok(&clock(state))),
        ("POST", ["v1", "clock", "advance"]) => {
            let a: Advance = parse_json(&body)?;
            let d = parse_duration(&a.by).map_err(Error::bad)?;
            if d > Duration::from_secs(366 * 86_400) {
                return Err(Error::bad("advance by at most a year at a time"));
            }
            let s = state.clone();
            tokio::task::spawn_blocking(move || s.advance(d))
                .await
                .map_err(|e| Error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            Ok(ok(&clock(state)))
        }
        ("PUT", ["v1", "clock", "speed"]) => {
            let s: Speed = parse_json(&body)?;
            if !(s.speed.is_finite() && (0.0..=1_000_000.0).contains(&s.speed)) {
                return Err(Error::bad("speed must be between 0 and 1000000"));
            }
            state.sync_all();
            state.set_speed(s.speed);
            Ok(ok(&clock(state)))
        }
        ("GET", ["v1", "events"]) => {
            let s = state.clone();
            let _ = tokio::task::spawn_blocking(move || s.sync_all()).await;
            let f = filter(state, q)?;
            Ok(ok(&state.log.list(&f)))
        }
        ("GET", ["v1", "events", "stream"]) => {
            let mut f = filter(state, q)?;
            if f.after.is_none() {
                f.after = last_event_id;
            }
            Ok(stream(state, f, shutdown))
        }
        ("GET", ["v1", "trace"]) => {
            let Some(t) = &state.cfg.trace else {
                return Err(Error::not_found(
                    "no request trace: start the fleet with --trace FILE (or the harness's estate)",
                ));
            };
            Ok(ok(&t.list(&trace_filter(state, q)?)))
        }
        ("GET", ["v1", "faults"]) => Ok(ok(&state.faults.list())),
        ("POST", ["v1", "faults"]) => {
            let mut spec: RuleSpec = parse_json(&body)?;
            // A host named any way the API accepts is stored as its index, which matches its
            // own endpoint and calls about it through the vCenter alike.
            if let Some(h) = spec.host.as_deref().filter(|h| *h != "vcenter") {
                let found = state
                    .find(h)
                    .ok_or_else(|| Error::not_found(format!("no host {h:?}")))?;
                spec.host = Some(found.index.to_string());
            }
            let rule = state.faults.add(spec).map_err(Error::bad)?;
            Ok(json_resp(StatusCode::CREATED, &rule))
        }
        ("DELETE", ["v1", "faults"]) => {
            state.faults.clear();
            Ok(ok(&json!({"cleared": true})))
        }
        ("DELETE", ["v1", "faults", id]) => {
            let id: u64 = id.parse().map_err(|_| Error::bad("rule ids are numbers"))?;
            if state.faults.remove(id) {
                Ok(ok(&json!({ "removed": id })))
            } else {
                Err(Error::not_found(format!("no rule {id}")))
            }
        }
        (
            _,
            ["v1", "fleet"]
            | ["v1", "hosts"]
            | ["v1", "clock", ..]
            | ["v1", "events", ..]
            | ["v1", "trace"]
            | ["v1", "faults", ..],
        ) => Err(Error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{m} is not allowed here"),
        )),
        _ => Err(Error::not_found(format!(
            "no route /{}; see docs/control-api.md",
            segs.join("/")
        ))),
    }
}

async fn host_route(
    state: &Arc<FleetState>,
    h: &FleetHost,
    m: &str,
    rest: &[&str],
    body: Bytes,
) -> Answer<Resp> {
    let now = state.now();
    let with = |f: &mut dyn FnMut(&mut Vim) -> Answer<()>| -> Answer<Resp> {
        let mut v = state.lock(h);
        f(&mut v)?;
        drop(v);
        Ok(ok(&host_state(state, h)))
    };
    match (m, rest) {
        ("GET", []) => Ok(ok(&host_state(state, h))),
        ("GET", ["files"]) => {
            let v = state.lock(h);
            Ok(ok(&v.host.list_files()?))
        }
        (_, ["files", path @ ..]) if !path.is_empty() => {
            let path = format!(
                "/{}",
                path.iter()
                    .map(|p| percent_decode(p))
                    .collect::<Vec<_>>()
                    .join("/")
            );
            let mut v = state.lock(h);
            match m {
                "GET" => match v.host.read_file(&path)? {
                    Some(b) => Ok(respond(
                        StatusCode::OK,
                        "application/octet-stream",
                        Bytes::copy_from_slice(&b),
                    )),
                    None => Err(Error::not_found(format!("{path} does not exist"))),
                },
                "PUT" => {
                    v.host.write_file(&path, body.to_vec())?;
                    Ok(ok(&json!({ "written": path, "bytes": body.len() })))
                }
                "DELETE" => {
                    if v.host.delete_file(&path)? {
                        Ok(ok(&json!({ "deleted": path })))
                    } else {
                        Err(Error::not_found(format!("{path} does not exist")))
                    }
                }
                _ => Err(Error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "files take GET, PUT and DELETE".into(),
                )),
            }
        }
        ("POST", ["crash"]) => with(&mut |v| Ok(v.host.crash()?)),
        ("POST", ["power-cut"]) => {
            let p: PowerCut = parse_json_or_default(&body)?;
            match p.when.as_str() {
                "now" => with(&mut |v| Ok(v.host.power_cut()?)),
                "next-save" => with(&mut |v| {
                    v.host.arm_power_cut_during_next_save();
                    Ok(())
                }),
                other => Err(Error::bad(format!(
                    "when must be \"now\" or \"next-save\", not {other:?}"
                ))),
            }
        }
        ("POST", ["power-on"]) => {
            // `encryptionRecoveryKey=` on the boot line (facts 6.5): parsed before anything
            // happens, so a malformed key changes nothing.
            let p: PowerOn = parse_json_or_default(&body)?;
            with(&mut |v| match &p.recovery_key {
                Some(key) => Ok(v.host.power_on_with_recovery_key(key)?),
                None => Ok(v.host.power_on()?),
            })
        }
        ("POST", ["replace-board"]) => {
            let r: ReplaceBoard = parse_json_or_default(&body)?;
            with(&mut |v| Ok(v.host.replace_board(r.new_uuid)?))
        }
        ("GET", ["encryption"]) => Ok(ok(&encryption_state(&state.lock(h).host))),
        ("PUT", ["encryption"]) => {
            let c: EncryptionChange = parse_json(&body)?;
            let mode = c
                .mode
                .as_deref()
                .map(str::parse::<CryptMode>)
                .transpose()
                .map_err(Error::bad)?;
            let mut v = state.lock(h);
            change_encryption(&mut v.host, mode, c.require_secure_boot)?;
            Ok(ok(&encryption_state(&v.host)))
        }
        ("POST", ["encryption", "recovery", "rotate"]) => {
            parse_json_or_default::<NoBody>(&body)?;
            let mut v = state.lock(h);
            rotate_recovery_key(&mut v.host)?;
            Ok(ok(&encryption_state(&v.host)))
        }
        ("GET", ["bootbank", "state.tgz"]) => {
            // The boot device, not RAM: readable while the host is off or halted.
            let v = state.lock(h);
            let bank = v
                .host
                .bootbank()
                .ok_or_else(|| Error::not_found("the host is stateless: it has no /bootbank"))?;
            let bytes = bank
                .state_tgz()
                .ok_or_else(|| Error::not_found("/bootbank has no state.tgz"))?;
            Ok(respond(
                StatusCode::OK,
                "application/octet-stream",
                Bytes::copy_from_slice(&bytes),
            ))
        }
        ("POST", ["reinstall"]) => {
            state.reinstall(h)?;
            Ok(ok(&host_state(state, h)))
        }
        ("POST", ["corrupt-state-tgz"]) => with(&mut |v| Ok(v.host.corrupt_state_tgz()?)),
        ("POST", ["reboot"]) => {
            let kind = parse_json_or_default::<Reboot>(&body)?.kind();
            with(&mut |v| Ok(v.host.reboot(kind, "control API")?))
        }
        ("POST", ["shutdown"]) => {
            let kind = parse_json_or_default::<Reboot>(&body)?.kind();
            with(&mut |v| Ok(v.host.shutdown(kind)?))
        }
        ("PUT", ["stateless"]) => {
            let s: Enabled = parse_json(&body)?;
            with(&mut |v| {
                v.host.set_stateless(s.enabled);
                Ok(())
            })
        }
        ("POST", ["unreachable"]) => {
            let u: Unreachable = parse_json(&body)?;
            let d = parse_duration(&u.duration).map_err(Error::bad)?;
            with(&mut |v| {
                v.set_link_down_until(Some(now.plus(d)));
                Ok(())
            })
        }
        ("DELETE", ["unreachable"]) => with(&mut |v| {
            v.set_link_down_until(None);
            Ok(())
        }),
        ("GET", ["flash"]) => Ok(ok(&flash_state(state, h))),
        ("PUT", ["flash"]) => {
            let f: Flash = parse_json(&body)?;
            if let Some(slow) = &f.slow {
                if let Some(d) = slow {
                    parse_duration(d).map_err(Error::bad)?;
                }
                state
                    .set_slow_flash(h, slow.as_deref())
                    .map_err(Error::bad)?;
            }
            {
                let mut v = state.lock(h);
                let mut faults = v.host.flash_faults().clone();
                faults.read_only = f.read_only.unwrap_or(faults.read_only);
                faults.full = f.full.unwrap_or(faults.full);
                faults.torn_next_write = f.torn_next_write.unwrap_or(faults.torn_next_write);
                if &faults != v.host.flash_faults() {
                    v.host.set_flash_faults(faults);
                }
            }
            Ok(ok(&flash_state(state, h)))
        }
        ("GET", ["events"]) => {
            let f = Filter {
                host: Some(h.index),
                ..Filter::default()
            };
            Ok(ok(&state.log.list(&f)))
        }
        _ => Err(Error::not_found(format!(
            "no host route {m} /{}; see docs/control-api.md",
            rest.join("/")
        ))),
    }
}

// ---- bodies ------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    by: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Speed {
    speed: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PowerCut {
    #[serde(default = "now")]
    when: String,
}

impl Default for PowerCut {
    fn default() -> Self {
        PowerCut { when: now() }
    }
}

fn now() -> String {
    "now".into()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Reboot {
    #[serde(default)]
    force: bool,
}

impl Reboot {
    fn kind(&self) -> RebootKind {
        if self.force {
            RebootKind::Forced
        } else {
            RebootKind::Graceful
        }
    }
}

/// `power-on`'s optional body.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PowerOn {
    /// The recovery key typed at the boot prompt (16 groups of 6 digits).
    #[serde(default)]
    recovery_key: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReplaceBoard {
    /// The vendor programs a new SMBIOS UUID instead of the old one.
    #[serde(default)]
    new_uuid: bool,
}

/// A route that takes no parameters: an empty body or `{}`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NoBody {}

/// `PUT .../encryption`: what `esxcli system settings encryption set` takes; absent fields stay.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptionChange {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    require_secure_boot: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Enabled {
    enabled: bool,
}

/// Flash faults to set; absent fields stay as they are.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flash {
    read_only: Option<bool>,
    full: Option<bool>,
    torn_next_write: Option<bool>,
    /// `"2s"` makes saves that slow; `null` makes them fast again.
    #[serde(default, deserialize_with = "present")]
    slow: Option<Option<String>>,
}

/// Tells a field set to `null` (Some(None)) from one left out (None).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Serialize)]
pub struct FlashState {
    pub read_only: bool,
    pub full: bool,
    pub torn_next_write: bool,
    pub slow: Option<String>,
}

fn flash_state(state: &FleetState, h: &FleetHost) -> FlashState {
    flash_of(state, h, &state.lock(h))
}

/// A host's flash faults, from a lock already held.
fn flash_of(state: &FleetState, h: &FleetHost, v: &Vim) -> FlashState {
    let f = v.host.flash_faults();
    FlashState {
        read_only: f.read_only,
        full: f.full,
        torn_next_write: f.torn_next_write,
        slow: state.slow_flash_of(h),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Unreachable {
    #[serde(rename = "for")]
    duration: String,
}

// ---- encryption (facts 6.4, 6.5) ---------------------------------------------------------

/// A host's configuration encryption as `GET /v1/hosts/{host}/encryption` shows it (the harness
/// reads it back into the same type).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionState {
    /// How the release persists its configuration: `plain`, `configstore`, `encrypted` (7.0 U2+).
    pub era: String,
    /// `NONE` or `TPM`; null before 7.0 U2 (and for a stateless host that is off).
    pub mode: Option<String>,
    /// `esxcli system settings encryption get`'s "Require Secure Boot"; null while the host is
    /// not running (the setting is in RAM and in the sealed store) and before 7.0 U2.
    pub require_secure_boot: Option<bool>,
    /// Whether the board has a TPM.
    pub tpm: bool,
    /// TPM mode on a running host: what `esxcli system settings encryption recovery list` prints.
    pub recovery_key: Option<RecoveryKeyState>,
    /// Why the last boot stopped, while the host is down for it.
    pub boot_halted: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryKeyState {
    /// The Recovery ID: a braced upper-case GUID.
    pub id: String,
    /// 16 groups of 6 digits joined by `-`.
    pub key: String,
}

pub fn encryption_state(host: &Host) -> EncryptionState {
    let running = host.encryption();
    EncryptionState {
        era: host.profile().era.name().to_string(),
        mode: encryption_mode(host).map(|m| m.to_string()),
        require_secure_boot: running.map(|c| c.require_secure_boot),
        tpm: host.tpm().is_some(),
        recovery_key: host.recovery_key().map(|k| RecoveryKeyState {
            id: k.id_text(),
            key: k.key_text(),
        }),
        boot_halted: host.boot_halted().map(str::to_string),
    }
}

/// The mode a host's configuration is sealed in: the running host's key state; while it is off
/// (or halted), the key store next to local.tgz.ve on its boot bank, which is plain text that
/// needs no key to read (facts 6.4).
pub fn encryption_mode(host: &Host) -> Option<CryptMode> {
    if host.profile().era != Era::Encrypted {
        return None;
    }
    if let Some(c) = host.encryption() {
        return Some(c.mode);
    }
    let bank = host.bootbank()?;
    if let Some(ks) = bank.saved_keystore() {
        return Some(ks.mode());
    }
    match peek(&bank.state_tgz()?, host.limits()) {
        Ok(Shape::Sealed { keystore }) => Some(keystore.mode()),
        _ => None,
    }
}

/// Releases before 7.0 U2 have no encrypted configuration to set (facts 6.1): the build forbids
/// it, so 409 like any other state the host cannot do it in.
fn require_encrypting(host: &Host) -> Result<(), HostError> {
    if host.profile().era == Era::Encrypted {
        Ok(())
    } else {
        Err(HostError::InvalidState(format!(
            "ESXi {} does not encrypt its configuration (7.0 Update 2 and later do)",
            host.profile().release
        )))
    }
}

/// `esxcli system settings encryption recovery rotate`.
pub fn rotate_recovery_key(host: &mut Host) -> Result<(), HostError> {
    require_encrypting(host)?;
    host.rotate_recovery_key()
}

/// `esxcli system settings encryption set [--mode] [--require-secure-boot]`: both checked
/// before either is applied, so a refused mode change leaves the secure-boot setting too.
pub fn change_encryption(
    host: &mut Host,
    mode: Option<CryptMode>,
    require_secure_boot: Option<bool>,
) -> Result<(), HostError> {
    require_encrypting(host)?;
    if let Some(m) = mode {
        host.set_encryption_mode(m)?;
    }
    if let Some(s) = require_secure_boot {
        host.set_require_secure_boot(s)?;
    }
    Ok(())
}

fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Answer<T> {
    serde_json::from_slice(body).map_err(|e| Error::bad(format!("request body: {e}")))
}

fn parse_json_or_default<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Answer<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(body)
    }
}

// ---- answers -----------------------------------------------------------------------------

/// A host as the control API lists it.
#[derive(Serialize)]
pub struct HostState {
    pub index: usize,
    pub id: String,
    pub name: String,
    pub url: String,
    pub hostname: String,
    pub uuid: String,
    pub profile: String,
    pub build: u32,
    /// 7.0 U2+: `NONE` or `TPM` (null before 7.0 U2).
    pub encryption: Option<String>,
    /// `on`, `off` or `booting`.
    pub power: &'static str,
    /// While booting: virtual milliseconds until the host answers.
    pub booting_for_ms: Option<u64>,
    /// Why the last boot stopped (facts 6.5), while the host is down for it.
    pub boot_halted: Option<String>,
    pub reachable: bool,
    pub unreachable_until: Option<String>,
    pub maintenance_mode: bool,
    pub stateless: bool,
    pub unsaved_changes: bool,
    pub last_save: Option<String>,
    pub next_auto_backup: Option<String>,
    pub boots: u32,
    pub bootbank_writes: u64,
    pub bootbank_bytes: u64,
    /// Saves that rewrote state.tgz since install (the install's own included).
    pub state_saves: u64,
    pub state_tgz_bytes: Option<usize>,
    pub flash: FlashState,
}

pub fn host_state(state: &FleetState, h: &FleetHost) -> HostState {
    let v = state.lock(h);
    let flash = flash_of(state, h, &v);
    let host = &v.host;
    let writes = host.bootbank_writes();
    let last_save = host.last_save().map(|t| t.to_rfc3339());
    HostState {
        index: h.index,
        id: h.vcenter_id(),
        name: h.name.clone(),
        url: h.url.clone(),
        hostname: host.hostname(),
        uuid: host.api_uuid(),
        profile: host.profile().name.clone(),
        build: host.profile().build,
        encryption: encryption_mode(host).map(|m| m.to_string()),
        power: match host.power_state() {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::Booting { .. } => "booting",
        },
        booting_for_ms: match host.power_state() {
            PowerState::Booting { ready_at } => Some(ready_at.since(host.now()).as_millis() as u64),
            _ => None,
        },
        boot_halted: host.boot_halted().map(str::to_string),
        reachable: v.reachable(),
        unreachable_until: v.link_down_until().map(|t| t.to_rfc3339()),
        maintenance_mode: host.in_maintenance_mode(),
        stateless: host.is_stateless(),
        unsaved_changes: host.has_unsaved_changes(),
        last_save,
        next_auto_backup: host.next_auto_backup().map(|t| t.to_rfc3339()),
        boots: host.boots(),
        bootbank_writes: writes.files,
        bootbank_bytes: writes.bytes,
        state_saves: writes.state_saves,
        state_tgz_bytes: host.bootbank().and_then(|b| b.state_len()),
        flash,
    }
}

fn clock(state: &FleetState) -> serde_json::Value {
    json!({ "now": state.now().to_rfc3339(), "speed": state.speed() })
}

fn fleet_summary(state: &FleetState) -> serde_json::Value {
    let scheme = if state.cfg.tls { "https" } else { "http" };
    let mut profiles: BTreeMap<String, usize> = BTreeMap::new();
    for (p, n) in &state.cfg.profiles {
        *profiles.entry(p.clone()).or_default() += n;
    }
    json!({
        "mode": match state.cfg.mode { Mode::Esxi => "esxi", Mode::VCenter => "vcenter" },
        "hosts": state.hosts.len(),
        "profiles": profiles,
        "vcenter": state.vcenter_addr.map(|a| crate::server::sdk_url(scheme, a)),
        "first_host": state.hosts.first().map(|h| h.url.clone()),
        "seed": state.cfg.seed,
        "clock": clock(state),
        "faults": state.faults.list().len(),
        "events": state.log.last_seq(),
    })
}

fn filter(state: &FleetState, q: &BTreeMap<String, String>) -> Answer<Filter> {
    let host = match q.get("host") {
        Some(id) => Some(
            state
                .find(id)
                .ok_or_else(|| Error::not_found(format!("no host {id:?}")))?
                .index,
        ),
        None => None,
    };
    let num = |k: &str| -> Answer<Option<u64>> {
        q.get(k)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| Error::bad(format!("{k} must be a number")))
            })
            .transpose()
    };
    Ok(Filter {
        host,
        kinds: q
            .get("kind")
            .map(|k| k.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default(),
        after: num("after")?,
        limit: num("limit")?.map(|l| l as usize),
    })
}

/// `GET /v1/trace`'s query: `after`, `limit`, `host` (any name the API accepts), `endpoint`,
/// `method`.
fn trace_filter(
    state: &FleetState,
    q: &BTreeMap<String, String>,
) -> Answer<crate::server::trace::Filter> {
    let f = filter(state, q)?;
    Ok(crate::server::trace::Filter {
        after: f.after,
        host: f.host,
        endpoint: q.get("endpoint").cloned(),
        method: q.get("method").cloned(),
        limit: f.limit,
    })
}

/// Server-Sent Events: what the log has after `f.after`, then each new event as it is
/// gathered, with a comment line every 15 s so proxies keep the stream open.
fn stream(state: &Arc<FleetState>, f: Filter, mut shutdown: watch::Receiver<bool>) -> Resp {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut live = state.log.subscribe();
    let backlog = if f.after.is_some() {
        state.log.list(&f)
    } else {
        Vec::new()
    };
    let filter = Filter { limit: None, ..f };
    tokio::spawn(async move {
        let frame = |e: &super::FleetEvent| {
            let data = serde_json::to_string(e).unwrap_or_default();
            Bytes::from(format!(
                "id: {}\nevent: {}\ndata: {data}\n\n",
                e.seq, e.kind
            ))
        };
        let mut last = 0;
        for e in backlog {
            last = e.seq;
            if tx.send(frame(&e)).await.is_err() {
                return;
            }
        }
        if tx
            .send(Bytes::from_static(b": esxi-sim events\n\n"))
            .await
            .is_err()
        {
            return;
        }
        loop {
            tokio::select! {
                r = live.recv() => match r {
                    Ok(e) => {
                        if e.seq > last && filter.accepts(&e) && tx.send(frame(&e)).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        let note = format!(": {n} events dropped (slow reader)\n\n");
                        if tx.send(Bytes::from(note)).await.is_err() { return; }
                    }
                    Err(_) => return,
                },
                _ = tokio::time::sleep(Duration::from_secs(15)) => {
                    if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() { return; }
                }
                _ = shutdown.changed() => return,
            }
        }
    });
    let mut r = Response::new(Body::Stream(rx));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    r
}

// ---- URLs --------------------------------------------------------------------------------

fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (query_decode(k), query_decode(v))
        })
        .collect()
}

/// Percent-encodes a path segment or query value (all but RFC 3986's unreserved characters), as
/// `esxi-sim ctl` and the harness name hosts and files in control API paths.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `%2F` → `/` (a path segment); invalid escapes stay as they are.
fn percent_decode(s: &str) -> String {
    decode(s, false)
}

/// A query's part: also `+` → space.
fn query_decode(s: &str) -> String {
    decode(s, true)
}

fn decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("etc%2Fhosts"), "etc/hosts");
        for s in ["etc/hosts", "a b+c%", "esx-01.lab", "ünï"] {
            assert_eq!(percent_decode(&encode(s)), s);
        }
        assert_eq!(encode("etc/hosts"), "etc%2Fhosts");
        assert_eq!(percent_decode("a+b"), "a+b");
        assert_eq!(query_decode("a+b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
        let q = parse_query("host=3&kind=saved,crashed&x");
        assert_eq!(q["host"], "3");
        assert_eq!(q["kind"], "saved,crashed");
        assert_eq!(q["x"], "");
    }
}
