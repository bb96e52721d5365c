//! The control API's routes with hostile requests.
//!
//! An input is one to four HTTP requests written as text (request line, headers, a blank line,
//! the body), separated by [`NEXT`]. Each goes, in process, through
//! `fleet::control::answer`: the same admission checks (Host, Origin, bearer token, content
//! type) and routes the listener runs once it has read a body. The fleet is made fresh for
//! every input from installed templates, with the parts `Fleet::start` assembles but no
//! sockets: three hosts (6.7U3, 8.0U3 in NONE mode, 8.0U3 in TPM mode) behind a vCenter, one
//! frozen clock (speed 0, so nothing moves unless a request moves it; a request that sets a
//! speed is answered, then the clock is frozen again before the next), the fault rules, the
//! event log, and a bearer token.
//!
//! Checked for every request:
//! - nothing panics, on this thread or the runtime's blocking pool (a panic there is a 500);
//! - no 5xx, ever: bad input is the client's fault;
//! - every error is `{"error": "..."}` JSON, every other JSON answer is JSON;
//! - a 4xx changes nothing: each host's `/etc`, boot bank, power, maintenance mode, boots,
//!   stateless flag, network cut, flash faults, encryption and recovery key; the fault rules;
//!   the clock;
//! - a file write that succeeds wrote under `/etc`, whatever `..` the path held;
//! - after the requests, every host moves to now and the host list still answers 200.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use esxi_sim::clock::{RealTimeClock, DEFAULT_EPOCH};
use esxi_sim::fleet::control::{self as api, Body};
use esxi_sim::fleet::{shared_none_material, FleetConfig, FleetHost, FleetLog, FleetState, Mode};
use esxi_sim::host::etc::EtcFs;
use esxi_sim::host::{shared_root_hash, BootBank, FlashFaults, PowerState};
use esxi_sim::keystore::Mode as KeyMode;
use esxi_sim::rng::Rng;
use esxi_sim::server::faults::FaultSet;
use esxi_sim::server::{ServerConfig, Shared};
use esxi_sim::vim::vcenter::{Estate, EstateHost};
use esxi_sim::vim::{Vim, VimConfig};
use esxi_sim::{Host, HostConfig, Profile};
use hyper::{Request, StatusCode};
use tokio::sync::watch;

use crate::driver::Target;
use crate::mutate::{between, chance, havoc, pick, skewed};

pub const NEXT: &[u8] = b"\n--- esxi-fuzz: next request ---\n";
const MAX_REQUESTS: usize = 4;
pub const TOKEN: &str = "esxi-fuzz-token";
const SEED: u64 = 7;

/// One installed host, to be copied into each input's fleet.
struct Template {
    config: HostConfig,
    host: Host,
}

pub struct ControlTarget {
    templates: Vec<Template>,
    appliance: Host,
    newest: Arc<Profile>,
    cfg: FleetConfig,
    rt: tokio::runtime::Runtime,
}

impl ControlTarget {
    pub fn new() -> Result<ControlTarget, String> {
        let cfg = FleetConfig {
            mode: Mode::VCenter,
            profiles: vec![
                ("6.7U3".into(), 1),
                ("8.0U3".into(), 1),
                ("8.0U3+tpm".into(), 1),
            ],
            seed: SEED,
            clock_speed: 0.0,
            tls: false,
            ..FleetConfig::default()
        };
        // As the fleet installs its hosts: one root hash and one NONE material for all.
        let hash = shared_root_hash(&cfg.password, cfg.seed);
        let none = shared_none_material(cfg.seed);
        let mut templates = Vec::new();
        for (i, (profile, mode)) in [
            ("6.7U3", KeyMode::None),
            ("8.0U3", KeyMode::None),
            ("8.0U3", KeyMode::Tpm),
        ]
        .into_iter()
        .enumerate()
        {
            let p = Profile::named(profile).map_err(|e| e.to_string())?;
            let config = HostConfig::new(p)
                .seed(SEED * 1000 + i as u64)
                .hostname(format!("esx-{:02}", i + 1))
                .root_password(cfg.password.clone())
                .root_hash(hash.clone())
                .none_material(none.clone())
                .encryption(mode)
                .boot_time(Duration::from_secs(30))
                .start(cfg.start);
            let host = config.clone().build().map_err(|e| e.to_string())?;
            templates.push(Template { config, host });
        }
        let newest = Profile::named("8.0U3").map_err(|e| e.to_string())?;
        let appliance = HostConfig::new(newest.clone())
            .seed(SEED ^ 0x7663)
            .hostname("vcenter")
            .stateless(true)
            .start(cfg.start)
            .build()
            .map_err(|e| e.to_string())?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(ControlTarget {
            templates,
            appliance,
            newest,
            cfg,
            rt,
        })
    }

