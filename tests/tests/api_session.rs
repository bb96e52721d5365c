//! SessionManager and ServiceInstance over the wire: anonymous calls, Login/Logout, the cookie,
//! SessionIsActive, currentSession, idle timeout; and malformed / hostile SOAP requests.

mod common;

use std::time::Duration;

use common::*;
use esxi_harness::client::{as_moref, returnval, ClientError};
use esxi_sim::api::MoRef;
use esxi_sim::soap::xml::Element;
use esxi_sim_tests::{host, host_ref, start, start_with, PASSWORD};
use hyper::{Method, StatusCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_content_needs_no_session_and_describes_the_host() {
    let ts = start("6.7U3", 1).await;
    let mut c = ts.client();
    let sc = c.service_content().await.unwrap();
    let about = sc.child("about").unwrap();
    assert_eq!(about.child_text("name"), Some("VMware ESXi"));
    assert_eq!(
        about.child_text("fullName"),
        Some("VMware ESXi 6.7.0 build-14320388")
    );
    assert_eq!(about.child_text("apiType"), Some("HostAgent"));
    assert_eq!(about.child_text("productLineId"), Some("embeddedEsx"));
    assert_eq!(about.child_text("apiVersion"), Some("6.7.3"));
    assert_eq!(about.child_text("version"), Some("6.7.0"));
    assert_eq!(about.child_text("build"), Some("14320388"));
    assert_eq!(about.child_text("vendor"), Some("VMware, Inc."));
    assert_eq!(about.child_text("osType"), Some("vmnix-x86"));
    for (field, ty, id) in [
        ("rootFolder", "Folder", "ha-folder-root"),
        (
            "propertyCollector",
            "PropertyCollector",
            "ha-property-collector",
        ),
        ("sessionManager", "SessionManager", "ha-sessionmgr"),
        ("viewManager", "ViewManager", "ViewManager"),
        ("taskManager", "TaskManager", "ha-taskmgr"),
        (
            "accountManager",
            "HostLocalAccountManager",
            "ha-localacctmgr",
        ),
    ] {
        let el = sc.child(field).unwrap_or_else(|| panic!("no {field}"));
        assert_eq!(el.attr("type"), Some(ty), "{field}");
        assert_eq!(el.text.trim(), id, "{field}");
    }
    assert!(c.cookie().is_none(), "no cookie before Login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn about_follows_the_profile() {
    let ts = start("8.0U3", 2).await;
    let about = ts.client().service_content().await.unwrap();
    let about = about.child("about").unwrap();
    assert_eq!(
        about.child_text("fullName"),
        Some("VMware ESXi 8.0.3 build-24022510")
    );
    assert_eq!(about.child_text("apiVersion"), Some("8.0.3.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_time_needs_no_session() {
    let ts = start("6.7U3", 3).await;
    let mut c = ts.client();
    let r = c
        .call(
            &MoRef::new("ServiceInstance", "ServiceInstance"),
            "CurrentTime",
            "",
        )
        .await
        .unwrap();
    let t = returnval(&r).unwrap().text;
    // The model starts at 2024-01-01T00:00:00Z and the test runs for well under a minute.
    assert!(t.starts_with("2024-01-01T00:0"), "{t}");
    assert!(t.ends_with('Z'), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_calls_without_a_session_are_not_authenticated() {
    let ts = start("6.7U3", 4).await;
    let mut c = ts.client();
    let e = expect_fault(c.fetch(&host_ref(), "name").await, "NotAuthenticated");
    assert_eq!(
        e.field("privilegeId").as_deref(),
        Some("System.View"),
        "{e:?}"
    );
    expect_fault(
        c.call(
            &esxi_sim_tests::firmware(),
            "BackupFirmwareConfiguration",
            "",
        )
        .await,
        "NotAuthenticated",
    );
    expect_fault(c.logout().await, "NotAuthenticated");
    // A made-up cookie is no session either.
    c.set_cookie(Some(format!("vmware_soap_session=\"{}\"", "a".repeat(40))));
    expect_fault(c.fetch(&host_ref(), "name").await, "NotAuthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_password_is_invalid_login_with_hostds_words() {
    let ts = start("6.7U3", 5).await;
    let mut c = ts.client();
    let e = expect_fault(c.login("root", "wrong").await, "InvalidLogin");
    match &e {
        ClientError::Fault { message, .. } => assert_eq!(
            message,
            "Cannot complete login due to an incorrect user name or password."
        ),
        _ => unreachable!(),
    }
    expect_fault(c.login("nobody", PASSWORD).await, "InvalidLogin");
    assert!(c.cookie().is_none(), "a failed login sets no cookie");
}

fn check_cookie(cookie: &str, secure: bool) -> String {
    let rest = cookie
        .strip_prefix("vmware_soap_session=\"")
        .unwrap_or_else(|| panic!("cookie {cookie}"));
    let (token, attrs) = rest.split_at(40);
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{cookie}"
    );
    let want = if secure {
        "\"; Path=/; HttpOnly; Secure;"
    } else {
        "\"; Path=/; HttpOnly;"
    };
    assert_eq!(attrs, want, "{cookie}");
    token.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_the_cookie_and_it_works_echoed_verbatim_or_bare() {
    let ts = start("6.7U3", 6).await;
    let mut c = ts.client();
    let us = c.login("root", PASSWORD).await.unwrap();
    assert_eq!(us.child_text("userName"), Some("root"));
    let cookie = c.cookie().unwrap().to_string();
    let token = check_cookie(&cookie, true);
    // The client echoes the whole Set-Cookie value (attributes included), as pyVmomi does.
    assert_eq!(
        c.fetch_text(&host_ref(), "runtime.connectionState")
            .await
            .unwrap(),
        "connected"
    );
    // A second client with only `name=value` (what curl and govmomi send) shares the session.
    let mut bare = ts.client();
    bare.set_cookie(Some(format!("vmware_soap_session={token}")));
    assert_eq!(
        bare.fetch_text(&host_ref(), "runtime.connectionState")
            .await
            .unwrap(),
        "connected"
    );
    // Other cookies around it do not matter.
    let mut mixed = ts.client();
    mixed.set_cookie(Some(format!("a=b; vmware_soap_session=\"{token}\"; c=d")));
    assert!(mixed.fetch(&host_ref(), "name").await.unwrap().is_some());
    // Two logins give two different tokens.
    let mut other = ts.client();
    other.login("root", PASSWORD).await.unwrap();
    assert_ne!(other.cookie().unwrap(), cookie);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_is_active_and_current_session() {
    let ts = start("6.7U3", 7).await;
    let mut c = ts.client();
    let us = c.login("root", PASSWORD).await.unwrap();
    let key = us.child_text("key").unwrap().to_string();
    assert!(key.starts_with("52"), "{key}");
    let active =
        |id: &str, user: &str| format!("<sessionID>{id}</sessionID><userName>{user}</userName>");
    let sm = session_manager();
    assert_eq!(
        call_text(&mut c, &sm, "SessionIsActive", &active(&key, "root"))
            .await
            .unwrap(),
        "true"
    );
    assert_eq!(
        call_text(&mut c, &sm, "SessionIsActive", &active(&key, "daemon"))
            .await
            .unwrap(),
        "false"
    );
    assert_eq!(
        call_text(&mut c, &sm, "SessionIsActive", &active("52nope", "root"))
            .await
            .unwrap(),
        "false"
    );
    let cur = c.fetch(&sm, "currentSession").await.unwrap().unwrap();
    assert_eq!(cur.xsi_type.as_deref(), Some("UserSession"));
    assert_eq!(cur.child_text("userName"), Some("root"));
    assert_eq!(cur.child_text("key"), Some(key.as_str()));
    assert_eq!(cur.child_text("fullName"), Some("Administrator"));

    // Another session is listed, and SessionIsActive sees it from here.
    let mut other = ts.client();
    let other_key = other
        .login("root", PASSWORD)
        .await
        .unwrap()
        .child_text("key")
        .unwrap()
        .to_string();
    let list = c.fetch(&sm, "sessionList").await.unwrap().unwrap();
    assert_eq!(list.children.len(), 2);
    other.logout().await.unwrap();
    assert_eq!(
        call_text(&mut c, &sm, "SessionIsActive", &active(&other_key, "root"))
            .await
            .unwrap(),
        "false"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session() {
    let ts = start("6.7U3", 8).await;
    let mut c = ts.login().await;
    let cookie = c.cookie().unwrap().to_string();
    c.fetch(&host_ref(), "name").await.unwrap();
    c.logout().await.unwrap();
    expect_fault(c.fetch(&host_ref(), "name").await, "NotAuthenticated");
    // The old cookie from another connection is dead too.
    let mut again = ts.client();
    again.set_cookie(Some(cookie));
    expect_fault(again.fetch(&host_ref(), "name").await, "NotAuthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_time_out_on_the_virtual_clock() {
    let ts = start_with(host("6.7U3", 9), |cfg| {
        cfg.vim.session_timeout = Duration::from_secs(60);
    })
    .await;
    let mut c = ts.login().await;
    // Activity refreshes the idle timer: 2 × 40 s with a call in between is fine.
    ts.skip(Duration::from_secs(40));
    c.fetch(&host_ref(), "name").await.unwrap();
    ts.skip(Duration::from_secs(40));
    c.fetch(&host_ref(), "name").await.unwrap();
    ts.skip(Duration::from_secs(61));
    expect_fault(c.fetch(&host_ref(), "name").await, "NotAuthenticated");
    // And it stays gone.
    expect_fault(c.fetch(&host_ref(), "name").await, "NotAuthenticated");
    // A new login works.
    c.login("root", PASSWORD).await.unwrap();
    c.fetch(&host_ref(), "name").await.unwrap();
}

// ---- malformed input ------------------------------------------------------------------------

/// Posts raw bytes to /sdk; returns the HTTP status and body.
async fn raw_post(c: &mut esxi_harness::client::Client, body: Vec<u8>) -> (StatusCode, String) {
    let r = c
        .http(
            Method::POST,
            "/sdk",
            &[("content-type", "text/xml; charset=utf-8".into())],
            body,
        )
        .await
        .unwrap();
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_invalid_request_faults() {
    let ts = start("6.7U3", 10).await;
    let mut c = ts.login().await;
    let bomb = concat!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">",
        "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">",
        "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>",
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">",
        "<soapenv:Body><Fetch xmlns=\"urn:vim25\"><_this type=\"HostSystem\">ha-host</_this>",
        "<prop>&lol3;</prop></Fetch></soapenv:Body></soapenv:Envelope>"
    );
    let full = envelope(
        "<Fetch xmlns=\"urn:vim25\"><_this type=\"HostSystem\">ha-host</_this><prop>name</prop></Fetch>",
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"this is not XML at all \x01\x02".to_vec()),
        ("binary", vec![0xff, 0xfe, 0x00, 0x80]),
        ("empty", Vec::new()),
        ("truncated", full[..full.len() / 2].to_vec()),
        (
            "wrong namespace",
            envelope("<Fetch xmlns=\"urn:vim24\"><_this type=\"HostSystem\">ha-host</_this><prop>name</prop></Fetch>"),
        ),
        (
            "no namespace",
            envelope("<Fetch><_this type=\"HostSystem\">ha-host</_this><prop>name</prop></Fetch>"),
        ),
        (
            "missing _this",
            envelope("<Fetch xmlns=\"urn:vim25\"><prop>name</prop></Fetch>"),
        ),
        (
            "_this without type",
            envelope("<Fetch xmlns=\"urn:vim25\"><_this>ha-host</_this><prop>name</prop></Fetch>"),
        ),
        ("entity bomb", bomb.as_bytes().to_vec()),
        (
            "not an envelope",
            b"<Fetch xmlns=\"urn:vim25\"><_this type=\"HostSystem\">ha-host</_this></Fetch>"
                .to_vec(),
        ),
        ("deep nesting", envelope(&"<a>".repeat(200))),
    ];
    for (what, body) in cases {
        let (status, text) = raw_post(&mut c, body.clone()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{what}: {text}");
        assert!(
            text.contains("<faultcode>ServerFaultCode</faultcode>"),
            "{what}: {text}"
        );
        let e = expect_fault(c.post_soap(body).await, "InvalidRequest");
        assert!(!e.to_string().is_empty());
        // The server still answers, on the same session.
        assert!(
            !c.fetch_text(&host_ref(), "name").await.unwrap().is_empty(),
            "after {what}"
        );
    }
    // The well-formed version of the same call works.
    let ok = c.post_soap(full).await.unwrap();
    assert_eq!(ok.name, "FetchResponse");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_method_and_unknown_object() {
    let ts = start("6.7U3", 11).await;
    let mut c = ts.login().await;
    let e = expect_fault(
        c.call(&host_ref(), "FlyToTheMoon", "").await,
        "MethodNotFound",
    );
    assert_eq!(e.field("method").as_deref(), Some("FlyToTheMoon"));
    expect_fault(
        c.call(
            &esxi_sim_tests::firmware(),
            "EnterMaintenanceMode_Task",
            "<timeout>0</timeout>",
        )
        .await,
        "MethodNotFound",
    );
    for obj in [
        MoRef::new("HostSystem", "host-16"),
        MoRef::new("Folder", "ha-host"),
        MoRef::new("Task", "haTask-nope"),
        MoRef::new("Gizmo", "ha-host"),
    ] {
        let e = expect_fault(c.fetch(&obj, "name").await, "ManagedObjectNotFound");
        assert_eq!(e.field("obj").as_deref(), Some(obj.id.as_str()), "{obj}");
    }
    // A required parameter missing is InvalidRequest, not a crash.
    expect_fault(c.call(&host_ref(), "Fetch", "").await, "InvalidRequest");
    expect_fault(
        c.call(&host_ref(), "RebootHost_Task", "").await,
        "InvalidRequest",
    );
    expect_fault(
        c.call(&host_ref(), "RebootHost_Task", "<force>maybe</force>")
            .await,
        "InvalidRequest",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413() {
    let ts = start_with(host("6.7U3", 12), |cfg| cfg.max_soap_body = 4096).await;
    let mut c = ts.client();
    let pad = "x".repeat(8192);
    let body = envelope(&format!(
        "<RetrieveServiceContent xmlns=\"urn:vim25\"><_this type=\"ServiceInstance\">ServiceInstance</_this><!--{pad}--></RetrieveServiceContent>"
    ));
    match c.post_soap(body).await {
        Err(ClientError::Http(s, _)) => assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE),
        other => panic!("expected HTTP 413, got {other:?}"),
    }
    // Below the limit it is answered.
    c.service_content().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_paths_and_methods() {
    let ts = start("6.7U3", 13).await;
    let mut c = ts.client();
    assert_eq!(c.get("/nope").await.unwrap().status, StatusCode::NOT_FOUND);
    assert_eq!(c.get("/").await.unwrap().status, StatusCode::NOT_FOUND);
    assert_eq!(
        c.get("/sdk").await.unwrap().status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let r = c
        .http(
            Method::DELETE,
            "/sdk/vimServiceVersions.xml",
            &[],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = c
        .http(Method::POST, "/downloads/x/y", &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    // The connection is still good for SOAP.
    c.service_content().await.unwrap();
}

fn versions(doc: &[u8]) -> (String, Vec<String>) {
    let root = esxi_sim::soap::xml::parse(doc).unwrap();
    assert_eq!(root.name, "namespaces");
    assert_eq!(root.attr("version"), Some("1.0"));
    let ns = root.child("namespace").unwrap();
    assert_eq!(ns.child_text("name"), Some("urn:vim25"));
    let prior = ns
        .child("priorVersions")
        .unwrap()
        .all("version")
        .map(|v| v.text.trim().to_string())
        .collect();
    (ns.child_text("version").unwrap().to_string(), prior)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vim_service_versions_per_profile() {
    let ts = start("6.7U3", 14).await;
    let r = ts
        .client()
        .get("/sdk/vimServiceVersions.xml")
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    let ct = r.headers.get("content-type").unwrap().to_str().unwrap();
    assert!(ct.contains("xml"), "{ct}");
    let (v, prior) = versions(&r.body);
    assert_eq!(v, "6.7.3");
    for want in ["6.7", "6.5", "6.0", "5.5", "5.1", "5.0", "4.1", "4.0"] {
        assert!(prior.iter().any(|p| p == want), "{want} in {prior:?}");
    }
    assert!(!prior.contains(&"6.7.3".to_string()));

    let ts8 = start("8.0U3", 14).await;
    let r = ts8
        .client()
        .get("/sdk/vimServiceVersions.xml")
        .await
        .unwrap();
    let (v, prior) = versions(&r.body);
    assert_eq!(v, "8.0.3.0");
    assert!(prior.iter().any(|p| p == "8.0.2.0"), "{prior:?}");
    assert!(prior.iter().any(|p| p == "6.7.3"), "{prior:?}");
}

/// A client with an expired or foreign cookie learns it must log in again by reading
/// `currentSession`: without a session RetrieveProperties(Ex) answer, every property asked is
/// missing with NotAuthenticated, and nothing is read or traversed (govc's session cache
/// depends on it; see `property_collector::anonymous`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieve_without_a_session_reads_nothing_and_says_why() {
    let ts = start("8.0U3", 5).await;
    let mut c = ts.client();
    c.set_cookie(Some(format!("vmware_soap_session=\"{}\"", "b".repeat(40))));
    let pc = esxi_sim_tests::property_collector();
    let spec = "<specSet><propSet><type>SessionManager</type><pathSet>currentSession</pathSet>\
        <pathSet>defaultLocale</pathSet></propSet><propSet><type>Folder</type>\
        <pathSet>name</pathSet></propSet><propSet><type>HostSystem</type><pathSet>name</pathSet>\
        </propSet><objectSet><obj type=\"SessionManager\">ha-sessionmgr</obj></objectSet>\
        <objectSet><obj type=\"Folder\">ha-folder-root</obj><selectSet \
        xsi:type=\"TraversalSpec\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
        <type>Folder</type><path>childEntity</path><skip>false</skip></selectSet></objectSet>\
        </specSet>";
    for method in ["RetrieveProperties", "RetrievePropertiesEx"] {
        let body = match method {
            "RetrievePropertiesEx" => format!("{spec}<options/>"),
            _ => spec.to_string(),
        };
        let r = c.call(&pc, method, &body).await.unwrap();
        let ex = returnval(&r).unwrap();
        let contents: Vec<&Element> = match method {
            "RetrievePropertiesEx" => ex.all("objects").collect(),
            _ => r.all("returnval").collect(),
        };
        let seen: Vec<(String, Vec<String>)> = contents
            .iter()
            .map(|oc| {
                assert!(oc.child("propSet").is_none(), "{method}: read {oc:?}");
                let missing = oc
                    .all("missingSet")
                    .map(|m| {
                        let f = m.child("fault").and_then(|f| f.child("fault")).unwrap();
                        assert_eq!(f.xsi_type.as_deref(), Some("NotAuthenticated"), "{m:?}");
                        assert_eq!(f.child_text("privilegeId"), Some("System.Read"));
                        m.child_text("path").unwrap().to_string()
                    })
                    .collect();
                (as_moref(oc.child("obj").unwrap()).unwrap().id, missing)
            })
            .collect();
        // The start objects only: the traversal to the datacenter (and on) is not followed.
        assert_eq!(
            seen,
            [
                (
                    "ha-sessionmgr".to_string(),
                    vec!["currentSession".to_string(), "defaultLocale".to_string()]
                ),
                ("ha-folder-root".to_string(), vec!["name".to_string()]),
            ],
            "{method}"
        );
    }
    // Other PropertyCollector calls still need a session.
    expect_fault(
        c.call(&pc, "ContinueRetrievePropertiesEx", "<token>x</token>")
            .await,
        "NotAuthenticated",
    );
    // Logged in, currentSession is there.
    let mut c = ts.login().await;
    let r = c
        .call(
            &pc,
            "RetrieveProperties",
            &spec.replace("<pathSet>defaultLocale</pathSet>", ""),
        )
        .await
        .unwrap();
    let first = r.all("returnval").next().unwrap();
    assert!(first.child("missingSet").is_none(), "{first:?}");
    assert!(first.child("propSet").is_some());
}

fn locked_events(ts: &esxi_sim_tests::TestServer) -> Vec<String> {
    ts.with_host(|h| {
        h.events()
            .iter()
            .filter(|e| e.kind.name() == "account-locked")
            .map(|e| e.kind.to_string())
            .collect()
    })
}

/// Facts section 7: from 6.5, 5 failed logins lock the account for 900 s, root included; while
/// locked the right password fails as a wrong one does; a success clears the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failed_logins_lock_root_for_fifteen_minutes() {
    let ts = start("6.7U3", 6).await;
    let mut c = ts.client();
    // Four failures and a success: the count starts again.
    for _ in 0..4 {
        expect_fault(c.login("root", "wrong").await, "InvalidLogin");
    }
    c.login("root", PASSWORD).await.unwrap();
    c.logout().await.unwrap();
    for _ in 0..4 {
        expect_fault(c.login("root", "wrong").await, "InvalidLogin");
    }
    c.login("root", PASSWORD).await.unwrap();
    c.logout().await.unwrap();
    assert!(locked_events(&ts).is_empty());
    // Five in a row lock it: the right password then fails with the same fault and words.
    for _ in 0..5 {
        expect_fault(c.login("root", "wrong").await, "InvalidLogin");
    }
    assert_eq!(
        locked_events(&ts),
        [
            "Remote access for ESXi local user account 'root' has been locked for 900 seconds \
          after 5 failed login attempts."
        ]
    );
    let e = expect_fault(c.login("root", PASSWORD).await, "InvalidLogin");
    assert!(
        matches!(&e, ClientError::Fault { message, .. } if message == "Cannot complete login due to an incorrect user name or password."),
        "{e:?}"
    );
    // The upload's Basic auth is the same account.
    let put = c
        .put(
            "/tmp/configBundle.tgz",
            b"x".to_vec(),
            Some(("root", PASSWORD)),
        )
        .await
        .unwrap();
    assert_eq!(put.status, StatusCode::UNAUTHORIZED);
    ts.skip(Duration::from_secs(899));
    expect_fault(c.login("root", PASSWORD).await, "InvalidLogin");
    ts.skip(Duration::from_secs(1));
    c.login("root", PASSWORD).await.unwrap();
}

/// `Security.AccountLockFailures = 0` disables locking; 6.0's defaults are 10 and 120 s; before
/// 6.0 there is no lockout and no such option.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_follows_the_option_and_the_release() {
    let ts = start("6.7U3", 7).await;
    let mut admin = ts.login().await;
    admin
        .call(
            &esxi_sim_tests::options(),
            "UpdateOptions",
            &long_option("Security.AccountLockFailures", 0),
        )
        .await
        .unwrap();
    let mut c = ts.client();
    for _ in 0..12 {
        expect_fault(c.login("root", "wrong").await, "InvalidLogin");
    }
    c.login("root", PASSWORD).await.unwrap();

    let ts = start("6.0U3", 8).await;
    let mut admin = ts.login().await;
    assert_eq!(
        query_option(&mut admin, "Security.AccountLockFailures").await,
        "10"
    );
    assert_eq!(
        query_option(&mut admin, "Security.AccountUnlockTime").await,
        "120"
    );
    let mut c = ts.client();
    for _ in 0..9 {
        expect_fault(c.login("root", "wrong").await, "InvalidLogin");
    }
    c.login("root", PASSWORD).await.unwrap();
    c.logout().await.unwrap();
    for _ in 0..10 {
        expect_fault(c.login("root", "wrong").await, "InvalidLogin");
    }
    expect_fault(c.login("root", PASSWORD).await, "InvalidLogin");
    ts.skip(Duration::from_secs(120));
    c.login("root", PASSWORD).await.unwrap();

    let ts = start("5.5GA", 9).await;
    let mut c = ts.client();
    for _ in 0..20 {
        expect_fault(c.login("root", "wrong").await, "InvalidLogin");
    }
    c.login("root", PASSWORD).await.unwrap();
    expect_fault(
        c.call(
            &esxi_sim_tests::options(),
            "QueryOptions",
            "<name>Security.AccountLockFailures</name>",
        )
        .await,
        "InvalidName",
    );
    assert!(locked_events(&ts).is_empty());
}

/// hostd keeps the tally in memory: a reboot unlocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_clears_the_lockout() {
    let ts = start("8.0U3", 10).await;
    let mut c = ts.client();
    for _ in 0..5 {
        expect_fault(c.login("root", "wrong").await, "InvalidLogin");
    }
    expect_fault(c.login("root", PASSWORD).await, "InvalidLogin");
    ts.with_host(|h| {
        h.crash().unwrap();
        h.power_on().unwrap();
        h.wait_until_running();
    });
    c.login("root", PASSWORD).await.unwrap();
}
