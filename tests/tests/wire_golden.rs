//! Golden scripts of both wires (toydb's goldenscript style): each file in `tests/golden/wire-*`
//! is a list of requests, each followed by the response bytes the simulator sends (status line,
//! the headers a client acts on, the body as sent), against a vCenter of one 8.0U3 host with a
//! frozen clock. `wire-soap.txt` and `wire-json.txt` make the same calls, so the two encodings of
//! one answer sit side by side. After a deliberate change of output, regenerate with
//! `UPDATE_GOLDENFILES=1 cargo test -p esxi-sim-tests --test wire_golden` and read the diff
//! before committing it.
//!
//! ```text
//! # a comment
//! > soap METHOD TYPE:ID [PARAMETER XML]   a SOAP call to /sdk (the envelope made around it)
//! > soap-raw BODY                         a SOAP body sent as is
//! > json POST|GET PATH [BODY]             a VI/JSON request to the vCenter, body as is
//! > json-host POST PATH [BODY]            the same to the host (SOAP only: 404)
//! ```
//! A session's token (the SOAP cookie, the `vmware-api-session-id` header) is kept per wire and
//! sent with the next requests. What differs run to run is written as a placeholder: tokens
//! (`<session>`) and the session's key (`<session-key>`), download ids (`<id>`), the endpoints'
//! addresses (`<vcenter>`, `<host>`) and a transfer URL's port (`<port>`).

use std::path::{Path, PathBuf};