    /// A fleet as `Fleet::start` assembles one, from copies of the installed hosts, without
    /// listeners: the control API only needs its state.
    fn fleet(&self) -> Arc<FleetState> {
        let clock = Arc::new(Mutex::new(RealTimeClock::new(DEFAULT_EPOCH, 0.0)));
        let faults = Arc::new(FaultSet::new(self.cfg.seed));
        let shared = |vim: Vim, label: String, index: Option<usize>, addr: SocketAddr| {
            Arc::new(Shared::detached(
                Arc::new(Mutex::new(vim)),
                clock.clone(),
                faults.clone(),
                label,
                index,
                ServerConfig::new(addr),
            ))
        };
        let hosts: Vec<FleetHost> = self
            .templates
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let ip = Ipv4Addr::new(127, 1, 0, i as u8 + 1);
                let addr = SocketAddr::from((ip, 443));
                FleetHost {
                    index: i,
                    config: t.config.clone(),
                    name: ip.to_string(),
                    vcenter_name: ip.to_string(),
                    addr,
                    redirect_addr: None,
                    url: format!("http://{addr}/sdk"),
                    shared: shared(
                        Vim::new(t.host.clone(), VimConfig::default()),
                        ip.to_string(),
                        Some(i),
                        addr,
                    ),
                }
            })
            .collect();
        let estate = Estate::new(
            hosts
                .iter()
                .map(|h| EstateHost {
                    vim: h.shared.vim.clone(),
                    name: h.vcenter_name.clone(),
                })
                .collect(),
            &self.cfg.vcenter_user,
            &self.cfg.vcenter_password,
            &self.newest,
        );
        let vc_addr = SocketAddr::from(([127, 0, 0, 1], 8443));
        let vcenter = shared(
            Vim::vcenter(
                self.appliance.clone(),
                VimConfig::default(),
                Arc::new(estate),
            ),
            "vcenter".into(),
            None,
            vc_addr,
        );
        let state = Arc::new(FleetState {
            cfg: self.cfg.clone(),
            hosts,
            vcenter: Some(vcenter),
            vcenter_addr: Some(vc_addr),
            clock,
            faults,
            log: FleetLog::new(10_000),
            ca_pem: None,
            slow_flash: Mutex::new(HashMap::new()),
            control_token: Some(TOKEN.into()),
        });
        state.collect_events();
        state
    }
}

/// What a refused request must leave as it was.
#[derive(Debug, PartialEq)]
struct HostPrint {
    etc: EtcFs,
    bank: Option<BootBank>,
    power: PowerState,
    maintenance: bool,
    boots: u32,
    halted: Option<String>,
    stateless: bool,
    link_down: Option<u64>,
    flash: FlashFaults,
    encryption: Option<String>,
    recovery: Option<String>,
    hostname: String,
}

#[derive(Debug, PartialEq)]
struct FleetPrint {
    hosts: Vec<HostPrint>,
    faults: String,
    slow_flash: Vec<(usize, String)>,
    now: u64,
    speed: u64,
}

fn print(state: &FleetState) -> FleetPrint {
    let hosts = state
        .hosts
        .iter()
        .map(|h| {
            let v = h.shared.vim.lock().unwrap_or_else(|e| e.into_inner());
            let host = &v.host;
            HostPrint {
                etc: host.etc().clone(),
                bank: host.bootbank().cloned(),
                power: host.power_state(),
                maintenance: host.in_maintenance_mode(),
                boots: host.boots(),
                halted: host.boot_halted().map(str::to_string),
                stateless: host.is_stateless(),
                link_down: v.link_down_until().map(|t| t.0),
                flash: host.flash_faults().clone(),
                encryption: host
                    .encryption()
                    .map(|e| format!("{:?} {}", e.mode, e.require_secure_boot)),
                recovery: host.recovery_key().map(|k| k.key_text()),
                hostname: host.hostname(),
            }
        })
        .collect();
    let mut slow_flash: Vec<(usize, String)> = state
        .hosts
        .iter()
        .filter_map(|h| state.slow_flash_of(h).map(|d| (h.index, d)))
        .collect();
    slow_flash.sort();
    FleetPrint {
        hosts,
        faults: serde_json::to_string(&state.faults.list()).unwrap_or_default(),
        slow_flash,
        now: state.now().0,
        speed: state.speed().to_bits(),
    }
}

