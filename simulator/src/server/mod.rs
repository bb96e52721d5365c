//! The HTTPS front of one simulated host: hyper + tokio + rustls.
//!
//! Routes (as hostd's reverse proxy serves them):
//! - `POST /sdk`: SOAP ([`sdk`]: the envelope in, the answer out; the call itself is answered
//!   by [`call`], the same for any wire, and the session cookie is [`cookie`]'s);
//!   `GET /sdk/vimServiceVersions.xml`; the WSDL ([`wsdl`]);
//! - VI/JSON on a vCenter of 8.0U1+: `POST /api/vcenter/system?action=hello`, `GET`/`POST
//!   /sdk/vim25/{release}/{Type}/{id}/{property or method}` ([`vijson`], the same [`call`]);
//! - `GET`/`HEAD /downloads/<uuid>/<file>`, `PUT /tmp/configBundle.tgz` ([`transfer`]);
//! - an optional plain listener answering `301 Moved Permanently` to https, as port 80 does.
//!
//! Time: each request first moves the model to the wall clock mapped through a
//! [`RealTimeClock`] (the model itself never reads the wall clock). A rebooting host goes
//! through the phases of [`phases`]: the proxy's `503` while hostd stops, the port closed while
//! the machine restarts (and while it is off), `503` again while hostd starts.
//!
//! Waits: a WaitForUpdates with nothing to report sleeps ([`call`]) on the API state's change
//! signal ([`crate::vim::changes`]) and its horizon, never polling; [`Shared::lock`]'s guard bumps
//! the signal for whoever used the state mutably outside a SOAP call.

mod accept;
pub mod call;
pub mod cookie;
pub mod faults;
pub mod offload;
pub mod phases;
pub mod sdk;
pub mod tls;
pub mod trace;
pub mod transfer;
pub mod vijson;
pub mod wsdl;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::RealTimeClock;
use crate::vim::{Changes, Vim, VimConfig};
use crate::Host;
use faults::{FaultSet, Hit, Target};
pub use phases::{Phase, RebootPhases};

pub use accept::AcceptBackoff;
pub use tls::CertSource;

/// A rebooting host's port closes this long (wall time) before the host goes down, so that
/// the connections it serves last still meet the proxy's 503 ([`phases`]; [inferred]).
const CLOSE_EARLY: Duration = Duration::from_millis(250);

/// How the firmware URLs are spelled (facts section 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlStyle {
    /// `http://*/...`: what a real host returns (right only on port 443).
    Esxi,
    /// `https://*:PORT/...`: scheme and port spelled out, for clients that add neither.
    Explicit,
    /// Esxi on port 443, Explicit elsewhere.
    Auto,
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// None: plain HTTP (debugging only).
    pub tls: Option<CertSource>,
    /// A plain listener that redirects to https (`301`), as port 80 on a real host.
    pub redirect: Option<SocketAddr>,
    pub url_style: UrlStyle,
    /// Largest SOAP request body.
    pub max_soap_body: usize,
    /// Largest upload (`PUT /tmp/configBundle.tgz`).
    pub max_upload: usize,
    /// A client must send its request head within this (slow clients cannot pin a connection).
    pub header_timeout: Duration,
    /// ... and its body within this.
    pub body_timeout: Duration,
    /// Virtual seconds per wall second.
    pub clock_speed: f64,
    /// What the port does while the host reboots ([`phases`]).
    pub reboot: RebootPhases,
    /// Where requests are recorded ([`trace`]); a fleet's endpoints share one.
    pub trace: Option<Arc<trace::Trace>>,
    /// The VI/JSON releases this endpoint negotiates, newest first ([`vijson`]); empty: SOAP
    /// only, as every host and a vCenter before 8.0U1.
    pub vi_json: Vec<String>,
    pub vim: VimConfig,
}

