//! VI/JSON beside SOAP on a vCenter (issue 15): the fault rules and the request trace apply to it
//! as to SOAP, bad and oversized input is refused in its own terms and leaves the server
//! serving, one session works on both wires, and it is offered only where a real vCenter
//! offers it. (The wire bytes themselves are in the golden scripts, `wire_golden.rs`; vim_rs
//! drives it as a client in `ci/vim_rs`.)

use std::sync::Arc;

use esxi_sim::fleet::{Fleet, FleetConfig, Mode};
use esxi_sim::server::faults::{Action, RuleSpec};
use esxi_sim::server::trace::{Filter, Trace};
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const VC_PASS: &str = "Json!vc12";

async fn fleet(profiles: &[(&str, usize)], trace: Option<Arc<Trace>>) -> (Fleet, String) {
    let cfg = FleetConfig {
        mode: Mode::VCenter,
        profiles: profiles.iter().map(|(p, n)| (p.to_string(), *n)).collect(),
        tls: false,
        vcenter_password: VC_PASS.into(),
        trace,
        ..FleetConfig::default()
    };
    let f = Fleet::start(cfg).await.unwrap();
    let addr = f
        .vcenter_url()
        .unwrap()
        .trim_start_matches("http://")
        .trim_end_matches("/sdk")
        .to_string();
    (f, addr)
}

/// One HTTP/1.1 request; the status, the headers (names lower-case) and the body.
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    // A refused body may be answered before it is all sent.
    let _ = s.write_all(body).await;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw).await;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn json(b: &[u8]) -> Json {
    serde_json::from_slice(b)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(b)))
}

const BASE: &str = "/sdk/vim25/8.0.3.0";