/// A request as written in an input.
struct Raw<'a> {
    method: &'a str,
    target: &'a str,
    headers: Vec<(&'a str, &'a [u8])>,
    body: &'a [u8],
}

fn parse_raw(text: &[u8]) -> Option<Raw<'_>> {
    let head_end = text
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2))
        .unwrap_or((text.len(), text.len()));
    let head = std::str::from_utf8(&text[..head_end.0]).ok()?;
    let mut lines = head.split('\n');
    let mut first = lines.next()?.split(' ');
    let method = first.next()?;
    let target = first.next().unwrap_or("/");
    let headers = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim(), v.trim_start().as_bytes()))
        })
        .collect();
    Some(Raw {
        method,
        target,
        headers,
        body: &text[head_end.1..],
    })
}

pub fn split(input: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = input;
    while out.len() + 1 < MAX_REQUESTS {
        match rest.windows(NEXT.len()).position(|w| w == NEXT) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + NEXT.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

/// The route pattern of a path, ids blanked: part of a class.
fn route_of(path: &str) -> String {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut out = Vec::new();
    for (i, s) in segs.iter().enumerate().take(5) {
        let known = [
            "v1",
            "fleet",
            "hosts",
            "files",
            "crash",
            "power-cut",
            "power-on",
            "replace-board",
            "encryption",
            "recovery",
            "rotate",
            "bootbank",
            "state.tgz",
            "reinstall",
            "corrupt-state-tgz",
            "reboot",
            "shutdown",
            "stateless",
            "unreachable",
            "flash",
            "events",
            "stream",
            "ca.pem",
            "clock",
            "advance",
            "speed",
            "faults",
        ];
        if known.contains(s) && !(i == 2 && segs.get(1) == Some(&"hosts")) {
            out.push(*s);
        } else {
            out.push("*");
        }
        if *s == "files" {
            break;
        }
    }
    out.join("/")
}

impl Target for ControlTarget {
    fn name(&self) -> &'static str {
        "control"
    }

    fn generate(&self, rng: &mut Rng) -> Vec<u8> {
        generate(rng)
    }

    fn heap_bound(&self, input: &[u8]) -> usize {
        (128 << 20) + 16 * input.len()
    }

    fn run(&mut self, input: &[u8]) -> Result<String, String> {
        let state = self.fleet();
        let (tx, rx) = watch::channel(false);
        let mut class = String::new();
        for text in split(input) {
            let Some(raw) = parse_raw(text) else {
                class = "client: unreadable request".into();
                continue;
            };
            let mut b = Request::builder().method(raw.method).uri(raw.target);
            for (k, v) in &raw.headers {
                // A header hyper would not accept never reaches the handler: leave it out.
                if hyper::header::HeaderName::from_bytes(k.as_bytes()).is_ok()
                    && hyper::header::HeaderValue::from_bytes(v).is_ok()
                {
                    b = b.header(*k, *v);
                }
            }
            let Ok(req) = b.body(()) else {
                class = "client: not an HTTP request hyper would pass on".into();
                continue;
            };
            let (parts, ()) = req.into_parts();
            let before = print(&state);
            let body = Bytes::copy_from_slice(raw.body);
            let resp = self
                .rt
                .block_on(api::answer(&state, &parts, body, rx.clone()));
            let status = resp.status();
            let ty = resp
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = match resp.into_body() {
                Body::Full(b) => b.unwrap_or_default(),
                Body::Stream(_) => Bytes::new(),
            };
            // Whatever speed a request set, the clock is frozen again for the next one.
            state.set_speed(0.0);
            if status.is_server_error() {
                return Err(format!(
                    "{} {} answered {status}: {}",
                    parts.method,
                    parts.uri,
                    String::from_utf8_lossy(&body)
                ));
            }
            let json = (ty == "application/json")
                .then(|| serde_json::from_slice::<serde_json::Value>(&body));
            let error = match &json {
                Some(Ok(v)) => v.get("error").and_then(|e| e.as_str()).map(str::to_string),
                Some(Err(e)) => {
                    return Err(format!(
                        "{} {}: the JSON answer does not parse: {e}",
                        parts.method, parts.uri
                    ))
                }
                None => None,
            };
            if status.is_client_error() {
                if error.is_none() {
                    return Err(format!(
                        "{} {} answered {status} without a JSON error",
                        parts.method, parts.uri
                    ));
                }
                let after = print(&state);
                if after != before {
                    return Err(format!(
                        "{} {} was refused ({status}: {}) but changed the fleet",
                        parts.method,
                        parts.uri,
                        error.unwrap_or_default()
                    ));
                }
            }
            if status.is_success() && parts.method == hyper::Method::PUT {
                if let Some(Ok(v)) = &json {
                    if let Some(w) = v.get("written").and_then(|w| w.as_str()) {
                        let inside =
                            w.starts_with("/etc/") && !w.split('/').any(|c| c == ".." || c == ".");
                        if !inside {
                            return Err(format!("a file write landed at {w:?}"));
                        }
                    }
                }
            }
            class = format!(
                "{} {} {}",
                parts.method,
                route_of(parts.uri.path()),
                status.as_u16()
            );
            if status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND {
                // The error's shape tells parse errors, bad durations and bad ids apart.
                let e = error.unwrap_or_default();
                let words: Vec<&str> = e.split_whitespace().take(3).collect();
                let words: String = words
                    .join(" ")
                    .chars()
                    .filter(|c| !c.is_ascii_digit() && *c != '"' && *c != '\'')
                    .take(30)
                    .collect();
                class.push_str(": ");
                class.push_str(&words);
            }
        }
        // Stream tasks end when their receiver is gone or the fleet shuts down.
        let _ = tx.send(true);
        self.rt.block_on(async {
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
        });
        state.sync_all();
        let (parts, ()) = Request::builder()
            .uri("/v1/hosts")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(())
            .map_err(|e| e.to_string())?
            .into_parts();
        let (_tx2, rx2) = watch::channel(false);
        let r = self
            .rt
            .block_on(api::answer(&state, &parts, Bytes::new(), rx2));
        if r.status() != StatusCode::OK {
            return Err(format!("afterwards GET /v1/hosts answers {}", r.status()));
        }
        Ok(class)
    }
}

// ---- generation ----------------------------------------------------------------------------

struct Route {
    method: &'static str,
    /// `{h}` is a host id, `{f}` a file path, `{r}` a rule id.
    path: &'static str,
    body: fn(&mut Rng) -> Vec<u8>,
}

fn none(_: &mut Rng) -> Vec<u8> {
    Vec::new()
}

const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/v1/fleet",
        body: none,
    },
    Route {
        method: "GET",
        path: "/v1/hosts",
        body: none,
    },
    Route {
        method: "GET",
        path: "/v1/hosts/{h}",
        body: none,
    },
    Route {
        method: "GET",
        path: "/v1/hosts/{h}/files",
        body: none,
    },
    Route {
        method: "GET",
        path: "/v1/hosts/{h}/files/{f}",
        body: none,
    },
    Route {
        method: "PUT",
        path: "/v1/hosts/{h}/files/{f}",
        body: file_body,
    },
    Route {
        method: "DELETE",
        path: "/v1/hosts/{h}/files/{f}",
        body: none,
    },
    Route {
        method: "POST",
        path: "/v1/hosts/{h}/crash",
        body: empty_or_object,
    },
    Route {
        method: "POST",
        path: "/v1/hosts/{h}/power-cut",
        body: |r| object(r, &[("when", Kind::Enum(&["now", "next-save", "later"]))]),
    },
    Route {
        method: "POST",
        path: "/v1/hosts/{h}/power-on",
        body: |r| object(r, &[("recovery_key", Kind::RecoveryKey)]),
    },
    Route {
        method: "POST",
        path: "/v1/hosts/{h}/replace-board",
        body: |r| object(r, &[("new_uuid", Kind::Bool)]),
    },
    Route {
        method: "GET",
        path: "/v1/hosts/{h}/encryption",
        body: none,
    },
    Route {
        method: "PUT",
        path: "/v1/hosts/{h}/encryption",
        body: |r| {
            object(
                r,
                &[
                    (
                        "mode",
                        Kind::Enum(&["tpm", "none", "TPM", "NONE", "Tpm", "tmp", ""]),
                    ),
                    ("require_secure_boot", Kind::Bool),
                ],
            )
        },
    },
    Route {
        method: "POST",
        path: "/v1/hosts/{h}/encryption/recovery/rotate",
        body: empty_or_object,
    },
    Route {
        method: "GET",
        path: "/v1/hosts/{h}/bootbank/state.tgz",
        body: none,
    },
    Route {
        method: "POST",
        path: "/v1/hosts/{h}/reinstall",
        body: empty_or_object,
    },
    Route {
        method: "POST",
        path: "/v1/hosts/{h}/corrupt-state-tgz",
        body: empty_or_object,
    },
    Route {
        method: "POST",
        path: "/v1/hosts/{h}/reboot",
        body: |r| object(r, &[("force", Kind::Bool)]),
    },
    Route {
        method: "POST",
        path: "/v1/hosts/{h}/shutdown",
        body: |r| object(r, &[("force", Kind::Bool)]),
    },
    Route {
        method: "PUT",
        path: "/v1/hosts/{h}/stateless",
        body: |r| object(r, &[("enabled", Kind::Bool)]),
    },
    Route {
        method: "POST",
        path: "/v1/hosts/{h}/unreachable",
        body: |r| object(r, &[("for", Kind::Duration)]),
    },
    Route {
        method: "DELETE",
        path: "/v1/hosts/{h}/unreachable",
        body: none,
    },
    Route {
        method: "GET",
        path: "/v1/hosts/{h}/flash",
        body: none,
    },
    Route {
        method: "PUT",
        path: "/v1/hosts/{h}/flash",
        body: |r| {
            object(
                r,
                &[
                    ("read_only", Kind::Bool),
                    ("full", Kind::Bool),
                    ("torn_next_write", Kind::Bool),
                    ("slow", Kind::DurationOrNull),
                ],
            )
        },
    },
    Route {
        method: "GET",
        path: "/v1/hosts/{h}/events",
        body: none,
    },
    Route {
        method: "GET",
        path: "/v1/ca.pem",
        body: none,
    },
    Route {
        method: "GET",
        path: "/v1/clock",
        body: none,
    },
    Route {
        method: "POST",
        path: "/v1/clock/advance",
        body: |r| object(r, &[("by", Kind::Duration)]),
    },
    Route {
        method: "PUT",
        path: "/v1/clock/speed",
        body: |r| object(r, &[("speed", Kind::Float)]),
    },
    Route {
        method: "GET",
        path: "/v1/events{q}",
        body: none,
    },
    Route {
        method: "GET",
        path: "/v1/events/stream{q}",
        body: none,
    },
    Route {
        method: "GET",
        path: "/v1/faults",
        body: none,
    },
    Route {
        method: "POST",
        path: "/v1/faults",
        body: rule,
    },
    Route {
        method: "DELETE",
        path: "/v1/faults",
        body: none,
    },
    Route {
        method: "DELETE",
        path: "/v1/faults/{r}",
        body: none,
    },
];