use esxi_sim::fleet::{Fleet, FleetBuilder, Mode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ENVELOPE_OPEN: &str = "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"><soapenv:Body>";
const ENVELOPE_CLOSE: &str = "</soapenv:Body></soapenv:Envelope>";

struct World {
    fleet: Fleet,
    vcenter: String,
    host: String,
    soap_token: Option<String>,
    json_token: Option<String>,
    /// Strings that differ run to run, and what they are written as.
    placeholders: Vec<(String, String)>,
}

impl World {
    async fn new() -> World {
        let fleet = FleetBuilder::default()
            .mode(Mode::VCenter)
            .profile("8.0U3")
            .hosts(1)
            .seed(7)
            .password("Golden!pw1")
            .vcenter_credentials("administrator@vsphere.local", "Golden!vc1")
            .clock_speed(0.0)
            .plain_http()
            .start()
            .await
            .unwrap();
        let strip = |u: &str| {
            u.trim_start_matches("http://")
                .trim_end_matches("/sdk")
                .to_string()
        };
        let vcenter = strip(&fleet.vcenter_url().unwrap());
        let host = strip(&fleet.hosts()[0].url);
        let placeholders = vec![
            (vcenter.clone(), "<vcenter>".to_string()),
            (host.clone(), "<host>".to_string()),
        ];
        World {
            fleet,
            vcenter,
            host,
            soap_token: None,
            json_token: None,
            placeholders,
        }
    }

    async fn run(&mut self, cmd: &str) -> String {
        let (verb, rest) = cmd.split_once(' ').unwrap_or((cmd, ""));
        let (addr, method, path, body, soap) = match verb {
            "soap" => {
                let mut w = rest.splitn(3, ' ');
                let m = w.next().unwrap();
                let (ty, id) = w.next().unwrap().split_once(':').unwrap();
                let params = w.next().unwrap_or("");
                let body = format!(
                    "{ENVELOPE_OPEN}<{m} xmlns=\"urn:vim25\"><_this type=\"{ty}\">{id}</_this>{params}</{m}>{ENVELOPE_CLOSE}"
                );
                (self.vcenter.clone(), "POST", "/sdk".to_string(), body, true)
            }
            "soap-raw" => (
                self.vcenter.clone(),
                "POST",
                "/sdk".into(),
                rest.into(),
                true,
            ),
            "json" | "json-host" => {
                let mut w = rest.splitn(3, ' ');
                let method = w.next().unwrap();
                let path = w.next().unwrap().to_string();
                let body = w.next().unwrap_or("").to_string();
                let addr = if verb == "json" {
                    &self.vcenter
                } else {
                    &self.host
                };
                let method = if method == "GET" { "GET" } else { "POST" };
                (addr.clone(), method, path, body, false)
            }
            other => panic!("unknown command {other:?}"),
        };
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if soap {
            req.push_str(
                "Content-Type: text/xml; charset=utf-8\r\nSOAPAction: \"urn:vim25/8.0.3.0\"\r\n",
            );
            if let Some(t) = &self.soap_token {
                req.push_str(&format!("Cookie: vmware_soap_session=\"{t}\"\r\n"));
            }
        } else {
            if !body.is_empty() {
                req.push_str("Content-Type: application/json\r\n");
            }
            if let Some(t) = &self.json_token {
                req.push_str(&format!("vmware-api-session-id: {t}\r\n"));
            }
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let raw = String::from_utf8(raw).expect("a UTF-8 response");
        let (head, body) = raw.split_once("\r\n\r\n").expect("a response head");
        let mut lines = head.split("\r\n");
        let mut out = format!("{}\n", lines.next().unwrap());
        for h in lines {
            let (k, v) = h.split_once(':').unwrap();
            let (k, v) = (k.to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "set-cookie" => {
                    let t = v.split('"').nth(1).unwrap().to_string();
                    self.placeholders.push((t.clone(), "<session>".into()));
                    self.soap_token = Some(t);
                }
                "vmware-api-session-id" => {
                    self.placeholders.push((v.to_string(), "<session>".into()));
                    self.json_token = Some(v.to_string());
                }
                "content-type" => {}
                _ => continue,
            }
            out.push_str(&format!("{k}: {v}\n"));
        }
        // A new session's key (UserSession.key, in view ids too) is random, as its token.
        if head.to_ascii_lowercase().contains("set-cookie")
            || head.to_ascii_lowercase().contains("vmware-api-session-id")
        {
            let key =
                [("\"key\":\"", "\""), ("<key>", "</key>")]
                    .iter()
                    .find_map(|(open, close)| {
                        let from = body.find(open)? + open.len();
                        Some(body[from..from + body[from..].find(close)?].to_string())
                    });
            if let Some(k) = key {
                self.placeholders.push((k, "<session-key>".into()));
            }
        }
        // A body is one line (none for 204): a blank line would read as a separator.
        if !body.is_empty() {
            out.push_str(body.trim_end());
            out.push('\n');
        }
        self.normalize(&out)
    }

    /// Writes what differs run to run as placeholders.
    fn normalize(&self, s: &str) -> String {
        let mut s = s.to_string();
        for (from, to) in &self.placeholders {
            s = s.replace(from, to);
        }
        // Download ids: /downloads/<id>/file.
        let mut out = String::with_capacity(s.len());
        let mut rest = s.as_str();
        while let Some(i) = rest.find("/downloads/") {
            out.push_str(&rest[..i + "/downloads/".len()]);
            rest = &rest[i + "/downloads/".len()..];
            let end = rest.find('/').unwrap_or(rest.len());
            out.push_str("<id>");
            rest = &rest[end..];
        }
        out.push_str(rest);
        // A transfer URL's port: `*:PORT`.
        let mut s = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(i) = rest.find("*:") {
            s.push_str(&rest[..i + 2]);
            rest = &rest[i + 2..];
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            s.push_str("<port>");
            rest = &rest[end..];
        }
        s.push_str(rest);
        s
    }
}

/// (lead comments, command, expected output) per command, and trailing comments.
type Blocks = (Vec<(Vec<String>, String, String)>, Vec<String>);

fn parse(text: &str) -> Blocks {
    let mut blocks: Vec<(Vec<String>, String, String)> = Vec::new();
    let mut pending = Vec::new();
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("> ") {
            blocks.push((std::mem::take(&mut pending), cmd.to_string(), String::new()));
        } else if line.starts_with('#') || line.is_empty() {
            pending.push(line.to_string());
        } else {
            let b = blocks.last_mut().expect("output before any command");
            for p in pending.drain(..) {
                b.2.push_str(&p);
                b.2.push('\n');
            }
            b.2.push_str(line);
            b.2.push('\n');
        }
    }
    (blocks, pending)
}

async fn run_script(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let (blocks, trailer) = parse(&text);
    let mut world = World::new().await;
    let mut regenerated = String::new();
    let mut failures = Vec::new();
    for (lead, cmd, expected) in &blocks {
        let got = world.run(cmd).await;
        for l in lead {
            regenerated.push_str(l);
            regenerated.push('\n');
        }
        regenerated.push_str("> ");
        regenerated.push_str(cmd);
        regenerated.push('\n');
        regenerated.push_str(&got);
        if &got != expected {
            failures.push(format!("> {cmd}\n--- expected\n{expected}--- got\n{got}"));
        }
    }
    for l in trailer {
        regenerated.push_str(&l);
        regenerated.push('\n');
    }
    drop(world.fleet);
    if std::env::var_os("UPDATE_GOLDENFILES").is_some() {
        std::fs::write(path, regenerated).unwrap();
        return;
    }
    assert!(
        failures.is_empty(),
        "{}: {} request(s) answered differently (UPDATE_GOLDENFILES=1 regenerates):\n{}",
        path.display(),
        failures.len(),
        failures.join("\n")
    );
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soap_wire() {
    run_script(&script("wire-soap.txt")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_wire() {
    run_script(&script("wire-json.txt")).await;
}

/// Every script in the directory is run by one of the tests above.
#[test]
fn every_wire_script_has_a_test() {
    let mut found: Vec<String> = std::fs::read_dir(script(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("wire-"))
        .collect();
    found.sort();
    assert_eq!(found, ["wire-json.txt", "wire-soap.txt"]);
}
