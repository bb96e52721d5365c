//! Fleets through the embedded API (`Fleet::builder()`) and the control API over real HTTP: the
//! host list and the profile mix, files and crashes against the persistence window, the clock,
//! the bearer token, unreachable hosts, fault rules (fault, status, reset, delay, timeout,
//! seeding), vCenter mode with a bundle fetched from the host's own endpoint, and the event log
//! with its Server-Sent Events stream.
//!
//! The control API is driven with a small blocking HTTP/1.1 client over `std::net::TcpStream`
//! (the test body runs on the runtime's `block_on` thread, so blocking there does not starve the
//! fleet's tasks; raw sockets also let the tests see exactly what went over the wire), answers
//! are read with serde_json. The vSphere side uses the harness client over TLS.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use esxi_harness::client::{returnval, Client, ClientError, Trust};
use esxi_sim::api::MoRef;
use esxi_sim::fleet::{Fleet, FleetBuilder, Layout, Mode};
use esxi_sim::server::faults::{Action, RuleSpec};

// ---- JSON answers, read with serde_json; the accessors panic with the value on a wrong type --

type Json = serde_json::Value;

trait Get {
    fn str(&self) -> &str;
    fn u64(&self) -> u64;
    fn f64(&self) -> f64;
    fn bool(&self) -> bool;
    fn arr(&self) -> &[Json];
}

impl Get for Json {
    fn str(&self) -> &str {
        self.as_str()
            .unwrap_or_else(|| panic!("not a string: {self:?}"))
    }
    fn u64(&self) -> u64 {
        self.as_u64()
            .unwrap_or_else(|| panic!("not a whole number: {self:?}"))
    }
    fn f64(&self) -> f64 {
        self.as_f64()
            .unwrap_or_else(|| panic!("not a number: {self:?}"))
    }
    fn bool(&self) -> bool {
        self.as_bool()
            .unwrap_or_else(|| panic!("not a boolean: {self:?}"))
    }
    fn arr(&self) -> &[Json] {
        self.as_array()
            .unwrap_or_else(|| panic!("not an array: {self:?}"))
    }
}

fn parse_json(s: &str) -> Json {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("bad JSON ({e}) in {s:?}"))
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Json {
        parse_json(&self.text())
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Asserts the status; returns the JSON answer.
    fn expect(&self, status: u16) -> Json {
        assert_eq!(self.status, status, "answer: {}", self.text());
        self.json()
    }
    /// Asserts an error status and the `{"error": ...}` shape; returns the message.
    fn error(&self, status: u16) -> String {
        let j = self.expect(status);
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{}",
            self.text()
        );
        match &j {
            Json::Object(fields) => assert_eq!(fields.len(), 1, "only `error`: {}", self.text()),
            other => panic!("error answers are objects: {other:?}"),
        }
        j["error"].str().to_string()
    }
}

/// Splits a raw HTTP/1.1 answer into status, headers and (de-chunked) body.
fn parse_response(raw: &[u8]) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16)
            .expect("chunk size");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[nl + 2 + size + 2..];
    }
    out
}

/// The control API of one fleet (blocking; one connection per request).
#[derive(Clone)]
struct Ctl {
    addr: SocketAddr,
    token: Option<String>,
}

impl Ctl {
    fn of(fleet: &Fleet) -> Ctl {
        Ctl {
            addr: fleet
                .control_addr
                .expect("the fleet serves the control API"),
            token: fleet.control_token().map(str::to_string),
        }
    }
    fn with_token(&self, t: Option<&str>) -> Ctl {
        Ctl {
            addr: self.addr,
            token: t.map(str::to_string),
        }
    }
    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }
    fn head(&self, method: &str, path: &str, extra: &[(&str, &str)], len: usize) -> String {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {len}\r\n",
            self.addr
        );
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        // Writes carry their type, as the API requires (its CSRF guard); a test that means to
        // send another one names it in `extra`.
        let typed = extra
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if (method == "POST" || method == "PUT") && !typed {
            let ty = if path.contains("/files/") {
                "application/octet-stream"
            } else {
                "application/json"
            };
            head.push_str(&format!("Content-Type: {ty}\r\n"));
        }
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        head
    }
    fn send(&self, method: &str, path: &str, body: &[u8], extra: &[(&str, &str)]) -> Resp {
        let mut s = self.connect();
        s.write_all(self.head(method, path, extra, body.len()).as_bytes())
            .unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        parse_response(&raw)
    }
    fn call(&self, method: &str, path: &str, body: &str) -> Resp {
        self.send(method, path, body.as_bytes(), &[])
    }
    fn get(&self, path: &str) -> Json {
        self.call("GET", path, "").expect(200)
    }
    fn post(&self, path: &str, body: &str) -> Json {
        self.call("POST", path, body).expect(200)
    }
    fn put(&self, path: &str, body: &str) -> Json {
        self.call("PUT", path, body).expect(200)
    }
    fn now(&self) -> String {
        self.get("/v1/clock")["now"].str().to_string()
    }
    fn advance(&self, by: &str) -> Json {
        self.post("/v1/clock/advance", &format!(r#"{{"by":"{by}"}}"#))
    }
    fn add_rule(&self, rule: &str) -> Json {
        self.call("POST", "/v1/faults", rule).expect(201)
    }
    /// Events as `(host, kind)` pairs.
    fn events(&self, query: &str) -> Vec<(Option<u64>, String)> {
        self.get(&format!("/v1/events{query}"))
            .arr()
            .iter()
            .map(|e| {
                let host = (!e["host"].is_null()).then(|| e["host"].u64());
                (host, e["kind"].str().to_string())
            })
            .collect()
    }
    /// Opens the event stream and waits until it is subscribed (its opening comment arrived).
    fn stream(&self, query: &str, last_event_id: Option<u64>) -> Sse {
        let mut s = self.connect();
        let id = last_event_id.map(|i| i.to_string());
        let extra: Vec<(&str, &str)> = id.iter().map(|i| ("Last-Event-ID", i.as_str())).collect();
        s.write_all(
            self.head("GET", &format!("/v1/events/stream{query}"), &extra, 0)
                .as_bytes(),
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut sse = Sse {
            s,
            buf: String::new(),
        };
        let head = sse.read_until("\r\n\r\n", Duration::from_secs(5));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("content-type: text/event-stream"), "{head}");
        sse
    }
}

/// A Server-Sent Events stream, read raw (chunk-size lines and all: each event is one chunk).
struct Sse {
    s: TcpStream,
    buf: String,
}

impl Sse {
    /// Reads until `needle` has arrived; returns (and consumes) everything up to and including it.
    fn read_until(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.buf.find(needle) {
                let rest = self.buf.split_off(i + needle.len());
                return std::mem::replace(&mut self.buf, rest);
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} did not arrive within {within:?}; got {:?}",
                self.buf
            );
            let mut chunk = [0; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) => panic!("stream closed; got {:?}", self.buf),
                Ok(n) => self.buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("stream: {e}"),
            }
        }
    }
    /// The next event frame of this kind: (id, data).
    fn next_event(&mut self, kind: &str, within: Duration) -> (u64, Json) {
        let upto = self.read_until(&format!("event: {kind}\n"), within);
        let id_line = upto
            .lines()
            .rev()
            .find(|l| l.starts_with("id: "))
            .unwrap_or_else(|| panic!("no id line before the event: {upto:?}"));
        let id: u64 = id_line["id: ".len()..].trim().parse().unwrap();
        let data = self.read_until("\n\n", within);
        let data = data
            .trim()
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("no data line: {data:?}"));
        (id, parse_json(data))
    }
    /// Everything that arrives within `d` (for "nothing more came").
    fn drain(&mut self, d: Duration) -> String {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            let mut chunk = [0; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
                Err(_) => {}
            }
        }
        std::mem::take(&mut self.buf)
    }
}

// ---- fleets --------------------------------------------------------------------------------

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A frozen clock (only `advance` moves it), one-second boots, any free ports, the control API.
fn builder() -> FleetBuilder {
    Fleet::builder()
        .layout(Layout::Ports {
            ip: LOCALHOST,
            first: 0,
        })
        .vcenter_listen(SocketAddr::new(LOCALHOST, 0))
        .control(SocketAddr::new(LOCALHOST, 0))
        .clock_speed(0.0)
        .boot_time(Duration::from_secs(1))
}

async fn start(b: FleetBuilder) -> (Fleet, Ctl) {
    let fleet = b.start().await.expect("fleet starts");
    let ctl = Ctl::of(&fleet);
    (fleet, ctl)
}

fn client(url: &str) -> Client {
    let mut c = Client::new(url, Trust::Any).unwrap();
    c.timeout = Duration::from_secs(10);
    c
}

fn is_io(r: &Result<impl std::fmt::Debug, ClientError>) -> bool {
    matches!(r, Err(ClientError::Io(_)))
}

const ROOT_PASSWORD: &str = esxi_sim::host::DEFAULT_ROOT_PASSWORD;

/// A host client logged in as root.
async fn login(url: &str) -> Client {
    let mut c = client(url);
    c.login("root", ROOT_PASSWORD).await.unwrap();
    c
}

fn firmware() -> MoRef {
    MoRef::new("HostFirmwareSystem", "ha-firmwareSystem")
}

/// BackupFirmwareConfiguration's URL.
async fn backup_url(c: &mut Client, fw: &MoRef) -> Result<String, ClientError> {
    let r = c.call(fw, "BackupFirmwareConfiguration", "").await?;
    Ok(returnval(&r)?.text.trim().to_string())
}

/// A future's answer and how long it took (wall time).
async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let t = Instant::now();
    let r = f.await;
    (r, t.elapsed())
}