/// What a JSON field holds when it is right.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Float,
    Duration,
    DurationOrNull,
    RecoveryKey,
    Enum(&'static [&'static str]),
}

const DURATIONS: &[&str] = &[
    "1h",
    "10m",
    "90s",
    "250ms",
    "1d",
    "0s",
    "0ms",
    "366d",
    "367d",
    "",
    "1",
    "h",
    "-1s",
    "1.5h",
    "1e3s",
    " 1h ",
    "1H",
    "1 h",
    "+1s",
    "18446744073709551615ms",
    "18446744073709551616s",
    "213503982334601d",
    "99999999999999d",
    "٣s",
    "1s1",
    "1m30s",
    "0x10s",
    "1y",
];

fn hostile_json(rng: &mut Rng) -> String {
    match rng.below(14) {
        0 => "null".into(),
        1 => "1e400".into(),
        2 => "-1".into(),
        3 => "18446744073709551616".into(),
        4 => "1.5".into(),
        5 => "\"\"".into(),
        6 => "[]".into(),
        7 => "{}".into(),
        8 => format!("\"{}\"", "x".repeat(skewed(rng, 100_000))),
        9 => format!(
            "{}1{}",
            "[".repeat(between(rng, 100, 3000)),
            "]".repeat(between(rng, 0, 3000))
        ),
        10 => "true".into(),
        11 => "\"\\ud800\"".into(),
        12 => "-0".into(),
        _ => "{\"a\":{\"b\":[1,2,{\"c\":null}]}}".into(),
    }
}