impl ServerConfig {
    pub fn new(listen: SocketAddr) -> ServerConfig {
        ServerConfig {
            listen,
            tls: Some(CertSource::SelfSigned),
            redirect: None,
            url_style: UrlStyle::Auto,
            max_soap_body: 8 << 20,
            max_upload: 16 << 20,
            header_timeout: Duration::from_secs(20),
            body_timeout: Duration::from_secs(60),
            clock_speed: 1.0,
            reboot: RebootPhases::default(),
            trace: None,
            vi_json: Vec::new(),
            vim: VimConfig::default(),
        }
    }
}

/// What every connection of one endpoint shares: the API state (the host's, or the vCenter's),
/// the clock that drives it (one per fleet), and the fleet's fault rules.
pub struct Shared {
    pub vim: Arc<Mutex<Vim>>,
    pub clock: Arc<Mutex<RealTimeClock>>,
    pub faults: Arc<FaultSet>,
    /// How fault rules and logs name this endpoint: the host's address, or `vcenter`.
    pub label: String,
    /// The host's index in its fleet (None for a vCenter).
    pub index: Option<usize>,
    pub cfg: ServerConfig,
    pub scheme: &'static str,
    pub port: u16,
    /// This endpoint's share of the pool for CPU-heavy work ([`offload`]).
    pub cpu_slots: Arc<tokio::sync::Semaphore>,
    /// The API state's change signal (the same one the `Vim` holds, reachable without its
    /// lock): what waiting WaitForUpdates calls sleep on ([`crate::vim::changes`]).
    pub changes: Changes,
    /// Announces moves of the clock ([`RealTimeClock::rebased`]), which move every wait's
    /// horizon in wall time.
    rebased: watch::Receiver<u64>,
    /// Set when the server stops: waiting calls end at once.
    closing: AtomicBool,
    /// WaitForUpdates calls parked now, waiting for a change.
    pub(crate) waiting: AtomicUsize,
}

/// The API state, locked ([`Shared::lock`]). Whoever uses it mutably (the control API, the
/// harness, tests) is taken to have changed it: waiters look again once it is released. A
/// SOAP call uses [`VimGuard::quiet`] instead and applies the finer rule of [`Vim::call`].
pub struct VimGuard<'a> {
    guard: Option<MutexGuard<'a, Vim>>,
    changed: bool,
}

impl VimGuard<'_> {
    /// Mutable use that is not by itself a change (the caller decides).
    pub fn quiet(&mut self) -> &mut Vim {
        self.guard.as_mut().expect("present until dropped")
    }
}

impl std::ops::Deref for VimGuard<'_> {
    type Target = Vim;
    fn deref(&self) -> &Vim {
        self.guard.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for VimGuard<'_> {
    fn deref_mut(&mut self) -> &mut Vim {
        self.changed = true;
        self.guard.as_mut().expect("present until dropped")
    }
}

impl Drop for VimGuard<'_> {
    fn drop(&mut self) {
        let Some(g) = self.guard.take() else { return };
        let changes = self.changed.then(|| g.changes().clone());
        // Released first: the waiters it wakes go straight for the lock.
        drop(g);
        if let Some(c) = changes {
            c.bump();
        }
    }
}