fn tar_members(tgz: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

// ---- the fleet and its hosts ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_with_distinct_endpoints_and_the_profile_mix() {
    let (fleet, ctl) = start(
        builder()
            .hosts(3)
            .profiles(&[("6.7U3", 2), ("8.0U3", 1)])
            .seed(11),
    )
    .await;
    assert_eq!(fleet.hosts().len(), 3);
    assert!(fleet.vcenter_url().is_none());
    assert_eq!(
        fleet.control_url(),
        Some(format!("http://{}", fleet.control_addr.unwrap()))
    );

    let list = ctl.get("/v1/hosts");
    let hosts = list.arr();
    assert_eq!(hosts.len(), 3, "{list:?}");
    let mut urls = Vec::new();
    let mut uuids = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        assert_eq!(h["index"].u64(), i as u64);
        assert_eq!(h["id"].str(), format!("host-{}", 12 + i));
        assert_eq!(h["hostname"].str(), format!("esx-{:02}", i + 1));
        assert_eq!(h["url"].str(), fleet.hosts()[i].url);
        assert!(h["url"].str().starts_with("https://127.0.0.1:"), "{h:?}");
        assert_eq!(h["power"].str(), "on");
        assert!(h["reachable"].bool());
        assert!(h["unreachable_until"].is_null());
        assert!(!h["unsaved_changes"].bool());
        assert_eq!(h["boots"].u64(), 1);
        urls.push(h["url"].str().to_string());
        uuids.push(h["uuid"].str().to_string());
    }
    urls.sort();
    urls.dedup();
    uuids.sort();
    uuids.dedup();
    assert_eq!((urls.len(), uuids.len()), (3, 3), "distinct urls and uuids");
    let profiles: Vec<&str> = hosts.iter().map(|h| h["profile"].str()).collect();
    assert_eq!(profiles, ["6.7U3", "6.7U3", "8.0U3"]);
    assert_eq!(hosts[0]["build"], hosts[1]["build"]);
    assert_ne!(hosts[0]["build"], hosts[2]["build"]);

    let summary = ctl.get("/v1/fleet");
    assert_eq!(summary["mode"].str(), "esxi");
    assert_eq!(summary["hosts"].u64(), 3);
    assert_eq!(summary["profiles"]["6.7U3"].u64(), 2);
    assert_eq!(summary["profiles"]["8.0U3"].u64(), 1);
    assert!(summary["vcenter"].is_null());
    assert_eq!(summary["seed"].u64(), 11);
    assert_eq!(summary["faults"].u64(), 0);

    // Each endpoint is its host, over TLS: the build it serves is the one listed.
    for h in hosts {
        let mut c = client(h["url"].str());
        let sc = c.service_content().await.unwrap();
        let about = sc.child("about").unwrap();
        assert_eq!(about.child_text("apiType"), Some("HostAgent"));
        assert_eq!(
            about.child_text("build"),
            Some(h["build"].u64().to_string().as_str())
        );
    }

    // A host by index, vCenter id or host name.
    assert_eq!(ctl.get("/v1/hosts/2")["hostname"].str(), "esx-03");
    assert_eq!(ctl.get("/v1/hosts/host-14")["index"].u64(), 2);
    assert_eq!(ctl.get("/v1/hosts/esx-02")["index"].u64(), 1);
    fleet.shutdown().await;

    // A mix that does not add up to --hosts is refused.
    let err = match Fleet::builder()
        .hosts(4)
        .profiles(&[("6.7U3", 2), ("8.0U3", 1)])
        .start()
        .await
    {
        Ok(_) => panic!("a mix of 3 for 4 hosts started"),
        Err(e) => e,
    };
    assert!(err.contains("adds up to 3 hosts, not 4"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_are_found_by_address_in_the_addresses_layout() {
    let (fleet, ctl) = start(builder().hosts(3).layout(Layout::Addresses {
        first: Ipv4Addr::new(127, 77, 0, 1),
        port: 0,
    }))
    .await;
    let names: Vec<String> = fleet.hosts().iter().map(|h| h.name.clone()).collect();
    assert_eq!(names, ["127.77.0.1", "127.77.0.2", "127.77.0.3"]);
    let h = ctl.get("/v1/hosts/127.77.0.2");
    assert_eq!(h["index"].u64(), 1);
    assert_eq!(h["name"].str(), "127.77.0.2");
    assert!(h["url"].str().starts_with("https://127.77.0.2:"), "{h:?}");
    // A fault rule names a host by the same address.
    ctl.add_rule(
        r#"{"host":"127.77.0.3","method":"RetrieveServiceContent","action":{"type":"status","status":503}}"#,
    );
    let mut c2 = client(&fleet.hosts()[2].url);
    match c2.service_content().await {
        Err(ClientError::Http(s, body)) => {
            assert_eq!(s.as_u16(), 503);
            assert_eq!(body, "injected HTTP 503\n");
        }
        other => panic!("expected the injected 503, got {other:?}"),
    }
    client(&fleet.hosts()[1].url)
        .service_content()
        .await
        .unwrap();
    let ev = ctl.get("/v1/events?kind=fault");
    assert_eq!(ev.arr().len(), 1, "{ev:?}");
    assert_eq!(ev[0]["host"].u64(), 2);
    assert_eq!(ev[0]["host_name"].str(), "127.77.0.3");
    fleet.shutdown().await;
}

/// Ports layout: every host listens on 127.0.0.1, and `name` is the bare address, so the names
/// the control API lists are all the same, `/v1/hosts/<name>` finds only host 0, and a fault
/// rule naming a host by its listed name never fires (rules match `address:port` there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn ports_layout_names_are_distinct_and_name_fault_rules() {
    let (fleet, ctl) = start(builder().hosts(2)).await;
    let list = ctl.get("/v1/hosts");
    let n0 = list[0]["name"].str().to_string();
    let n1 = list[1]["name"].str().to_string();
    // A host's name as listed is what fault rules, events and lookups take.
    ctl.add_rule(&format!(
        r#"{{"host":"{n1}","method":"RetrieveServiceContent","max_count":1,"action":{{"type":"fault","fault":"HostCommunication"}}}}"#
    ));
    let r1 = client(&fleet.hosts()[1].url).service_content().await;
    let host_events = ctl.get("/v1/events?host=1");
    let fault_events = ctl.get("/v1/events?kind=fault");
    assert_ne!(n0, n1, "two hosts listed under one name");
    assert_eq!(ctl.get(&format!("/v1/hosts/{n1}"))["index"].u64(), 1);
    assert_eq!(
        r1.map(|_| ()).unwrap_err().fault_type(),
        Some("HostCommunication"),
        "the rule naming host 1 by its listed name did not fire"
    );
    assert_eq!(fault_events[0]["host_name"].str(), n1);
    assert_eq!(host_events[0]["host_name"].str(), n1);
}

// ---- files, crashes and the persistence window ---------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_inside_the_window_loses_the_file_and_after_a_save_keeps_it() {
    let (fleet, ctl) = start(builder().hosts(2).profile("6.7U3")).await;
    let file = "/v1/hosts/1/files/etc/hosts";
    let edit = "127.0.0.1 localhost\n10.0.0.5 nas\n";

    // Inside the window: written, crashed before any save.
    let w = ctl.put(file, edit);
    assert_eq!(w["written"].str(), "/etc/hosts");
    assert_eq!(w["bytes"].u64(), edit.len() as u64);
    assert_eq!(ctl.call("GET", file, "").text(), edit);
    assert!(ctl.get("/v1/hosts/1")["unsaved_changes"].bool());
    let listed = ctl.get("/v1/hosts/1/files");
    assert!(
        listed.arr().iter().any(|p| p.str() == "etc/hosts"),
        "{listed:?}"
    );
    let crashed = ctl.post("/v1/hosts/1/crash", "");
    assert_eq!(crashed["power"].str(), "off");
    assert!(!crashed["reachable"].bool());
    // The host is off: its files cannot be read or written, and it cannot crash again.
    let msg = ctl.call("GET", file, "").error(409);
    assert!(msg.contains("not running"), "{msg}");
    ctl.call("PUT", file, "x").error(409);
    ctl.call("POST", "/v1/hosts/1/crash", "").error(409);
    assert_eq!(
        ctl.post("/v1/hosts/1/power-on", "")["power"].str(),
        "booting"
    );
    let msg = ctl.call("POST", "/v1/hosts/1/power-on", "").error(409);
    assert!(msg.contains("already"), "{msg}");
    ctl.advance("2s");
    let h = ctl.get("/v1/hosts/1");
    assert_eq!(h["power"].str(), "on");
    assert_eq!(h["boots"].u64(), 2);
    let after = ctl.call("GET", file, "");
    assert_eq!(after.status, 200);
    assert!(!after.text().contains("nas"), "{}", after.text());
    // The embedded API sees the same host.
    let text = fleet.with_host(1, |v| v.host.read_text("/etc/hosts").unwrap().unwrap());
    assert_eq!(text, after.text());
    // Host 0 was not touched.
    let h0 = ctl.get("/v1/hosts/0");
    assert_eq!((h0["power"].str(), h0["boots"].u64()), ("on", 1));

    // Outside the window: an hour later the hourly auto-backup has saved it.
    ctl.put(file, edit);
    ctl.advance("1h");
    let h = ctl.get("/v1/hosts/1");
    assert!(!h["unsaved_changes"].bool(), "{h:?}");
    assert_eq!(h["last_save"].str(), "2024-01-01T00:01:00Z");
    ctl.post("/v1/hosts/1/crash", "");
    ctl.post("/v1/hosts/1/power-on", "");
    ctl.advance("2s");
    assert_eq!(ctl.call("GET", file, "").text(), edit);

    // The events of host 1 only, of these kinds, in order.
    let ev = ctl.events("?host=1&kind=crashed,booted,saved");
    let kinds: Vec<&str> = ev.iter().map(|(_, k)| k.as_str()).collect();
    assert!(ev.iter().all(|(h, _)| *h == Some(1)), "{ev:?}");
    assert_eq!(
        kinds,
        ["saved", "crashed", "booted", "saved", "crashed", "booted"]
    );
    assert!(ctl.events("?host=0&kind=crashed,booted").is_empty());
    // The per-host route lists the same host's events (all kinds).
    let own = ctl.get("/v1/hosts/esx-02/events");
    assert!(own.arr().iter().all(|e| e["host"].u64() == 1));
    assert!(own.arr().iter().any(|e| e["kind"].str() == "powered-on"));
    // limit keeps the newest; after skips what came before.
    let all = ctl.get("/v1/events?host=1");
    let last = all.arr().last().unwrap();
    let newest = ctl.get("/v1/events?host=1&limit=1");
    assert_eq!(newest.arr(), std::slice::from_ref(last));
    let second_last = all.arr()[all.arr().len() - 2]["seq"].u64();
    let tail = ctl.get(&format!("/v1/events?host=1&after={second_last}"));
    assert_eq!(tail.arr(), std::slice::from_ref(last));
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_state_tgz_boots_defaults_and_reinstall_starts_over() {
    let (_fleet, ctl) = start(builder().hosts(2).profile("8.0U3")).await;
    let file = "/v1/hosts/1/files/etc/hosts";
    let edit = "127.0.0.1 localhost\n10.0.0.7 saved-edit\n";
    ctl.put(file, edit);
    ctl.advance("30m");
    assert!(!ctl.get("/v1/hosts/1")["unsaved_changes"].bool());
    assert_eq!(ctl.get("/v1/hosts/1")["state_saves"].u64(), 2);

    // A corrupt state.tgz: a forced reboot (no shutdown save) boots the image defaults.
    assert_eq!(
        ctl.post("/v1/hosts/1/corrupt-state-tgz", "")["power"].str(),
        "on"
    );
    let h = ctl.post("/v1/hosts/1/reboot", r#"{"force":true}"#);
    assert_eq!(h["power"].str(), "booting");
    assert_eq!(h["booting_for_ms"].u64(), 1000);
    ctl.advance("1s");
    assert!(!ctl.call("GET", file, "").text().contains("saved-edit"));
    let booted = ctl.get("/v1/events?host=1&kind=booted&limit=1");
    let text = booted[0]["text"].str();
    assert!(text.contains("state.tgz unusable"), "{text}");

    // Reinstall: the same identity from scratch, at the clock's now. (The host booted the image's
    // /etc, so its host name is `localhost` now: name it by id.)
    assert_eq!(ctl.get("/v1/hosts/1")["hostname"].str(), "localhost");
    ctl.put(file, edit);
    let h = ctl.post("/v1/hosts/host-13/reinstall", "");
    assert_eq!(h["power"].str(), "on");
    assert_eq!(h["boots"].u64(), 1);
    assert_eq!(h["hostname"].str(), "esx-02");
    assert_eq!(h["state_saves"].u64(), 1);
    assert!(!h["unsaved_changes"].bool());
    assert_eq!(h["last_save"].str(), "2024-01-01T00:30:01Z");
    assert!(!ctl.call("GET", file, "").text().contains("saved-edit"));
    let installs = ctl.events("?host=1&kind=installed");
    assert_eq!(installs.len(), 2, "{installs:?}");
    // Host 0 saw none of it.
    let h0 = ctl.get("/v1/hosts/0");
    assert_eq!((h0["boots"].u64(), h0["state_saves"].u64()), (1, 1));
}

/// A crashed host's RAM /etc is the image's, whose host name is `localhost`, and the lookup by
/// host name reads the live one: a host that is off or booting cannot be named by its host
/// name, so `esxi-sim ctl power-on esx-02` after `esxi-sim ctl crash esx-02` answers 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a_host_that_is_down_is_still_found_by_its_host_name() {
    let (_fleet, ctl) = start(builder().hosts(2).plain_http()).await;
    ctl.post("/v1/hosts/esx-02/crash", "");
    let r = ctl.call("POST", "/v1/hosts/esx-02/power-on", "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["index"].u64(), 1);
    // ... and `localhost` names no host.
    ctl.call("GET", "/v1/hosts/localhost", "").error(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_routes_answer_with_the_right_statuses() {
    let (_fleet, ctl) = start(builder().plain_http()).await;
    ctl.put("/v1/hosts/0/files/etc/motd", "hello\n");
    // Segments are percent-decoded and joined: etc%2Fmotd is /etc/motd.
    assert_eq!(
        ctl.call("GET", "/v1/hosts/0/files/etc%2Fmotd", "").text(),
        "hello\n"
    );
    assert_eq!(
        ctl.call("GET", "/v1/hosts/0/files/etc/motd", "").text(),
        "hello\n"
    );
    let d = ctl
        .call("DELETE", "/v1/hosts/0/files/etc/motd", "")
        .expect(200);
    assert_eq!(d["deleted"].str(), "/etc/motd");
    ctl.call("GET", "/v1/hosts/0/files/etc/motd", "").error(404);
    ctl.call("DELETE", "/v1/hosts/0/files/etc/motd", "")
        .error(404);
    let msg = ctl.call("PUT", "/v1/hosts/0/files/tmp/x", "y").error(400);
    assert!(msg.contains("/etc"), "{msg}");
    ctl.call("POST", "/v1/hosts/0/files/etc/motd", "")
        .error(405);
    ctl.call("GET", "/v1/hosts/0/nothing", "").error(404);
}

// ---- the clock, errors, the token ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_advances_by_the_amount_and_bad_input_is_refused() {
    let (fleet, ctl) = start(builder().hosts(2).plain_http()).await;
    let c = ctl.get("/v1/clock");
    assert_eq!(c["now"].str(), "2024-01-01T00:00:00Z");
    assert_eq!(c["speed"].f64(), 0.0);
    assert_eq!(ctl.advance("90m")["now"].str(), "2024-01-01T01:30:00Z");
    assert_eq!(ctl.now(), "2024-01-01T01:30:00Z");
    assert_eq!(fleet.now().to_rfc3339(), "2024-01-01T01:30:00Z");
    fleet.advance(Duration::from_secs(30 * 60));
    assert_eq!(ctl.now(), "2024-01-01T02:00:00Z");
    assert_eq!(ctl.advance("1d")["now"].str(), "2024-01-02T02:00:00Z");
    assert_eq!(ctl.advance("500ms")["now"].str(), "2024-01-02T02:00:00Z");
    assert_eq!(ctl.advance("500ms")["now"].str(), "2024-01-02T02:00:01Z");

    for (body, why) in [
        (r#"{"by":"ten"}"#, "is not a duration"),
        (r#"{"by":"1.5h"}"#, "the unit must be"),
        (r#"{"by":"10"}"#, "the unit must be"),
        (r#"{"by":"-5m"}"#, "is not a duration"),
        (r#"{"by":""}"#, "is not a duration"),
        (r#"{"by":"400d"}"#, "at most a year"),
        (r#"{}"#, "missing field `by`"),
        (r#"{"by":"1m","extra":1}"#, "unknown field"),
        ("", "request body"),
        ("by=1m", "request body"),
    ] {
        let msg = ctl.call("POST", "/v1/clock/advance", body).error(400);
        assert!(msg.contains(why), "{body:?}: {msg}");
    }
    assert_eq!(ctl.now(), "2024-01-02T02:00:01Z", "nothing moved");

    // Speed: 0 freezes, anything up to a million; the answer is the clock.
    let s = ctl.put("/v1/clock/speed", r#"{"speed":120}"#);
    assert_eq!(s["speed"].f64(), 120.0);
    let s = ctl.put("/v1/clock/speed", r#"{"speed":0}"#);
    assert_eq!(s["speed"].f64(), 0.0);
    for bad in [
        r#"{"speed":-1}"#,
        r#"{"speed":2000000}"#,
        r#"{"speed":"x"}"#,
    ] {
        ctl.call("PUT", "/v1/clock/speed", bad).error(400);
    }

    // Unknown hosts, routes and methods.
    for path in [
        "/v1/hosts/2",
        "/v1/hosts/host-99",
        "/v1/hosts/esx-99",
        "/v1/hosts/10.9.9.9",
    ] {
        let msg = ctl.call("GET", path, "").error(404);
        assert!(msg.starts_with("no host"), "{path}: {msg}");
    }
    ctl.call("POST", "/v1/hosts/7/crash", "").error(404);
    ctl.call("GET", "/v1/events?host=7", "").error(404);
    ctl.call("GET", "/v1/events?limit=many", "").error(400);
    ctl.call("GET", "/v2/hosts", "").error(404);
    ctl.call("DELETE", "/v1/clock", "").error(405);
    ctl.call("POST", "/v1/hosts", "").error(405);
    ctl.call("DELETE", "/v1/faults/99", "").error(404);
    ctl.call("DELETE", "/v1/faults/x", "").error(400);
    let msg = ctl
        .call("POST", "/v1/hosts/0/power-cut", r#"{"when":"later"}"#)
        .error(400);
    assert!(msg.contains("next-save"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_token_is_required_when_set() {
    let (_fleet, open) = start(builder().plain_http().control_token("s3cret")).await;
    for ctl in [open.with_token(None), open.with_token(Some("wrong"))] {
        for (m, p) in [
            ("GET", "/v1/fleet"),
            ("GET", "/v1/hosts"),
            ("POST", "/v1/hosts/0/crash"),
            ("GET", "/v1/nothing"),
        ] {
            let r = ctl.call(m, p, "");
            let msg = r.error(401);
            assert!(msg.contains("bearer token"), "{msg}");
            assert_eq!(
                r.header("www-authenticate"),
                Some("Bearer realm=\"esxi-sim control\"")
            );
        }
    }
    // The token as a Basic credential or without its scheme is not enough either.
    let basic = open.with_token(None).send(
        "GET",
        "/v1/fleet",
        b"",
        &[("Authorization", "Basic czNjcmV0")],
    );
    assert_eq!(basic.status, 401);
    let ctl = open.with_token(Some("s3cret"));
    assert_eq!(ctl.get("/v1/hosts/0")["power"].str(), "on", "crash refused");
    assert_eq!(ctl.get("/v1/fleet")["hosts"].u64(), 1);
}

// ---- unreachable hosts ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_host_closes_connections_until_its_time_is_up() {
    let (fleet, ctl) = start(builder().hosts(2)).await;
    let url0 = fleet.hosts()[0].url.clone();
    let mut kept = client(&url0);
    kept.service_content().await.unwrap();

    let h = ctl.post("/v1/hosts/0/unreachable", r#"{"for":"5m"}"#);
    assert!(!h["reachable"].bool());
    assert_eq!(h["power"].str(), "on", "only the link is down");
    assert_eq!(h["unreachable_until"].str(), "2024-01-01T00:05:00Z");

    // A new connection is accepted and closed at once: no TLS, no HTTP answer.
    let mut raw = TcpStream::connect(fleet.hosts()[0].addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = raw.write_all(b"GET /sdk/vimServiceVersions.xml HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0; 64];
    match raw.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected the connection closed without an answer, got {other:?}"),
    }
    let fresh = client(&url0).service_content().await;
    assert!(is_io(&fresh), "{fresh:?}");
    // A request on a connection opened before gets no answer either.
    let again = kept.service_content().await;
    assert!(is_io(&again), "{again:?}");
    // The other host answers.
    client(&fleet.hosts()[1].url)
        .service_content()
        .await
        .unwrap();

    ctl.advance("4m");
    assert!(
        is_io(&client(&url0).service_content().await),
        "still down at 4m"
    );
    ctl.advance("2m");
    let h = ctl.get("/v1/hosts/0");
    assert!(h["reachable"].bool());
    assert!(h["unreachable_until"].is_null());
    client(&url0).service_content().await.unwrap();
    kept.service_content().await.unwrap();

    // DELETE ends it early.
    ctl.post("/v1/hosts/1/unreachable", r#"{"for":"1h"}"#);
    assert!(is_io(
        &client(&fleet.hosts()[1].url).service_content().await
    ));
    let h = ctl
        .call("DELETE", "/v1/hosts/1/unreachable", "")
        .expect(200);
    assert!(h["reachable"].bool());
    client(&fleet.hosts()[1].url)
        .service_content()
        .await
        .unwrap();

    for bad in [r#"{"for":"soon"}"#, r#"{"duration":"5m"}"#, ""] {
        ctl.call("POST", "/v1/hosts/0/unreachable", bad).error(400);
    }
}

// ---- fault rules ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_rule_fires_on_its_host_and_method_as_often_as_allowed() {
    let (fleet, ctl) = start(builder().hosts(2)).await;
    let rule = ctl.add_rule(
        r#"{"host":"0","method":"RetrieveServiceContent","max_count":1,
            "action":{"type":"fault","fault":"PlatformConfigFault","message":"flash gone",
                      "fields":{"text":"bootbank is read-only"}}}"#,
    );
    assert_eq!(rule["id"].u64(), 1);
    assert_eq!(rule["host"].str(), "0");
    assert_eq!(rule["probability"].f64(), 1.0);
    assert_eq!(rule["skip_count"].u64(), 0);
    assert_eq!((rule["matched"].u64(), rule["fired"].u64()), (0, 0));

    // Host 1 is not host 0: untouched, and not even counted.
    let mut c1 = client(&fleet.hosts()[1].url);
    c1.service_content().await.unwrap();
    let mut c0 = client(&fleet.hosts()[0].url);
    let e = c0.service_content().await.unwrap_err();
    assert_eq!(e.fault_type(), Some("PlatformConfigFault"), "{e:?}");
    assert_eq!(e.field("text").as_deref(), Some("bootbank is read-only"));
    match &e {
        ClientError::Fault { message, .. } => assert_eq!(message, "flash gone"),
        other => panic!("{other:?}"),
    }
    // max_count 1: the second call goes through.
    let sc = c0.service_content().await.unwrap();
    assert_eq!(
        sc.child("about").unwrap().child_text("apiType"),
        Some("HostAgent")
    );
    let rules = ctl.get("/v1/faults");
    assert_eq!(rules.arr().len(), 1);
    assert_eq!(
        (rules[0]["matched"].u64(), rules[0]["fired"].u64()),
        (2, 1),
        "{rules:?}"
    );
    assert_eq!(ctl.get("/v1/fleet")["faults"].u64(), 1);
    let ev = ctl.get("/v1/events?kind=fault");
    assert_eq!(ev.arr().len(), 1, "{ev:?}");
    assert_eq!(ev[0]["host"].u64(), 0);
    assert_eq!(
        ev[0]["text"].str(),
        "rule 1 fired on RetrieveServiceContent: fault"
    );

    // skip_count: the first match is let through, the second faults, then max_count is used up.
    // Hosts by vCenter id; faults without fields or message.
    ctl.add_rule(
        r#"{"host":"host-13","method":"Login|RetrieveServiceContent","skip_count":1,"max_count":1,
            "action":{"type":"fault","fault":"HostCommunication"}}"#,
    );
    c1.service_content().await.unwrap();
    let e = c1.service_content().await.unwrap_err();
    assert_eq!(e.fault_type(), Some("HostCommunication"));
    assert!(
        e.to_string().contains("Injected fault HostCommunication"),
        "{e}"
    );
    c1.service_content().await.unwrap();
    let r2 = &ctl.get("/v1/faults")[1];
    assert_eq!((r2["matched"].u64(), r2["fired"].u64()), (3, 1), "{r2:?}");

    // object_type and object_id narrow it down.
    ctl.add_rule(
        r#"{"method":"BackupFirmwareConfiguration","object_id":"ha-firmwareSystem",
            "object_type":"HostFirmwareSystem","max_count":1,
            "action":{"type":"fault","fault":"HostCommunication"}}"#,
    );
    let mut s0 = login(&fleet.hosts()[0].url).await;
    let other = MoRef::new("HostFirmwareSystem", "firmwareSystem-99");
    let not_this = backup_url(&mut s0, &other).await.unwrap_err();
    assert_ne!(not_this.fault_type(), Some("HostCommunication"));
    let this = backup_url(&mut s0, &firmware()).await.unwrap_err();
    assert_eq!(this.fault_type(), Some("HostCommunication"));
    assert!(backup_url(&mut s0, &firmware())
        .await
        .unwrap()
        .contains("/downloads/"));

    // Rules go by id, or all at once.
    assert_eq!(
        ctl.call("DELETE", "/v1/faults/1", "").expect(200)["removed"].u64(),
        1
    );
    ctl.call("DELETE", "/v1/faults/1", "").error(404);
    assert_eq!(ctl.get("/v1/faults").arr().len(), 2);
    assert!(ctl.call("DELETE", "/v1/faults", "").expect(200)["cleared"].bool());
    assert!(ctl.get("/v1/faults").arr().is_empty());
    // Ids are not reused.
    let next = ctl.add_rule(r#"{"action":{"type":"delay"}}"#);
    assert_eq!(next["id"].u64(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_rule_answers_downloads_with_503() {
    let (fleet, ctl) = start(builder()).await;
    let mut c = login(&fleet.hosts()[0].url).await;
    let url = backup_url(&mut c, &firmware()).await.unwrap();
    let path = Client::path_of(&url);
    ctl.add_rule(r#"{"method":"Download","max_count":1,"action":{"type":"status","status":503}}"#);
    let r = c.get(&path).await.unwrap();
    assert_eq!(r.status.as_u16(), 503);
    assert_eq!(&r.body[..], b"injected HTTP 503\n");
    let r = c.get(&path).await.unwrap();
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(&r.body[..2], [0x1f, 0x8b], "a gzip bundle");
    // SOAP calls are not Downloads.
    c.service_content().await.unwrap();
    let rule = &ctl.get("/v1/faults")[0];
    assert_eq!((rule["matched"].u64(), rule["fired"].u64()), (2, 1));
    // A HEAD is not counted as a Download.
    let head = c
        .http(hyper::Method::HEAD, &path, &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(head.status.as_u16(), 200);
    assert_eq!(ctl.get("/v1/faults")[0]["matched"].u64(), 2);

    // The same through the embedded API, on uploads: a 500 from the transfer, once.
    let rule = fleet
        .faults()
        .add(RuleSpec {
            host: Some("host-12".into()),
            method: Some("Upload".into()),
            object_type: None,
            object_id: None,
            probability: 1.0,
            delay: None,
            max_count: Some(1),
            skip_count: 0,
            action: Action::Status { status: 500 },
        })
        .unwrap();
    assert_eq!(rule.id, 2);
    let creds = Some(("root", ROOT_PASSWORD));
    let r = c
        .put("/tmp/configBundle.tgz", b"bundle".to_vec(), creds)
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 500);
    assert_eq!(&r.body[..], b"injected HTTP 500\n");
    let r = c
        .put("/tmp/configBundle.tgz", b"bundle".to_vec(), creds)
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200);
    let uploaded = fleet.with_host(0, |v| v.host.uploaded_bundle().map(|b| b.to_vec()));
    assert_eq!(uploaded.as_deref(), Some(&b"bundle"[..]));
    let listed = ctl.get("/v1/faults");
    assert_eq!(listed[1]["method"].str(), "Upload");
    assert_eq!(
        (listed[1]["matched"].u64(), listed[1]["fired"].u64()),
        (2, 1)
    );
}

/// The answers of `n` RetrieveServiceContent calls under a 503 rule of probability 0.3.
async fn draws(seed: u64, n: usize) -> (Vec<bool>, u64) {
    let (fleet, ctl) = start(builder().plain_http().seed(seed)).await;
    ctl.add_rule(
        r#"{"method":"RetrieveServiceContent","probability":0.3,"action":{"type":"status","status":503}}"#,
    );
    let mut c = client(&fleet.hosts()[0].url);
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(match c.service_content().await {
            Ok(_) => false,
            Err(ClientError::Http(s, _)) if s.as_u16() == 503 => true,
            Err(e) => panic!("{e:?}"),
        });
    }
    let rule = &ctl.get("/v1/faults")[0];
    assert_eq!(rule["matched"].u64(), n as u64);
    let fired = rule["fired"].u64();
    assert_eq!(fired, out.iter().filter(|x| **x).count() as u64);
    (out, fired)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probability_is_drawn_from_the_fleet_seed() {
    let (a, fired) = draws(7, 200).await;
    assert!((30..=90).contains(&fired), "{fired} of 200 at p=0.3");
    let (b, _) = draws(7, 200).await;
    assert_eq!(a, b, "same seed, same firings");
    let (c, _) = draws(8, 200).await;
    assert_ne!(a, c, "another seed, other firings");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_rule_breaks_the_download() {
    let (fleet, ctl) = start(builder()).await;
    let mut c = login(&fleet.hosts()[0].url).await;
    let url = backup_url(&mut c, &firmware()).await.unwrap();
    let path = Client::path_of(&url);
    ctl.add_rule(r#"{"host":"0","method":"Download","max_count":1,"action":{"type":"reset"}}"#);
    let cut = c.get(&path).await;
    assert!(is_io(&cut), "{cut:?}");
    let r = c.get(&path).await.unwrap();
    assert_eq!(r.status.as_u16(), 200);
    let members = tar_members(&r.body);
    assert_eq!(members, ["Manifest.txt", "state.tgz"]);
    let rule = &ctl.get("/v1/faults")[0];
    assert_eq!((rule["matched"].u64(), rule["fired"].u64()), (2, 1));
    let ev = ctl.get("/v1/events?kind=fault");
    assert_eq!(
        ev[0]["text"].str(),
        "rule 1 fired on Download: reset",
        "{ev:?}"
    );
}

/// What a client reads of a `reset` answer on a plain socket: everything until the server
/// closes (plain HTTP so the bytes can be looked at).
fn raw_exchange(addr: SocketAddr, request: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("{e}"),
        }
    }
    raw
}

/// server/faults.rs: "`reset`: the response starts and the connection drops halfway through
/// it"; server/mod.rs `cut_short`: "the client sees a truncated response". What a client sees is
/// an empty reply: not a byte of the status line, headers or body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a_reset_sends_the_head_and_half_the_body() {
    let (fleet, ctl) = start(builder().plain_http()).await;
    let mut c = client(&fleet.hosts()[0].url);
    c.login("root", ROOT_PASSWORD).await.unwrap();
    let url = backup_url(&mut c, &firmware()).await.unwrap();
    let path = Client::path_of(&url);
    ctl.add_rule(r#"{"method":"Download","max_count":1,"action":{"type":"reset"}}"#);
    let raw = raw_exchange(
        fleet.hosts()[0].addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "got {} bytes: {:?}",
        raw.len(),
        String::from_utf8_lossy(&raw)
    );
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let got = raw.len() - end;
    assert!(got > 0 && got < len, "{got} of {len} body bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_and_timeout_rules_hold_the_answer() {
    let (fleet, ctl) = start(builder().plain_http()).await;
    ctl.add_rule(
        r#"{"method":"SyncFirmwareConfiguration|RetrieveServiceContent","delay":"400ms",
            "max_count":1,"action":{"type":"delay"}}"#,
    );
    let mut c = client(&fleet.hosts()[0].url);
    let (r, took) = timed(c.service_content()).await;
    r.unwrap();
    assert!(took >= Duration::from_millis(400), "{took:?}");
    let (r, took) = timed(c.service_content()).await;
    r.unwrap();
    assert!(took < Duration::from_millis(400), "{took:?}");

    // A timeout answers nothing: the client gives up.
    ctl.call("DELETE", "/v1/faults", "").expect(200);
    ctl.add_rule(
        r#"{"method":"RetrieveServiceContent","max_count":1,"action":{"type":"timeout"}}"#,
    );
    c.timeout = Duration::from_millis(500);
    let (r, took) = timed(c.service_content()).await;
    match r {
        Err(ClientError::Io(m)) => assert!(m.contains("no answer in time"), "{m}"),
        other => panic!("expected no answer, got {other:?}"),
    }
    assert!(took >= Duration::from_millis(500));
    c.service_content().await.unwrap();
    // A delay with a fault: the fault comes after the delay.
    ctl.add_rule(
        r#"{"method":"RetrieveServiceContent","delay":"300ms","max_count":1,
            "action":{"type":"fault","fault":"HostCommunication"}}"#,
    );
    c.timeout = Duration::from_secs(10);
    let (r, took) = timed(c.service_content()).await;
    assert_eq!(r.unwrap_err().fault_type(), Some("HostCommunication"));
    assert!(took >= Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_rules_are_refused_with_400() {
    let (_fleet, ctl) = start(builder().plain_http()).await;
    for (body, why) in [
        ("not json", "request body"),
        ("", "request body"),
        (r#"{"method":"Login"}"#, "missing field `action`"),
        (
            r#"{"action":{"type":"explode"}}"#,
            "unknown variant `explode`",
        ),
        (
            r#"{"hots":"1","action":{"type":"reset"}}"#,
            "unknown field `hots`",
        ),
        (
            r#"{"probability":1.5,"action":{"type":"reset"}}"#,
            "probability must be between 0 and 1",
        ),
        (r#"{"delay":"soon","action":{"type":"delay"}}"#, "soon"),
        (
            r#"{"delay":"11m","action":{"type":"delay"}}"#,
            "at most 10m",
        ),
        (r#"{"action":{"type":"status","status":200}}"#, "4xx or 5xx"),
        (r#"{"action":{"type":"status"}}"#, "missing field `status`"),
        (
            r#"{"action":{"type":"fault","fault":"<x/>"}}"#,
            "not a vSphere type name",
        ),
        (r#"{"action":{"type":"fault"}}"#, "missing field `fault`"),
        (
            r#"{"action":{"type":"fault","fault":"X","fields":{"a":{"b":1}}}}"#,
            "fault field a",
        ),
        (
            r#"{"action":{"type":"fault","fault":"X","fields":{"n":1.5}}}"#,
            "integers",
        ),
        (
            r#"{"max_count":-1,"action":{"type":"reset"}}"#,
            "request body",
        ),
    ] {
        let msg = ctl.call("POST", "/v1/faults", body).error(400);
        assert!(msg.contains(why), "{body:?}: {msg}");
    }
    assert!(ctl.get("/v1/faults").arr().is_empty());
    assert_eq!(ctl.get("/v1/fleet")["faults"].u64(), 0);
}

// ---- vCenter mode --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcenter_mode_fronts_the_hosts_and_bundles_come_from_the_host() {
    let (fleet, ctl) = start(builder().hosts(3).mode(Mode::VCenter).profile("8.0U3")).await;
    let vc_url = fleet.vcenter_url().expect("a vCenter endpoint");
    assert!(vc_url.starts_with("https://127.0.0.1:"), "{vc_url}");
    let summary = ctl.get("/v1/fleet");
    assert_eq!(summary["mode"].str(), "vcenter");
    assert_eq!(summary["vcenter"].str(), vc_url);
    assert_eq!(summary["hosts"].u64(), 3);

    let mut vc = client(&vc_url);
    let sc = vc.service_content().await.unwrap();
    let about = sc.child("about").unwrap();
    assert_eq!(about.child_text("apiType"), Some("VirtualCenter"));
    assert_eq!(about.child_text("name"), Some("VMware vCenter Server"));
    let sm = sc.child("sessionManager").unwrap().text.trim().to_string();
    assert_eq!(sm, "SessionManager");
    let sm = MoRef::new("SessionManager", &sm);
    let bad = vc
        .call(
            &sm,
            "Login",
            "<userName>administrator@vsphere.local</userName><password>wrong</password>",
        )
        .await
        .unwrap_err();
    assert_eq!(bad.fault_type(), Some("InvalidLogin"));
    let session = vc
        .call(
            &sm,
            "Login",
            "<userName>administrator@vsphere.local</userName><password>VMware1!</password>",
        )
        .await
        .unwrap();
    assert_eq!(
        returnval(&session).unwrap().child_text("userName"),
        Some("administrator@vsphere.local")
    );

    // Host 1 is host-13; its firmware system firmwareSystem-13. The URL is host 1's.
    let url = backup_url(
        &mut vc,
        &MoRef::new("HostFirmwareSystem", "firmwareSystem-13"),
    )
    .await
    .unwrap();
    let port1 = fleet.hosts()[1].addr.port();
    assert!(
        url.starts_with(&format!("https://*:{port1}/downloads/")),
        "{url}"
    );
    assert!(url.ends_with("/configBundle-esx-02.tgz"), "{url}");
    let path = Client::path_of(&url);
    let mut h1 = client(&fleet.hosts()[1].url);
    let r = h1.get(&path).await.unwrap();
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(&r.body[..2], [0x1f, 0x8b], "gzip");
    assert_eq!(tar_members(&r.body), ["Manifest.txt", "state.tgz"]);
    // Not from another host.
    let r = client(&fleet.hosts()[0].url).get(&path).await.unwrap();
    assert_eq!(r.status.as_u16(), 404);

    // A rule for the vCenter endpoint, narrowed to one host's firmware system.
    ctl.add_rule(
        r#"{"host":"vcenter","method":"BackupFirmwareConfiguration","object_id":"firmwareSystem-13",
            "max_count":1,"action":{"type":"fault","fault":"HostCommunication"}}"#,
    );
    let fw12 = MoRef::new("HostFirmwareSystem", "firmwareSystem-12");
    let fw13 = MoRef::new("HostFirmwareSystem", "firmwareSystem-13");
    assert!(backup_url(&mut vc, &fw12).await.is_ok());
    let e = backup_url(&mut vc, &fw13).await.unwrap_err();
    assert_eq!(e.fault_type(), Some("HostCommunication"));
    // Logged at the vCenter endpoint, and counted as host 1's (the object is its).
    let ev = ctl.get("/v1/events?kind=fault");
    assert_eq!(ev[0]["host"].u64(), 1, "{ev:?}");
    assert_eq!(ev[0]["host_name"].str(), "vcenter");

    // A host cut off: vCenter says HostNotReachable.
    ctl.post("/v1/hosts/host-14/unreachable", r#"{"for":"10m"}"#);
    let fw14 = MoRef::new("HostFirmwareSystem", "firmwareSystem-14");
    let e = backup_url(&mut vc, &fw14).await.unwrap_err();
    assert_eq!(e.fault_type(), Some("HostNotReachable"), "{e:?}");
    fleet.shutdown().await;
}

// ---- the event stream ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_delivers_a_crash_and_resumes_from_last_event_id() {
    let (_fleet, ctl) = start(builder().hosts(2).plain_http()).await;
    let mut sse = ctl.stream("", None);
    // Nothing of the past without `after` or Last-Event-ID: the opening comment comes first.
    let opening = sse.read_until(": esxi-sim events\n\n", Duration::from_secs(5));
    assert!(!opening.contains("event:"), "{opening}");
    ctl.post("/v1/hosts/1/crash", "");
    let (id, data) = sse.next_event("crashed", Duration::from_secs(5));
    assert_eq!(data["seq"].u64(), id);
    assert_eq!(data["host"].u64(), 1);
    assert_eq!(data["kind"].str(), "crashed");
    assert_eq!(data["at"].str(), "2024-01-01T00:00:00Z");

    // Resume: Last-Event-ID replays what came after it.
    let mut again = ctl.stream("", Some(id - 1));
    let (id2, data2) = again.next_event("crashed", Duration::from_secs(5));
    assert_eq!((id2, data2), (id, data));
    // ?after wins over the header; after the crash, nothing of it.
    let mut later = ctl.stream(&format!("?after={id}"), Some(0));
    let seen = later.read_until(": esxi-sim events\n\n", Duration::from_secs(5));
    assert!(!seen.contains("event: crashed"), "{seen}");

    // A filtered stream passes only its kinds and host.
    let mut boots = ctl.stream("?kind=booted&host=1", None);
    boots.read_until(": esxi-sim events\n\n", Duration::from_secs(5));
    ctl.post("/v1/hosts/0/crash", "");
    ctl.post("/v1/hosts/0/power-on", "");
    ctl.post("/v1/hosts/1/power-on", "");
    ctl.advance("2s");
    let (_, b) = boots.next_event("booted", Duration::from_secs(5));
    assert_eq!(b["host"].u64(), 1);
    let rest = boots.drain(Duration::from_millis(300));
    assert!(!rest.contains("event:"), "{rest}");
    // The unfiltered stream saw them all.
    let all = sse.drain(Duration::from_millis(300));
    for kind in ["crashed", "powered-on", "booted"] {
        assert!(all.contains(&format!("event: {kind}\n")), "{kind}: {all}");
    }
}

// ---- flash faults --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flash_faults_fail_saves_tear_state_tgz_and_slow_the_savers() {
    let (fleet, ctl) = start(builder().hosts(2).mode(Mode::VCenter)).await;
    let url = fleet.hosts()[1].url.clone();
    let mut c = login(&url).await;
    let healthy = ctl.get("/v1/hosts/1/flash");
    assert!(!healthy["read_only"].bool() && !healthy["full"].bool());
    assert!(healthy["slow"].is_null());

    // Read-only: a sync fails in the protocol's terms and the bank keeps its bytes.
    let before = ctl.get("/v1/hosts/1")["state_saves"].u64();
    let f = ctl.put("/v1/hosts/1/flash", r#"{"read_only":true}"#);
    assert!(f["read_only"].bool());
    ctl.put("/v1/hosts/1/files/etc/motd", "changed\n");
    let e = c
        .call(&firmware(), "SyncFirmwareConfiguration", "")
        .await
        .unwrap_err();
    assert_eq!(e.fault_type(), Some("PlatformConfigFault"), "{e}");
    assert!(e.to_string().contains("Read-only file system"), "{e}");
    assert_eq!(ctl.get("/v1/hosts/1")["state_saves"].u64(), before);
    assert!(ctl.get("/v1/hosts/1")["unsaved_changes"].bool());
    let kinds = ctl.events("?host=1&kind=save-failed,flash-faults");
    assert!(kinds.iter().any(|(_, k)| k == "save-failed"), "{kinds:?}");
    // Full, then healthy again: the sync goes through.
    ctl.put("/v1/hosts/1/flash", r#"{"read_only":false,"full":true}"#);
    let e = c
        .call(&firmware(), "SyncFirmwareConfiguration", "")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("No space left on device"), "{e}");
    ctl.put("/v1/hosts/1/flash", r#"{"full":false}"#);
    c.call(&firmware(), "SyncFirmwareConfiguration", "")
        .await
        .unwrap();
    assert_eq!(ctl.get("/v1/hosts/1")["state_saves"].u64(), before + 1);

    // A torn write: the save "succeeds", the flag clears, the next boot has the defaults.
    ctl.put("/v1/hosts/1/flash", r#"{"torn_next_write":true}"#);
    ctl.put("/v1/hosts/1/files/etc/motd", "torn\n");
    c.call(&firmware(), "SyncFirmwareConfiguration", "")
        .await
        .unwrap();
    assert!(!ctl.get("/v1/hosts/1/flash")["torn_next_write"].bool());
    ctl.post("/v1/hosts/1/reboot", r#"{"force":true}"#);
    ctl.advance("2m");
    let booted = ctl.events("?host=1&kind=booted,torn-write");
    assert_eq!(
        booted.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>(),
        ["torn-write", "booted"]
    );
    let text = ctl.get("/v1/events?host=1&kind=booted")[0]["text"]
        .str()
        .to_string();
    assert!(text.contains("image defaults"), "{text}");

    // Slow flash: sync and backup answer late, on the host and through the vCenter; other
    // calls do not wait, and the rule shows in the list.
    ctl.call("POST", "/v1/hosts/1/reinstall", "").expect(200);
    let f = ctl.put("/v1/hosts/1/flash", r#"{"slow":"400ms"}"#);
    assert_eq!(f["slow"].str(), "400ms");
    assert_eq!(ctl.get("/v1/faults").arr().len(), 1);
    let mut c = login(&url).await;
    let (r, took) = timed(c.call(&firmware(), "SyncFirmwareConfiguration", "")).await;
    r.unwrap();
    assert!(took >= Duration::from_millis(400), "{took:?}");
    let (r, took) = timed(c.service_content()).await;
    r.unwrap();
    assert!(took < Duration::from_millis(300), "{took:?}");
    let mut vc = client(&fleet.vcenter_url().unwrap());
    vc.login("administrator@vsphere.local", "VMware1!")
        .await
        .unwrap();
    let fw = |n: u32| MoRef::new("HostFirmwareSystem", format!("firmwareSystem-{n}"));
    let (r, took) = timed(backup_url(&mut vc, &fw(13))).await;
    r.unwrap();
    assert!(took >= Duration::from_millis(400), "{took:?}");
    // Host 0 is not slow.
    let (r, took) = timed(backup_url(&mut vc, &fw(12))).await;
    r.unwrap();
    assert!(took < Duration::from_millis(300), "{took:?}");
    let f = ctl.put("/v1/hosts/1/flash", r#"{"slow":null}"#);
    assert!(f["slow"].is_null());
    assert!(ctl.get("/v1/faults").arr().is_empty());
    // Bad input changes nothing.
    ctl.call("PUT", "/v1/hosts/1/flash", r#"{"slow":"soon"}"#)
        .error(400);
    ctl.call("PUT", "/v1/hosts/1/flash", r#"{"readonly":true}"#)
        .error(400);
    assert!(!ctl.get("/v1/hosts/1/flash")["read_only"].bool());
    fleet.shutdown().await;
}

/// Tests without an async runtime start a fleet too; dropping it stops every listener.
#[test]
fn a_blocking_fleet_serves_until_dropped() {
    let fleet = builder().hosts(2).plain_http().start_blocking().unwrap();
    let addr = fleet.hosts()[1].addr;
    let control = fleet.control_addr.unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        b"GET /sdk/vimServiceVersions.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("<name>urn:vim25</name>"), "{out}");
    fleet.advance(Duration::from_secs(3600));
    assert_eq!(fleet.with_host(1, |v| v.host.boots()), 1);
    drop(fleet);
    assert!(
        TcpStream::connect(addr).is_err(),
        "host endpoint still open"
    );
    assert!(
        TcpStream::connect(control).is_err(),
        "control API still open"
    );
}

/// Every endpoint's certificate chains to the fleet CA: a client that trusts it verifies the
/// hosts (by address) and the vCenter, and one that trusts another CA is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_verify_against_the_fleet_ca() {
    let (fleet, ctl) = start(
        builder()
            .hosts(2)
            .mode(Mode::VCenter)
            .layout(Layout::Addresses {
                first: Ipv4Addr::new(127, 78, 0, 1),
                port: 0,
            }),
    )
    .await;
    let pem = ctl.call("GET", "/v1/ca.pem", "");
    assert_eq!(pem.status, 200);
    assert_eq!(pem.text(), fleet.ca_pem().unwrap());
    assert!(pem.text().starts_with("-----BEGIN CERTIFICATE-----"));
    let trust = Trust::Roots(pem.text().into_bytes());
    for url in [
        fleet.hosts()[0].url.clone(),
        fleet.hosts()[1].url.clone(),
        fleet.vcenter_url().unwrap(),
    ] {
        let mut c = Client::new(&url, trust.clone()).unwrap();
        c.service_content()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    // Another fleet's CA does not vouch for these hosts.
    let (other, _) = start(builder().hosts(1)).await;
    let stranger = Trust::Roots(other.ca_pem().unwrap().as_bytes().to_vec());
    let mut c = Client::new(&fleet.hosts()[0].url, stranger).unwrap();
    let e = c.service_content().await.unwrap_err();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    // Plain HTTP has no CA.
    let (plain, plain_ctl) = start(builder().plain_http()).await;
    assert!(plain.ca_pem().is_none());
    plain_ctl.call("GET", "/v1/ca.pem", "").error(404);
    fleet.shutdown().await;
}

// ---- encryption, the recovery key, board replacement (facts 6.4, 6.5) ------------------------

/// A recovery key as esxcli prints it: 16 groups of 6 digits joined by `-`.
fn is_recovery_key(k: &str) -> bool {
    let groups: Vec<&str> = k.split('-').collect();
    groups.len() == 16
        && groups
            .iter()
            .all(|g| g.len() == 6 && g.bytes().all(|b| b.is_ascii_digit()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_is_shown_set_and_refused_by_the_rules() {
    let (fleet, ctl) = start(
        builder()
            .hosts(2)
            .profiles(&[("8.0U3", 1), ("6.7U3", 1)])
            .plain_http(),
    )
    .await;
    let e0 = ctl.get("/v1/hosts/0/encryption");
    assert_eq!(e0["era"].str(), "encrypted");
    assert_eq!(e0["mode"].str(), "NONE");
    assert!(!e0["require_secure_boot"].bool());
    assert!(e0["tpm"].bool());
    assert!(e0["recovery_key"].is_null() && e0["boot_halted"].is_null());
    let e1 = ctl.get("/v1/hosts/1/encryption");
    assert_eq!(e1["era"].str(), "plain");
    assert!(e1["mode"].is_null() && e1["require_secure_boot"].is_null());
    // The host state says the mode too.
    assert_eq!(ctl.get("/v1/hosts/0")["encryption"].str(), "NONE");
    assert!(ctl.get("/v1/hosts/1")["encryption"].is_null());
    assert!(ctl.get("/v1/hosts/0")["boot_halted"].is_null());

    // Bad input: 400, nothing changed.
    for body in [
        r#"{"mode":"TPM2"}"#,
        r#"{"mode":"TPM","secure_boot":true}"#,
        r#"{"require_secure_boot":"yes"}"#,
        r#"{"mode":1}"#,
        "{not json",
        "",
    ] {
        let msg = ctl.call("PUT", "/v1/hosts/0/encryption", body).error(400);
        assert!(!msg.is_empty(), "{body}");
    }
    let msg = ctl
        .call("PUT", "/v1/hosts/0/encryption", r#"{"mode":"TPM2"}"#)
        .error(400);
    assert!(msg.contains("expected NONE or TPM"), "{msg}");
    assert_eq!(ctl.get("/v1/hosts/0/encryption"), e0);
    assert!(ctl.events("?host=0&kind=encryption-mode").is_empty());
    // A build before 7.0 U2 has nothing to set or rotate: 409, said why.
    let msg = ctl
        .call("PUT", "/v1/hosts/1/encryption", r#"{"mode":"TPM"}"#)
        .error(409);
    assert!(msg.contains("does not encrypt its configuration"), "{msg}");
    ctl.call("POST", "/v1/hosts/1/encryption/recovery/rotate", "")
        .error(409);
    // NONE mode has no recovery key to rotate.
    let msg = ctl
        .call("POST", "/v1/hosts/0/encryption/recovery/rotate", "")
        .error(409);
    assert!(msg.contains("TPM mode only"), "{msg}");
    // Unknown hosts.
    for (m, p) in [
        ("GET", "/v1/hosts/7/encryption"),
        ("PUT", "/v1/hosts/7/encryption"),
        ("POST", "/v1/hosts/7/encryption/recovery/rotate"),
        ("POST", "/v1/hosts/7/replace-board"),
        ("GET", "/v1/hosts/7/bootbank/state.tgz"),
    ] {
        let msg = ctl.call(m, p, r#"{"mode":"TPM"}"#).error(404);
        assert!(msg.contains("no host"), "{m} {p}: {msg}");
    }

    // TPM with secure boot, in one request.
    let t = ctl.put(
        "/v1/hosts/0/encryption",
        r#"{"mode":"tpm","require_secure_boot":true}"#,
    );
    assert_eq!(t["mode"].str(), "TPM");
    assert!(t["require_secure_boot"].bool());
    let key = t["recovery_key"]["key"].str().to_string();
    let id = t["recovery_key"]["id"].str().to_string();
    assert!(is_recovery_key(&key), "{key}");
    assert!(
        id.starts_with('{') && id.ends_with('}') && id.len() == 38 && id == id.to_uppercase(),
        "{id}"
    );
    assert_eq!(ctl.get("/v1/hosts/0")["encryption"].str(), "TPM");
    // It cannot be undone, and a refused change leaves the rest as it was.
    let msg = ctl
        .call(
            "PUT",
            "/v1/hosts/0/encryption",
            r#"{"mode":"NONE","require_secure_boot":false}"#,
        )
        .error(409);
    assert!(msg.contains("cannot be changed from TPM to NONE"), "{msg}");
    assert_eq!(ctl.get("/v1/hosts/0/encryption"), t);
    // Rotation: a new key and id; a body with unknown fields is refused first.
    ctl.call(
        "POST",
        "/v1/hosts/0/encryption/recovery/rotate",
        r#"{"now":true}"#,
    )
    .error(400);
    assert_eq!(ctl.get("/v1/hosts/0/encryption"), t);
    let r = ctl.post("/v1/hosts/0/encryption/recovery/rotate", "{}");
    assert!(is_recovery_key(r["recovery_key"]["key"].str()));
    assert_ne!(r["recovery_key"]["key"].str(), key);
    assert_ne!(r["recovery_key"]["id"].str(), id);
    let kinds = ctl.events("?host=0&kind=encryption-mode,recovery-key-rotated");
    let kinds: Vec<&str> = kinds.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(kinds, ["encryption-mode", "recovery-key-rotated"]);

    // The boot bank's state.tgz as it is on the device: the encrypted pair on 8.0U3, a plain
    // local.tgz on 6.7U3; a stateless host has none.
    let st = ctl.call("GET", "/v1/hosts/0/bootbank/state.tgz", "");
    assert_eq!(st.status, 200);
    assert_eq!(st.header("content-type"), Some("application/octet-stream"));
    assert_eq!(tar_members(&st.body), ["local.tgz.ve", "encryption.info"]);
    let st = ctl.call("GET", "/v1/hosts/1/bootbank/state.tgz", "");
    assert_eq!(tar_members(&st.body), ["local.tgz"]);
    ctl.put("/v1/hosts/1/stateless", r#"{"enabled":true}"#);
    let msg = ctl
        .call("GET", "/v1/hosts/1/bootbank/state.tgz", "")
        .error(404);
    assert!(msg.contains("stateless"), "{msg}");
    fleet.shutdown().await;
}

/// Facts 6.5: a TPM host on a new board cannot open its configuration; the boot stops, the host
/// stays down (vCenter: notResponding) and says why, until it is powered on with its recovery
/// key; then it boots its configuration and seals the key to the new TPM at the next save.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tpm_host_on_a_new_board_halts_until_its_recovery_key_is_given() {
    let (fleet, ctl) = start(builder().hosts(2).mode(Mode::VCenter).profile("8.0U3")).await;
    let file = "/v1/hosts/1/files/etc/hosts";
    let edit = "127.0.0.1 localhost\n10.0.0.5 nas\n";
    let t = ctl.put("/v1/hosts/1/encryption", r#"{"mode":"TPM"}"#);
    let key = t["recovery_key"]["key"].str().to_string();
    ctl.put(file, edit);
    let uuid = ctl.get("/v1/hosts/1")["uuid"].str().to_string();

    // Bad bodies change nothing.
    ctl.call("POST", "/v1/hosts/1/replace-board", r#"{"new_uuid":"yes"}"#)
        .error(400);
    ctl.call("POST", "/v1/hosts/1/replace-board", "{")
        .error(400);
    assert_eq!(ctl.get("/v1/hosts/1")["power"].str(), "on");
    // The board goes (the shutdown saves the edit); the host stays off with a new UUID.
    let h = ctl.post("/v1/hosts/1/replace-board", r#"{"new_uuid":true}"#);
    assert_eq!(h["power"].str(), "off");
    assert_ne!(h["uuid"].str(), uuid);
    assert_eq!(h["encryption"].str(), "TPM", "read from the boot bank");
    ctl.post("/v1/hosts/1/power-on", "");
    ctl.advance("1m");
    let h = ctl.get("/v1/hosts/1");
    assert_eq!(h["power"].str(), "off");
    let why = h["boot_halted"].str().to_string();
    assert!(
        why.contains("Unable to restore system configuration. A security violation was detected.")
            && why.contains("Failed to decrypt system configuration."),
        "{why}"
    );
    assert_eq!(ctl.get("/v1/hosts/1/encryption")["boot_halted"].str(), why);
    assert!(ctl.get("/v1/hosts/1/encryption")["recovery_key"].is_null());
    let ev = ctl.get("/v1/events?host=1&kind=boot-halted");
    assert!(ev[0]["text"].str().contains("security violation"), "{ev:?}");
    ctl.call("GET", file, "").error(409);

    // vCenter: the halted host is not responding, the other one is fine.
    let mut vc = client(&fleet.vcenter_url().unwrap());
    vc.login("administrator@vsphere.local", "VMware1!")
        .await
        .unwrap();
    let state = |n: u32| MoRef::new("HostSystem", format!("host-{n}"));
    assert_eq!(
        vc.fetch_text(&state(13), "runtime.connectionState")
            .await
            .unwrap(),
        "notResponding"
    );
    assert_eq!(
        vc.fetch_text(&state(12), "runtime.connectionState")
            .await
            .unwrap(),
        "connected"
    );

    // A malformed key is refused before anything happens; a wrong one halts again.
    let powered = ctl.events("?host=1&kind=powered-on").len();
    let msg = ctl
        .call(
            "POST",
            "/v1/hosts/1/power-on",
            r#"{"recovery_key":"123-456"}"#,
        )
        .error(400);
    assert!(msg.contains("16 groups of 6 digits"), "{msg}");
    ctl.call("POST", "/v1/hosts/1/power-on", r#"{"recovery_key":1234}"#)
        .error(400);
    ctl.call(
        "POST",
        "/v1/hosts/1/power-on",
        &format!(r#"{{"recovery_key":"{key}","force":true}}"#),
    )
    .error(400);
    assert_eq!(ctl.events("?host=1&kind=powered-on").len(), powered);
    assert_eq!(ctl.get("/v1/hosts/1")["power"].str(), "off");
    let wrong = ["000001"; 16].join("-");
    ctl.post(
        "/v1/hosts/1/power-on",
        &format!(r#"{{"recovery_key":"{wrong}"}}"#),
    );
    ctl.advance("1m");
    let why = ctl.get("/v1/hosts/1")["boot_halted"].str().to_string();
    assert!(
        why.contains("the recovery key given does not open it"),
        "{why}"
    );
    // Without a key the reason is this boot's, not the wrong key's.
    ctl.post("/v1/hosts/1/power-on", "");
    ctl.advance("1m");
    let why = ctl.get("/v1/hosts/1")["boot_halted"].str().to_string();
    assert!(why.contains("the recovery key is needed"), "{why}");

    // The right key: the host is back with its configuration, and vCenter sees it again.
    let h = ctl.post(
        "/v1/hosts/1/power-on",
        &format!(r#"{{"recovery_key":"{key}"}}"#),
    );
    assert_eq!(h["power"].str(), "booting");
    assert!(h["boot_halted"].is_null());
    ctl.advance("1m");
    let h = ctl.get("/v1/hosts/1");
    assert_eq!(h["power"].str(), "on");
    assert!(h["boot_halted"].is_null());
    assert_eq!(ctl.call("GET", file, "").text(), edit);
    let kinds = ctl.events("?host=1&kind=recovered,resealed,booted");
    let kinds: Vec<&str> = kinds.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(kinds, ["resealed", "recovered", "booted"]);
    assert_eq!(
        ctl.get("/v1/hosts/1/encryption")["recovery_key"]["key"].str(),
        key
    );
    assert_eq!(
        vc.fetch_text(&state(13), "runtime.connectionState")
            .await
            .unwrap(),
        "connected"
    );
    // The next save seals the key to the new TPM: a crash later, it boots without the key.
    ctl.advance("10m");
    ctl.post("/v1/hosts/1/crash", "");
    ctl.post("/v1/hosts/1/power-on", "");
    ctl.advance("1m");
    let h = ctl.get("/v1/hosts/1");
    assert_eq!(h["power"].str(), "on", "{h:?}");
    assert_eq!(ctl.call("GET", file, "").text(), edit);
    fleet.shutdown().await;
}

/// NONE mode is obfuscation (facts 6.4): the key comes from encryption.info itself, so a new
/// board boots it as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_none_mode_host_boots_on_a_new_board() {
    let (fleet, ctl) = start(builder().hosts(1).profile("7.0U3").plain_http()).await;
    let file = "/v1/hosts/0/files/etc/hosts";
    let edit = "127.0.0.1 localhost\n10.0.0.6 none-mode\n";
    ctl.put(file, edit);
    ctl.post("/v1/hosts/0/replace-board", "");
    ctl.post("/v1/hosts/0/power-on", "{}");
    ctl.advance("1m");
    let h = ctl.get("/v1/hosts/0");
    assert_eq!(h["power"].str(), "on", "{h:?}");
    assert!(h["boot_halted"].is_null());
    assert_eq!(ctl.call("GET", file, "").text(), edit);
    assert!(ctl.events("?host=0&kind=boot-halted").is_empty());
    fleet.shutdown().await;
}

/// The request trace of a fleet (issue 14): one for every endpoint, a call through the vCenter
/// attributed to the host it is about, the fault rule that answered named, and `GET /v1/trace`
/// filtered by host, endpoint, method and position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_tells_every_endpoints_requests_and_the_rules_that_fired() {
    let trace = std::sync::Arc::new(esxi_sim::server::trace::Trace::new(None).unwrap());
    let t = trace.clone();
    let (fleet, ctl) = start(builder().hosts(2).mode(Mode::VCenter).config(move |c| {
        c.trace = Some(t);
    }))
    .await;
    let mut vc = client(&fleet.vcenter_url().unwrap());
    vc.login("administrator@vsphere.local", "VMware1!")
        .await
        .unwrap();
    let url = backup_url(
        &mut vc,
        &MoRef::new("HostFirmwareSystem", "firmwareSystem-13"),
    )
    .await
    .unwrap();
    // The download goes to host 1 itself.
    let h1 = &fleet.hosts()[1];
    let path = url
        .split_once("/downloads/")
        .map(|(_, p)| format!("/downloads/{p}"))
        .unwrap();
    let mut c1 = client(&h1.url);
    assert_eq!(c1.get(&path).await.unwrap().status, 200);
    // A rule answers host 0's next download with 404.
    let rule =
        ctl.add_rule(r#"{"host":"0","method":"Download","action":{"type":"status","status":404}}"#);
    let mut c0 = client(&fleet.hosts()[0].url);
    assert_eq!(
        c0.get("/downloads/x/configBundle-x.tgz")
            .await
            .unwrap()
            .status,
        404
    );

    let all = ctl.get("/v1/trace");
    let rows = all.arr();
    let backup = rows
        .iter()
        .find(|r| r["method"].str() == "BackupFirmwareConfiguration")
        .unwrap();
    assert_eq!(backup["endpoint"].str(), "vcenter");
    assert_eq!(backup["host"].u64(), 1, "about host 1 (firmwareSystem-13)");
    assert_eq!(backup["user"].str(), "administrator@vsphere.local");
    assert_eq!(
        backup["object"].str(),
        "HostFirmwareSystem:firmwareSystem-13"
    );
    let downloads: Vec<_> = rows
        .iter()
        .filter(|r| r["kind"].str() == "download")
        .collect();
    assert_eq!(downloads.len(), 2);
    assert_eq!(
        (
            downloads[0]["host"].u64(),
            downloads[0]["status"].u64(),
            downloads[0]["outcome"].str()
        ),
        (1, 200, "ok")
    );
    assert_eq!(downloads[0]["endpoint"].str(), h1.name);
    assert_eq!(
        (
            downloads[1]["host"].u64(),
            downloads[1]["status"].u64(),
            downloads[1]["outcome"].str()
        ),
        (0, 404, "error")
    );
    assert_eq!(downloads[1]["rule"].u64(), rule["id"].u64());

    // Filters.
    let only1 = ctl.get("/v1/trace?host=1");
    assert!(only1.arr().iter().all(|r| r["host"].u64() == 1));
    assert!(only1.arr().len() >= 2);
    let logins = ctl.get("/v1/trace?method=Login&endpoint=vcenter");
    assert_eq!(logins.arr().len(), 1);
    let last = rows.last().unwrap()["seq"].u64();
    assert!(ctl.get(&format!("/v1/trace?after={last}")).arr().is_empty());
    assert_eq!(ctl.get("/v1/trace?limit=1").arr().len(), 1);
    ctl.call("GET", "/v1/trace?after=x", "").expect(400);
    assert_eq!(trace.last_seq(), last);

    // Without a trace, the route says how to get one.
    let (_plain, ctl2) = start(builder().hosts(1)).await;
    ctl2.call("GET", "/v1/trace", "").expect(404);
}