fn value(rng: &mut Rng, k: Kind) -> String {
    if chance(rng, 1, 5) {
        return hostile_json(rng);
    }
    match k {
        Kind::Bool => pick(rng, &["true", "false"]).to_string(),
        Kind::Float => pick(
            rng,
            &[
                "0",
                "1",
                "0.5",
                "1000000",
                "1000001",
                "60",
                "-1",
                "1e308",
                "0.0000001",
            ],
        )
        .to_string(),
        Kind::Duration => format!("{:?}", pick(rng, DURATIONS)),
        Kind::DurationOrNull => {
            if chance(rng, 1, 4) {
                "null".into()
            } else {
                format!("{:?}", pick(rng, DURATIONS))
            }
        }
        Kind::RecoveryKey => {
            let digits: Vec<String> = (0..between(rng, 14, 17))
                .map(|_| format!("{:06}", rng.below(1_000_000)))
                .collect();
            let key = if chance(rng, 1, 2) {
                digits.join("-")
            } else {
                digits.concat()
            };
            format!("{:?}", pick(rng, &[key.as_str(), "", "123", "abc-def"]))
        }
        Kind::Enum(items) => format!("{:?}", pick(rng, items)),
    }
}

/// A JSON object of the route's fields, some missing, some wrong, some unknown; or not JSON.
fn object(rng: &mut Rng, fields: &[(&str, Kind)]) -> Vec<u8> {
    match rng.below(20) {
        0 => return Vec::new(),
        1 => return b"   \n".to_vec(),
        2 => {
            return pick(
                rng,
                &[
                    &b"{"[..],
                    b"{\"a\":}",
                    b"nul",
                    b"\xff\xfe{\0}\0",
                    b"\xef\xbb\xbf{}",
                    b"{}{}",
                    b"[]",
                    b"{\"x\":1}garbage",
                ],
            )
            .to_vec()
        }
        _ => {}
    }
    let mut parts = Vec::new();
    for (name, kind) in fields {
        if chance(rng, 1, 5) {
            continue;
        }
        parts.push(format!("{name:?}:{}", value(rng, *kind)));
        if chance(rng, 1, 20) {
            parts.push(format!("{name:?}:{}", value(rng, *kind)));
        }
    }
    if chance(rng, 1, 8) {
        parts.push(format!(
            "{:?}:{}",
            pick(rng, &["unknown", "FORCE", "by ", "", "__proto__"]),
            hostile_json(rng)
        ));
    }
    if chance(rng, 1, 4) && parts.len() > 1 {
        parts.swap(0, 1);
    }
    let mut s = format!("{{{}}}", parts.join(","));
    if chance(rng, 1, 10) {
        let mut b = s.into_bytes();
        havoc(rng, &mut b, JSON_DICT, 3, 1 << 20);
        return b;
    }
    if chance(rng, 1, 20) {
        s.insert_str(0, " \t\n");
    }
    s.into_bytes()
}