async fn login(addr: &str) -> String {
    let (status, h, body) = http(
        addr,
        "POST",
        &format!("{BASE}/SessionManager/SessionManager/Login"),
        &[("Content-Type", "application/json")],
        format!(r#"{{"userName":"administrator@vsphere.local","password":"{VC_PASS}"}}"#)
            .as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    header(&h, "vmware-api-session-id")
        .expect("the session header")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_rules_and_the_trace_apply_to_vi_json_calls() {
    let trace = Arc::new(Trace::new(None).unwrap());
    let (f, addr) = fleet(&[("8.0U3", 2)], Some(trace.clone())).await;
    let rule = f
        .faults()
        .add(RuleSpec {
            host: Some("1".into()),
            method: Some("BackupFirmwareConfiguration".into()),
            object_type: None,
            object_id: None,
            probability: 1.0,
            delay: None,
            max_count: Some(1),
            skip_count: 0,
            action: Action::Fault {
                fault: "HostCommunication".into(),
                message: Some("injected".into()),
                fields: Default::default(),
            },
        })
        .unwrap();
    let token = login(&addr).await;
    let auth = [("vmware-api-session-id", token.as_str())];
    let backup =
        |id: &'static str| format!("{BASE}/HostFirmwareSystem/{id}/BackupFirmwareConfiguration");
    // The rule names host 1 (firmwareSystem-13): host 0's call goes through.
    let (s, _, b) = http(&addr, "POST", &backup("firmwareSystem-12"), &auth, b"").await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    assert!(json(&b).as_str().unwrap().contains("/downloads/"));
    let (s, _, b) = http(&addr, "POST", &backup("firmwareSystem-13"), &auth, b"").await;
    assert_eq!(s, 500);
    let fault = json(&b);
    assert_eq!(fault["_typeName"], "HostCommunication");
    assert_eq!(fault["faultstring"], "injected");
    // max_count 1: the next one goes through.
    let (s, _, _) = http(&addr, "POST", &backup("firmwareSystem-13"), &auth, b"").await;
    assert_eq!(s, 200);

    let all = trace.list(&Filter::default());
    let calls: Vec<_> = all
        .iter()
        .filter(|r| r.method == "BackupFirmwareConfiguration")
        .collect();
    assert_eq!(calls.len(), 3, "{all:?}");
    assert!(calls
        .iter()
        .all(|r| r.kind == "vi-json" && r.endpoint == "vcenter"));
    assert_eq!(
        (
            calls[1].outcome,
            calls[1].fault.as_deref(),
            calls[1].rule,
            calls[1].host
        ),
        ("fault", Some("HostCommunication"), Some(rule.id), Some(1))
    );
    assert_eq!(
        calls[0].user.as_deref(),
        Some("administrator@vsphere.local")
    );
    assert_eq!(
        calls[0].object.as_deref(),
        Some("HostFirmwareSystem:firmwareSystem-12")
    );
    let login = all.iter().find(|r| r.method == "Login").unwrap();
    assert_eq!((login.kind, login.outcome), ("vi-json", "ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_oversized_input_is_refused_and_the_server_serves_on() {
    let (_f, addr) = fleet(&[("8.0U3", 1)], None).await;
    let token = login(&addr).await;
    let auth = [("vmware-api-session-id", token.as_str())];
    let rpe = format!("{BASE}/PropertyCollector/propertyCollector/RetrievePropertiesEx");
    // Deeper than the XML reader allows: a fault, not a stack overflow.
    let deep = format!(
        "{{\"specSet\":{}1{}}}",
        "{\"a\":".repeat(200),
        "}".repeat(200)
    );
    let (s, _, b) = http(&addr, "POST", &rpe, &auth, deep.as_bytes()).await;
    assert_eq!(s, 500);
    assert_eq!(
        json(&b)["_typeName"],
        "InvalidRequest",
        "{}",
        String::from_utf8_lossy(&b)
    );
    // Larger than a SOAP body may be (8 MiB): refused before it is read.
    let big = vec![b' '; (8 << 20) + 1];
    let (s, _, _) = http(&addr, "POST", &rpe, &auth, &big).await;
    assert_eq!(s, 413);
    // Not UTF-8, a bare value, an unknown type: faults in VI/JSON's terms.
    for (body, path, want) in [
        (&b"{\"x\":\"\xff\"}"[..], rpe.clone(), "InvalidRequest"),
        (b"42", rpe.clone(), "InvalidRequest"),
        (
            b"",
            format!("{BASE}/NoSuchType/x/Destroy_Task"),
            "ManagedObjectNotFound",
        ),
    ] {
        let (s, h, b) = http(&addr, "POST", &path, &auth, body).await;
        assert_eq!(
            (s, header(&h, "content-type")),
            (500, Some("application/json"))
        );
        assert_eq!(json(&b)["_typeName"], want, "{path}");
    }
    // Hello: POST only, small bodies only.
    let (s, _, _) = http(&addr, "GET", "/api/vcenter/system?action=hello", &[], b"").await;
    assert_eq!(s, 405);
    let (s, _, _) = http(
        &addr,
        "POST",
        "/api/vcenter/system?action=hello",
        &[],
        &vec![b'x'; 1 << 20],
    )
    .await;
    assert_eq!(s, 413);
    let (s, _, b) = http(
        &addr,
        "PUT",
        &format!("{BASE}/HostSystem/host-12/name"),
        &auth,
        b"",
    )
    .await;
    assert_eq!(s, 405, "{}", String::from_utf8_lossy(&b));
    // Still serving, the session intact.
    let (s, _, b) = http(
        &addr,
        "GET",
        &format!("{BASE}/HostSystem/host-12/name"),
        &auth,
        b"",
    )
    .await;
    assert_eq!((s, json(&b).is_string()), (200, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_serves_both_wires() {
    let (_f, addr) = fleet(&[("8.0U3", 1)], None).await;
    let token = login(&addr).await;
    // The VI/JSON session's id, sent as SOAP's cookie.
    let envelope = "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><RetrieveHardwareUptime xmlns=\"urn:vim25\"><_this type=\"HostSystem\">host-12</_this></RetrieveHardwareUptime></soapenv:Body></soapenv:Envelope>";
    let cookie = format!("vmware_soap_session=\"{token}\"");
    let headers = [("Cookie", cookie.as_str()), ("Content-Type", "text/xml")];
    let soap = || http(&addr, "POST", "/sdk", &headers, envelope.as_bytes());
    let (s, _, b) = soap().await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    // Logged out over JSON: gone for SOAP too.
    let (s, _, _) = http(
        &addr,
        "POST",
        &format!("{BASE}/SessionManager/SessionManager/Logout"),
        &[("vmware-api-session-id", &token)],
        b"",
    )
    .await;
    assert_eq!(s, 204);
    let (s, _, b) = soap().await;
    assert_eq!(s, 500);
    assert!(String::from_utf8_lossy(&b).contains("NotAuthenticated"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_vcenter_of_8_0_u1_or_later_speaks_it() {
    for (profile, served) in [("8.0U1", true), ("8.0GA", false), ("7.0U3", false)] {
        let (_f, addr) = fleet(&[(profile, 1)], None).await;
        let (s, _, b) = http(
            &addr,
            "POST",
            "/api/vcenter/system?action=hello",
            &[("Content-Type", "application/json")],
            br#"{"api_releases":["9.1.0.0","8.0.3.0","8.0.1.0"]}"#,
        )
        .await;
        if served {
            assert_eq!(
                (s, json(&b)["api_release"].as_str()),
                (200, Some("8.0.1.0")),
                "{profile}"
            );
        } else {
            assert_eq!(
                s, 404,
                "{profile}: a client's automatic mode falls back to SOAP"
            );
            let (s, _, _) = http(
                &addr,
                "GET",
                &format!("{BASE}/ServiceInstance/ServiceInstance/content"),
                &[],
                b"",
            )
            .await;
            assert_eq!(s, 404, "{profile}");
        }
    }
}