impl Shared {
    /// An endpoint's shared state without a listener, for in-process drivers of the control
    /// API and the dispatch (the fuzzers): wired to the state's change signal and the clock as
    /// a bound server's is.
    pub fn detached(
        vim: Arc<Mutex<Vim>>,
        clock: Arc<Mutex<RealTimeClock>>,
        faults: Arc<FaultSet>,
        label: String,
        index: Option<usize>,
        cfg: ServerConfig,
    ) -> Shared {
        let changes = vim
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .changes()
            .clone();
        let rebased = clock.lock().unwrap_or_else(|e| e.into_inner()).rebased();
        let port = cfg.listen.port();
        Shared {
            vim,
            clock,
            faults,
            label,
            index,
            cfg,
            scheme: "http",
            port,
            cpu_slots: offload::endpoint_slots(),
            changes,
            rebased,
            closing: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Locks the API state with the model moved to now. Used mutably, the guard wakes the
    /// waiters when released ([`VimGuard`]).
    pub fn lock(&self) -> VimGuard<'_> {
        let now = self.clock.lock().unwrap_or_else(|e| e.into_inner()).now();
        let mut vim = self.vim.lock().unwrap_or_else(|e| e.into_inner());
        vim.sync_to(now);
        VimGuard {
            guard: Some(vim),
            changed: false,
        }
    }
    /// Ends the waiting calls (the server is stopping).
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.changes.bump();
    }
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }
    /// How many WaitForUpdates calls are parked, waiting for a change.
    pub fn waiters(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
    pub fn reachable(&self) -> bool {
        self.lock().reachable()
    }
    /// The host's reboot phase now, and when it next changes by time alone ([`phases`]).
    pub fn phase(&self) -> (Phase, Option<crate::clock::SimTime>) {
        phases::phase(&self.lock(), &self.cfg.reboot)
    }
    /// The fault rule that fires for this request, if any.
    pub fn fault_for(&self, method: &str, this: Option<&crate::api::MoRef>) -> Option<Hit> {
        // On a vCenter, a call about a host's objects counts as that host's too.
        let index = self
            .index
            .or_else(|| this.and_then(|m| crate::vim::vcenter::host_index_of(&m.id)));
        self.faults.check(&Target {
            endpoint: &self.label,
            index,
            method,
            object_type: this.map_or("", |m| m.ty.as_str()),
            object_id: this.map_or("", |m| m.id.as_str()),
        })
    }
}

/// Where an endpoint's state comes from when it is one of many (a fleet's host or vCenter).
pub struct Endpoint {
    pub vim: Arc<Mutex<Vim>>,
    pub clock: Arc<Mutex<RealTimeClock>>,
    pub faults: Arc<FaultSet>,
    /// How rules and logs name the endpoint; None: its bound address and port (what tells apart
    /// the hosts of a ports-layout fleet, whose ports are known only once bound).
    pub label: Option<String>,
    pub index: Option<usize>,
    /// The certificate's names (the host name, `localhost`).
    pub names: Vec<String>,
}

/// A bound server: its address, and the future that serves until shutdown.
pub struct Server {
    pub addr: SocketAddr,
    pub redirect_addr: Option<SocketAddr>,
    pub shared: Arc<Shared>,
    listener: TcpListener,
    redirect: Option<TcpListener>,
    tls: Option<Arc<tls::Acceptor>>,
}

/// The URL clients use for the SDK.
pub fn sdk_url(scheme: &str, addr: SocketAddr) -> String {
    format!("{scheme}://{addr}/sdk")
}

impl Server {
    /// Binds the listeners and prepares TLS for one standalone host; serving starts with
    /// [`Server::run`].
    pub async fn bind(host: Host, cfg: ServerConfig) -> Result<Server, String> {
        let names = vec!["localhost".to_string(), host.hostname()];
        let start = host.now();
        let seed = host.identity().seed;
        let ep = Endpoint {
            vim: Arc::new(Mutex::new(Vim::new(host, cfg.vim.clone()))),
            clock: Arc::new(Mutex::new(RealTimeClock::new(start, cfg.clock_speed))),
            faults: Arc::new(FaultSet::new(seed)),
            label: Some("host".into()),
            index: None,
            names,
        };
        let tls = cfg
            .tls
            .as_ref()
            .map(|src| tls::Acceptor::eager(src.clone()));
        Server::bind_endpoint(ep, cfg, tls).await
    }