fn empty_or_object(rng: &mut Rng) -> Vec<u8> {
    object(rng, &[])
}

fn file_body(rng: &mut Rng) -> Vec<u8> {
    match rng.below(6) {
        0 => Vec::new(),
        1 => vec![0u8; skewed(rng, 1 << 20)],
        2 => {
            let mut v = vec![0u8; skewed(rng, 4096)];
            rng.fill(&mut v);
            v
        }
        _ => b"127.0.0.1 localhost\n10.0.0.1 fuzz\n".to_vec(),
    }
}

/// A fault rule: the documented fields with right and wrong values.
fn rule(rng: &mut Rng) -> Vec<u8> {
    let action = match rng.below(7) {
        0 => format!(
            "{{\"type\":\"fault\",\"fault\":{:?}{}{}}}",
            pick(
                rng,
                &[
                    "HostCommunication",
                    "InvalidState",
                    "",
                    "Invalid Request",
                    "<x>",
                    "a_b",
                    &"A".repeat(70),
                    "1abc"
                ]
            ),
            if chance(rng, 1, 2) {
                format!(
                    ",\"message\":{:?}",
                    pick(rng, &["boom", "", &"m".repeat(5000)])
                )
            } else {
                String::new()
            },
            if chance(rng, 1, 2) {
                format!(
                    ",\"fields\":{{{:?}:{}}}",
                    pick(rng, &["text", "hostBuildNumber", "", "a-b"]),
                    pick(
                        rng,
                        &[
                            "\"x\"",
                            "5",
                            "1.5",
                            "[\"a\"]",
                            "[1]",
                            "null",
                            "{}",
                            "9223372036854775808"
                        ]
                    )
                )
            } else {
                String::new()
            }
        ),
        1 => "{\"type\":\"delay\"}".into(),
        2 => "{\"type\":\"reset\"}".into(),
        3 => format!(
            "{{\"type\":\"status\",\"status\":{}}}",
            pick(rng, &["503", "200", "600", "399", "-1", "65536", "\"500\""])
        ),
        4 => "{\"type\":\"timeout\"}".into(),
        5 => "{\"type\":\"explode\"}".into(),
        _ => hostile_json(rng),
    };
    let mut parts = vec![format!("\"action\":{action}")];
    let opt = |rng: &mut Rng, parts: &mut Vec<String>, name: &str, v: String| {
        if chance(rng, 1, 2) {
            parts.push(format!("{name:?}:{v}"));
        }
    };
    let host = format!(
        "{:?}",
        pick(
            rng,
            &[
                "0",
                "1",
                "2",
                "3",
                "host-12",
                "host-99",
                "vcenter",
                "127.1.0.1",
                "esx-01",
                ""
            ]
        )
    );
    opt(rng, &mut parts, "host", host);
    let method = format!(
        "{:?}",
        pick(
            rng,
            &[
                "SyncFirmwareConfiguration",
                "A|B",
                "|",
                "",
                "Download",
                "Upload"
            ]
        )
    );
    opt(rng, &mut parts, "method", method);
    opt(
        rng,
        &mut parts,
        "object_type",
        "\"HostFirmwareSystem\"".into(),
    );
    let p = pick(rng, &["0", "1", "0.5", "-0.1", "1.1", "1e400", "\"1\""]).to_string();
    opt(rng, &mut parts, "probability", p);
    let d = value(rng, Kind::Duration);
    opt(rng, &mut parts, "delay", d);
    let mc = pick(
        rng,
        &[
            "0",
            "1",
            "18446744073709551615",
            "18446744073709551616",
            "-1",
        ],
    )
    .to_string();
    opt(rng, &mut parts, "max_count", mc);
    let sc = pick(rng, &["0", "3", "18446744073709551615"]).to_string();
    opt(rng, &mut parts, "skip_count", sc);
    format!("{{{}}}", parts.join(",")).into_bytes()
}

