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
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
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
use crate::host::{HostError, PowerState, RebootKind};
use crate::server::faults::RuleSpec;
use crate::vim::Vim;

/// Largest request body (file contents included).
const MAX_BODY: usize = 16 << 20;

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
        loop {
            let (stream, _) = tokio::select! {
                a = listener.accept() => match a {
                    Ok(x) => x,
                    Err(_) => { tokio::time::sleep(Duration::from_millis(50)).await; continue }
                },
                _ = shutdown.changed() => return,
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
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if let Some(token) = &state.cfg.control_token {
        let given = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given.map(str::trim) != Some(token.as_str()) {
            let mut r = json_resp(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "a bearer token is required (Authorization: Bearer ...)"}),
            );
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"esxi-sim control\""),
            );
            return r;
        }
    }
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
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
    let q = parse_query(&query);
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let r = route(&state, &method, &segs, &q, body, last_event_id, shutdown).await;
    match r {
        Ok(resp) => resp,
        Err(Error(status, msg)) => json_resp(status, &json!({ "error": msg })),
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
        ("POST", ["power-on"]) => with(&mut |v| Ok(v.host.power_on()?)),
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
    /// `on`, `off` or `booting`.
    pub power: &'static str,
    /// While booting: virtual milliseconds until the host answers.
    pub booting_for_ms: Option<u64>,
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
        power: match host.power_state() {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::Booting { .. } => "booting",
        },
        booting_for_ms: match host.power_state() {
            PowerState::Booting { ready_at } => Some(ready_at.since(host.now()).as_millis() as u64),
            _ => None,
        },
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
        state_tgz_bytes: host.bootbank().and_then(|b| b.state_tgz()).map(|s| s.len()),
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