    /// Binds one endpoint of a fleet. `tls` decides how its certificate is made (a fleet makes
    /// each host's on its first connection, so ten thousand hosts start at once).
    pub async fn bind_endpoint(
        ep: Endpoint,
        mut cfg: ServerConfig,
        tls: Option<tls::Acceptor>,
    ) -> Result<Server, String> {
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let redirect = match cfg.redirect {
            Some(a) => Some(
                TcpListener::bind(a)
                    .await
                    .map_err(|e| format!("cannot listen on {a}: {e}"))?,
            ),
            None => None,
        };
        let redirect_addr = redirect.as_ref().and_then(|l| l.local_addr().ok());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let tls = match tls {
            Some(mut t) => {
                let mut names = ep.names.clone();
                if let Ok(h) = std::env::var("HOSTNAME") {
                    names.push(h);
                }
                t.set_identity(names, vec![addr.ip()]);
                t.prepare()?;
                Some(Arc::new(t))
            }
            None => None,
        };
        let explicit = match cfg.url_style {
            UrlStyle::Esxi => false,
            UrlStyle::Explicit => true,
            UrlStyle::Auto => addr.port() != 443,
        };
        let prefix = if explicit {
            format!("{scheme}://*:{}", addr.port())
        } else {
            "http://*".to_string()
        };
        cfg.vim.url_prefix = prefix.clone();
        {
            let mut v = ep.vim.lock().unwrap_or_else(|e| e.into_inner());
            v.cfg.url_prefix = prefix;
            v.cfg.address = Some(addr.ip());
        }
        let label = ep.label.unwrap_or_else(|| addr.to_string());
        let shared = Arc::new(Shared {
            scheme,
            port: addr.port(),
            ..Shared::detached(ep.vim, ep.clock, ep.faults, label, ep.index, cfg)
        });
        Ok(Server {
            addr,
            redirect_addr,
            shared,
            listener,
            redirect,
            tls,
        })
    }

    pub fn url(&self) -> String {
        sdk_url(self.shared.scheme, self.addr)
    }