const JSON_DICT: &[&[u8]] = &[
    b"{", b"}", b"[", b"]", b"\"", b":", b",", b"null", b"\\u0000", b"1e999", b"-", b"\xff",
];

fn host_id(rng: &mut Rng) -> String {
    pick(
        rng,
        &[
            "0",
            "1",
            "2",
            "3",
            "host-12",
            "host-13",
            "host-14",
            "host-15",
            "host-11",
            "host-",
            "127.1.0.1",
            "127.1.0.3",
            "esx-01",
            "esx-03",
            "localhost",
            "vcenter",
            "-1",
            "00",
            "18446744073709551616",
            "host-18446744073709551615",
            "%2e%2e",
            "..",
            "%30",
            "",
            "1%2F..",
            "%ff",
        ],
    )
    .to_string()
}

fn file_path(rng: &mut Rng) -> String {
    pick(
        rng,
        &[
            "etc/hosts",
            "etc/motd",
            "etc/vmware/esx.conf",
            "etc/shadow",
            "etc/passwd",
            "etc/.#hosts",
            "etc/new-file",
            "etc/../etc/passwd",
            "etc/%2e%2e/x",
            "../../etc/passwd",
            "etc//hosts",
            "etc/./hosts",
            "tmp/x",
            "etc",
            "etc/",
            "%2Fetc%2Fhosts",
            "etc/%00",
            "etc/a%2F..%2F..%2Fb",
            "etc/ü",
            "bootbank/state.tgz",
            "etc/vmware/ssl/rui.key",
        ],
    )
    .to_string()
}