    /// Serves until `shutdown` turns true, then lets open requests finish (up to 10 s).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        if let Some(r) = self.redirect {
            let port = self.addr.port();
            let rx = shutdown.clone();
            tokio::spawn(redirect_loop(r, port, self.shared.clone(), rx));
        }
        let mut backoff = accept::AcceptBackoff::new("sdk");
        let mut listener = Some(self.listener);
        let mut changes = self.shared.changes.subscribe();
        let mut rebased = self.shared.rebased.clone();
        // A vCenter does not reboot: its loop need not wake at every change of its hosts.
        let refuse =
            self.shared.cfg.reboot.refuse_while_down && self.shared.lock().estate.is_none();
        loop {
            // While the host is down its port is closed (connections are refused), and opened
            // again when hostd's proxy starts ([`phases`]). The loop looks again at each change
            // of the API state and at the phase's next boundary.
            let mut wake = None;
            if refuse {
                let (phase, next) = self.shared.phase();
                wake = next.and_then(|t| {
                    let clock = self.shared.clock.lock().unwrap_or_else(|e| e.into_inner());
                    clock.wall_until(t)
                });
                // The port closes a little before the host goes down, and what the kernel has
                // already queued is served first (503: the proxy still answers): a close with
                // connections queued would reset them, and a connection accepted once down is
                // dropped; a client polling the port sees 503, then refused, never a reset.
                let closing_soon =
                    phase == Phase::Stopping && wake.is_some_and(|w| w <= CLOSE_EARLY);
                if phase == Phase::Stopping && !closing_soon {
                    wake = wake.map(|w| w.saturating_sub(CLOSE_EARLY));
                }
                match (phase == Phase::Down || closing_soon, listener.is_some()) {
                    (true, true) => {
                        if let Some(l) = listener.take() {
                            // Straight from the socket (non-blocking) until it is empty: the
                            // reactor may not have seen the latest arrivals yet.
                            if let Ok(l) = l.into_std() {
                                while let Ok((s, peer)) = l.accept() {
                                    let s = s.set_nonblocking(true).map(|_| s);
                                    if let Ok(stream) = s.and_then(tokio::net::TcpStream::from_std)
                                    {
                                        Server::spawn_conn(
                                            &self.shared,
                                            &self.tls,
                                            &graceful,
                                            stream,
                                            peer,
                                        );
                                    }
                                }
                            }
                        }
                        tracing::debug!(addr = %self.addr, "host down: port closed");
                    }
                    (false, false) => match TcpListener::bind(self.addr).await {
                        Ok(l) => {
                            tracing::debug!(addr = %self.addr, "port open again");
                            listener = Some(l);
                        }
                        Err(e) => {
                            // Someone took the port meanwhile: try again shortly.
                            tracing::warn!(addr = %self.addr, "cannot listen again: {e}");
                            wake = Some(Duration::from_millis(200));
                        }
                    },
                    _ => {}
                }
            }
            let wake = wake.unwrap_or(Duration::from_secs(86_400));
            let accepted = tokio::select! {
                a = async {
                    match &listener {
                        Some(l) => l.accept().await,
                        None => std::future::pending().await,
                    }
                } => a,
                _ = changes.changed(), if refuse => continue,
                _ = rebased.changed(), if refuse => continue,
                _ = tokio::time::sleep(wake), if refuse => continue,
                _ = shutdown.changed() => break,
            };
            let (stream, peer) = match accepted {
                Ok(x) => {
                    backoff.reset();
                    x
                }
                Err(e) => {
                    let wait = backoff.failed(&e);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => continue,
                        _ = shutdown.changed() => break,
                    }
                }
            };
            // Down (as the change that closes the port is being noticed) or unreachable: the
            // connection closes at once. Stopping and starting are served (with 503).
            if !self.shared.reachable() && !self.shared.phase().0.proxy_only() {
                tracing::debug!(%peer, "host is down: connection closed");
                drop(stream);
                continue;
            }
            Server::spawn_conn(&self.shared, &self.tls, &graceful, stream, peer);
        }
        // Parked WaitForUpdates calls end now: they would hold the grace period below.
        self.shared.close();
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(Duration::from_secs(10)) => {
                tracing::warn!("connections still open after 10 s; closing them");
            }
        }
    }

    /// Serves one accepted connection (TLS, then HTTP/1.1 with keep-alive) on its own task.
    fn spawn_conn(
        shared: &Arc<Shared>,
        tls: &Option<Arc<tls::Acceptor>>,
        graceful: &hyper_util::server::graceful::GracefulShutdown,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
    ) {
        let _ = stream.set_nodelay(true);
        let header_timeout = shared.cfg.header_timeout;
        let shared = shared.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { handle(shared, peer, req).await }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            match tls {
                Some(lazy) => {
                    let acceptor = match lazy.get() {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(%peer, "no certificate: {e}");
                            return;
                        }
                    };
                    // A client that never finishes the handshake is cut off like a slow one.
                    let hs = tokio::time::timeout(header_timeout, acceptor.accept(stream)).await;
                    let tls_stream = match hs {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = builder.serve_connection(TokioIo::new(tls_stream), service);
                    let _ = watcher.watch(conn).await;
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
            }
        });
    }
}

/// Raises the soft open-file limit to the hard one if it is below `want` (each listener and
/// each connection is a descriptor: a fleet, or thousands of parked waits). Returns the limit
/// in force afterwards; None where it cannot be read.
// rlim_t is u64 on Linux but not on every unix: the casts are for those.
#[allow(clippy::unnecessary_cast)]
pub fn raise_file_limit(want: u64) -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read or write the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return None;
        }
        if (lim.rlim_cur as u64) < want && lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: as above.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        Some(lim.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    {
        let _ = want;
        None
    }
}

/// Why a request gets no response: the host is down, so the connection just closes.
#[derive(Debug)]
pub struct HostDown;
impl std::fmt::Display for HostDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "host is not running")
    }
}
impl std::error::Error for HostDown {}

pub type Resp = Response<Body>;

/// A response body: all of it, or (a `reset` fault) the first part and then a dropped
/// connection, with the full length announced so the client sees a truncated response.
pub struct Body {
    data: Option<Bytes>,
    len: u64,
    cut: bool,
    /// A cut body waits this out after its half, so hyper has written the head and the half
    /// before the error drops the connection.
    pause: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl Body {
    pub fn full(data: impl Into<Bytes>) -> Body {
        let data: Bytes = data.into();
        Body {
            len: data.len() as u64,
            data: Some(data),
            cut: false,
            pause: None,
        }
    }
    /// Sends half of `data`, then fails the connection.
    pub fn cut(data: Bytes) -> Body {
        Body {
            len: data.len() as u64,
            data: Some(data.slice(..data.len() / 2)),
            cut: true,
            pause: Some(Box::pin(tokio::time::sleep(Duration::from_millis(50)))),
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = HostDown;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, HostDown>>> {
        use std::task::Poll;
        if let Some(d) = self.data.take() {
            if !d.is_empty() {
                return Poll::Ready(Some(Ok(hyper::body::Frame::data(d))));
            }
        }
        if let Some(p) = self.pause.as_mut() {
            if std::future::Future::poll(p.as_mut(), cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        }
        if self.cut {
            self.cut = false;
            return Poll::Ready(Some(Err(HostDown)));
        }
        Poll::Ready(None)
    }
    fn is_end_stream(&self) -> bool {
        self.data.is_none() && !self.cut
    }
    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.len)
    }
}

/// Turns a response into one that drops the connection halfway through its body.
pub fn cut_short(r: Resp) -> Resp {
    let (parts, body) = r.into_parts();
    let data = body.data.unwrap_or_default();
    let mut r = Response::from_parts(parts, Body::cut(data));
    if let Ok(v) = hyper::header::HeaderValue::from_str(&r.body().len.to_string()) {
        r.headers_mut().insert(hyper::header::CONTENT_LENGTH, v);
    }
    r
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let body: Bytes = body.into();
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Resp, HostDown> {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // SOAP and transfers check that the host is up under the lock they take anyway; one lock
    // per request halves contention under load.
    let routed = match (method.as_str(), path.as_str()) {
        // WSDL clients post to the WSDL's address, or (node-vsphere-soap) to the WSDL's URL.
        ("POST", p) if sdk::is_soap_path(p) => sdk::soap(&shared, peer, req).await,
        ("GET", "/sdk/vimServiceVersions.xml") => sdk::service_versions(&shared),
        ("GET", p) if wsdl::serves(p) => wsdl::get(&shared, p),
        (_, p) if vijson::serves(&shared, p) => vijson::handle(&shared, peer, req).await,
        (_, "/sdk" | "/sdk/" | "/sdk/vimServiceVersions.xml") => {
            Ok(text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"))
        }
        (_, p) if p.starts_with("/downloads/") || p == "/tmp/configBundle.tgz" => {
            transfer::handle(&shared, req).await
        }
        _ if !shared.reachable() => Err(HostDown),
        _ => Ok(text(StatusCode::NOT_FOUND, "not found\n")),
    };
    // hostd is not there: while the proxy is (a reboot's first and last moments) it says so;
    // otherwise the connection just ends.
    let resp = match routed {
        Ok(r) => r,
        Err(HostDown) => match shared.phase().0 {
            p if p.proxy_only() => text(StatusCode::SERVICE_UNAVAILABLE, phases::PROXY_503_BODY),
            _ => {
                record(&shared, peer, method.as_str(), &path, None, started);
                return Err(HostDown);
            }
        },
    };
    tracing::info!(
        %peer, %method, %path, status = resp.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    record(&shared, peer, method.as_str(), &path, Some(&resp), started);
    Ok(resp)
}

/// Adds a request to the trace, if there is one: what the handlers noted on the response
/// ([`trace::CallNote`], [`trace::TransferNote`], [`trace::RuleNote`]), its status; no response:
/// the connection was dropped.
fn record(
    shared: &Shared,
    peer: SocketAddr,
    method: &str,
    path: &str,
    resp: Option<&Resp>,
    started: std::time::Instant,
) {
    let Some(t) = &shared.cfg.trace else { return };
    let at = shared.clock.lock().unwrap_or_else(|e| e.into_inner()).now();
    let ext = resp.map(|r| r.extensions());
    let call = ext.and_then(|e| e.get::<trace::CallNote>()).cloned();
    let status = resp.map_or(0, |r| r.status().as_u16());
    let kind = trace::kind_of(method, path);
    let fault = call.as_ref().and_then(|n| n.fault.clone());
    let outcome = match (resp, &fault) {
        (None, _) => "dropped",
        (Some(_), Some(_)) => "fault",
        (Some(_), None) if status >= 400 => "error",
        _ => "ok",
    };
    let transfer = ext.and_then(|e| e.get::<trace::TransferNote>());
    let bytes = match kind {
        "download" => resp.map(|r| r.body().len),
        _ => transfer.and_then(|n| n.bytes),
    };
    t.record(trace::Record {
        seq: 0,
        at: at.to_rfc3339_millis(),
        endpoint: shared.label.clone(),
        host: call.as_ref().and_then(|n| n.host).or(shared.index),
        kind,
        method: call
            .as_ref()
            .map_or_else(|| method.to_string(), |n| n.method.clone()),
        object: call.as_ref().and_then(|n| n.object.clone()),
        path: path.to_string(),
        user: call
            .as_ref()
            .and_then(|n| n.user.clone())
            .or_else(|| transfer.and_then(|n| n.user.clone())),
        client: peer.to_string(),
        status,
        outcome,
        message: fault.as_ref().map(|f| f.1.clone()),
        fault: fault.map(|f| f.0),
        rule: ext.and_then(|e| e.get::<trace::RuleNote>()).map(|r| r.0),
        bytes,
        location: None,
        ms: started.elapsed().as_millis() as u64,
    });
}

/// Port-80 behaviour: every request is sent to the same path over https.
async fn redirect_loop(
    listener: TcpListener,
    https_port: u16,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let header_timeout = shared.cfg.header_timeout;
    let mut backoff = accept::AcceptBackoff::new("port 80");
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => {
                backoff.reset();
                x
            }
            Err(e) => {
                let wait = backoff.failed(&e);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                async move {
                    let started = std::time::Instant::now();
                    let host = req
                        .headers()
                        .get(hyper::header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .map(|h| {
                            h.rsplit_once(':')
                                .map_or(h, |(a, p)| {
                                    if p.chars().all(|c| c.is_ascii_digit()) {
                                        a
                                    } else {
                                        h
                                    }
                                })
                                .to_string()
                        })
                        .unwrap_or_else(|| "localhost".into());
                    let port = if https_port == 443 {
                        String::new()
                    } else {
                        format!(":{https_port}")
                    };
                    let pq = req
                        .uri()
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or("/");
                    let mut r = text(StatusCode::MOVED_PERMANENTLY, "");
                    let location = format!("https://{host}{port}{pq}");
                    if let Ok(v) = hyper::header::HeaderValue::from_str(&location) {
                        r.headers_mut().insert(hyper::header::LOCATION, v);
                    }
                    if let Some(t) = &shared.cfg.trace {
                        let at = shared.clock.lock().unwrap_or_else(|e| e.into_inner()).now();
                        t.record(trace::Record {
                            at: at.to_rfc3339_millis(),
                            endpoint: shared.label.clone(),
                            host: shared.index,
                            kind: "redirect",
                            method: req.method().to_string(),
                            path: req.uri().path().to_string(),
                            client: peer.to_string(),
                            status: 301,
                            outcome: "ok",
                            location: Some(location),
                            ms: started.elapsed().as_millis() as u64,
                            ..trace::Record::default()
                        });
                    }
                    Ok::<_, Infallible>(r)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