fn query(rng: &mut Rng) -> String {
    if chance(rng, 1, 3) {
        return String::new();
    }
    let mut q = Vec::new();
    for _ in 0..between(rng, 1, 3) {
        q.push(match rng.below(5) {
            0 => format!("host={}", host_id(rng)),
            1 => format!(
                "kind={}",
                pick(rng, &["saved", "saved,crashed", "", "x,,y"])
            ),
            2 => format!(
                "after={}",
                pick(rng, &["0", "5", "-1", "x", "18446744073709551616"])
            ),
            3 => format!(
                "limit={}",
                pick(rng, &["0", "1", "18446744073709551615", "x"])
            ),
            _ => pick(rng, &["&", "=", "a", "%zz=1"]).to_string(),
        });
    }
    format!("?{}", q.join("&"))
}

fn request(rng: &mut Rng) -> Vec<u8> {
    let route = pick(rng, ROUTES);
    let mut method = route.method.to_string();
    if chance(rng, 1, 12) {
        method = pick(
            rng,
            &[
                "GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO",
            ],
        )
        .to_string();
    }
    let mut path = route
        .path
        .replace("{h}", &host_id(rng))
        .replace("{f}", &file_path(rng))
        .replace(
            "{r}",
            pick::<&str>(rng, &["1", "2", "0", "x", "18446744073709551616", "-1"]),
        )
        .replace("{q}", &query(rng));
    if chance(rng, 1, 20) {
        path = match rng.below(5) {
            0 => path.replacen("/v1", "//v1", 1),
            1 => format!("{path}/"),
            2 => path.replacen("/v1", "/v2", 1),
            3 => format!("{path}/extra"),
            _ => path.replace('/', "%2F"),
        };
    }
    let body = (route.body)(rng);
    let mut head = format!("{method} {path} HTTP/1.1\n");
    if !chance(rng, 1, 30) {
        head.push_str(&format!("Authorization: Bearer {TOKEN}\n"));
    } else {
        head.push_str(pick::<&str>(
            rng,
            &[
                "Authorization: Bearer wrong\n",
                "Authorization: bearer esxi-fuzz-token\n",
                "Authorization: Bearer esxi-fuzz-token \n",
                "",
            ],
        ));
    }
    let ct = if path.contains("/files/") && chance(rng, 1, 2) {
        "application/octet-stream"
    } else {
        "application/json"
    };
    if !chance(rng, 1, 30) {
        head.push_str(&format!("Content-Type: {ct}\n"));
    } else {
        head.push_str(pick::<&str>(
            rng,
            &[
                "Content-Type: text/plain\n",
                "Content-Type: application/JSON; charset=utf-8\n",
                "",
            ],
        ));
    }
    if chance(rng, 1, 40) {
        head.push_str(pick::<&str>(
            rng,
            &[
                "Host: evil.example\n",
                "Host: 127.0.0.1:8440\n",
                "Origin: http://evil.example\nHost: 127.0.0.1:8440\n",
                "Sec-Fetch-Site: cross-site\n",
                "Last-Event-ID: 3\n",
            ],
        ));
    }
    head.push('\n');
    let mut out = head.into_bytes();
    out.extend_from_slice(&body);
    out
}

pub fn generate(rng: &mut Rng) -> Vec<u8> {
    let n = *pick(rng, &[1usize, 1, 2, 2, 3, 4]);
    let mut out = Vec::new();
    for i in 0..n {
        if i > 0 {
            out.extend_from_slice(NEXT);
        }
        out.extend_from_slice(&request(rng));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_requests_read_back() {
        let r = parse_raw(b"PUT /v1/hosts/0/files/etc/hosts HTTP/1.1\nContent-Type: application/json\n\n{\"a\":1}\n\nmore").unwrap();
        assert_eq!(r.method, "PUT");
        assert_eq!(r.target, "/v1/hosts/0/files/etc/hosts");
        assert_eq!(r.headers, vec![("Content-Type", &b"application/json"[..])]);
        assert_eq!(r.body, b"{\"a\":1}\n\nmore");
    }

    #[test]
    fn routes_are_classed_without_ids() {
        assert_eq!(
            route_of("/v1/hosts/host-12/files/etc/hosts"),
            "v1/hosts/*/files"
        );
        assert_eq!(route_of("/v1/hosts/0/flash"), "v1/hosts/*/flash");
        assert_eq!(route_of("/v1/clock/advance"), "v1/clock/advance");
    }
}
