//! EventManager and EventHistoryCollector (issue 13): what `govc events`, PowerCLI's
//! `Get-VIEvent` and pyVmomi's `QueryEvents` read. The events are the host model's log in the
//! API's types: maintenance mode, boots and reboots, restores, account lockouts; a host shows
//! those since its last boot, a vCenter all of them, merged, under its own names.

mod common;

use std::net::Ipv4Addr;

use common::*;
use esxi_harness::client::{as_moref, returnval, Client, Trust};
use esxi_sim::api::MoRef;
use esxi_sim::soap::xml::Element;
use esxi_sim_tests::{host_ref, property_collector, start, PASSWORD};

fn event_manager() -> MoRef {
    MoRef::new("EventManager", "ha-eventmgr")
}

/// The event elements of an answer, in the order sent: a method result repeats `returnval`;
/// a property value (`latestPage`) holds `Event` children.
fn event_elements(el: &Element) -> Vec<&Element> {
    if el.child("key").is_some() && el.child("createdTime").is_some() {
        return vec![el];
    }
    el.children.iter().flat_map(event_elements).collect()
}

/// (key, xsi:type or EventEx id, message) of each event in an answer, in the order sent.
fn events(resp: &Element) -> Vec<(i64, String, String)> {
    event_elements(resp)
        .into_iter()
        .map(|e| {
            let ty = e
                .child_text("eventTypeId")
                .map(str::to_string)
                .or_else(|| e.xsi_type.clone())
                .unwrap_or_default();
            (
                e.child_text("key").unwrap().parse().unwrap(),
                ty,
                e.child_text("fullFormattedMessage")
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

async fn query(c: &mut Client, em: &MoRef, filter: &str) -> Vec<(i64, String, String)> {
    let r = c
        .call(em, "QueryEvents", &format!("<filter>{filter}</filter>"))
        .await
        .unwrap();
    events(&r)
}

fn kinds(evs: &[(i64, String, String)]) -> Vec<&str> {
    evs.iter().map(|e| e.1.as_str()).collect()
}

async fn maintenance_cycle(c: &mut Client, host: &MoRef) {
    for m in ["EnterMaintenanceMode_Task", "ExitMaintenanceMode_Task"] {
        let t = call_ref(c, host, m, "<timeout>0</timeout>").await;
        c.wait_task(&t).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_tells_maintenance_and_reboots_and_forgets_at_boot() {
    let ts = start("8.0U3", 71).await;
    let mut c = ts.login().await;
    let sc = c.service_content().await.unwrap();
    assert_eq!(
        as_moref(sc.child("eventManager").unwrap()).unwrap(),
        event_manager()
    );
    assert_eq!(
        as_moref(sc.child("perfManager").unwrap()).unwrap(),
        MoRef::new("PerformanceManager", "ha-perfmgr")
    );
    assert_eq!(
        as_moref(sc.child("setting").unwrap()).unwrap(),
        MoRef::new("OptionManager", "HostAgentSettings")
    );
    assert!(sc.child("customFieldsManager").is_none(), "a host has none");

    maintenance_cycle(&mut c, &host_ref()).await;
    let evs = query(&mut c, &event_manager(), "").await;
    assert_eq!(
        kinds(&evs),
        ["ExitMaintenanceModeEvent", "EnteredMaintenanceModeEvent"],
        "newest first: {evs:?}"
    );
    assert!(evs[0].0 > evs[1].0, "keys grow with time: {evs:?}");
    let name = ts.with_host(|h| h.hostname());
    assert_eq!(
        evs[1].2,
        format!("Host {name} in ha-datacenter has entered maintenance mode")
    );

    // A reboot: logged, then hostd restarts and its history starts again at the boot.
    enter_maintenance(&mut c).await;
    let before = boots(&ts);
    host_task(&mut c, "RebootHost_Task", "<force>false</force>").await;
    wait_down(&ts, before).await;
    let mut c = ts.wait_back(PASSWORD).await;
    let evs = query(&mut c, &event_manager(), "").await;
    assert_eq!(kinds(&evs), ["esx.audit.host.boot"], "{evs:?}");
    assert_eq!(evs[0].2, "Host has booted.");
    // The reboot itself is in the model's log (and a vCenter shows it), not in the new hostd's.
    assert!(ts.with_host(|h| h.events().iter().any(|e| e.kind.name() == "reboot")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_pages_scrolls_and_filters() {
    let ts = start("8.0U3", 72).await;
    let mut c = ts.login().await;
    for _ in 0..6 {
        maintenance_cycle(&mut c, &host_ref()).await;
    }
    let all = query(&mut c, &event_manager(), "").await;
    assert_eq!(all.len(), 12);
    let mut keys: Vec<i64> = all.iter().map(|e| e.0).collect();
    keys.reverse(); // oldest first

    let hc = call_ref(
        &mut c,
        &event_manager(),
        "CreateCollectorForEvents",
        "<filter><entity><entity type=\"HostSystem\">ha-host</entity>\
         <recursion>self</recursion></entity></filter>",
    )
    .await;
    assert_eq!(hc.ty, "EventHistoryCollector");
    c.call(&hc, "SetCollectorPageSize", "<maxCount>5</maxCount>")
        .await
        .unwrap();
    let page = events(
        &c.call(
            &property_collector(),
            "RetrieveProperties",
            &latest_page_spec(&hc),
        )
        .await
        .unwrap(),
    );
    let page_keys: Vec<i64> = page.iter().map(|e| e.0).collect();
    let newest5: Vec<i64> = keys[7..].iter().rev().copied().collect();
    assert_eq!(page_keys, newest5, "latestPage: the newest 5, newest first");

    // The scrollable view starts just before the latest page.
    c.call(&hc, "ResetCollector", "").await.unwrap();
    let read = |r: Element| events(&r).iter().map(|e| e.0).collect::<Vec<i64>>();
    let prev = read(
        c.call(&hc, "ReadPreviousEvents", "<maxCount>3</maxCount>")
            .await
            .unwrap(),
    );
    assert_eq!(prev, keys[4..7]);
    let prev = read(
        c.call(&hc, "ReadPreviousEvents", "<maxCount>100</maxCount>")
            .await
            .unwrap(),
    );
    assert_eq!(prev, keys[..4]);
    let prev = read(
        c.call(&hc, "ReadPreviousEvents", "<maxCount>100</maxCount>")
            .await
            .unwrap(),
    );
    assert!(prev.is_empty(), "at the head: nothing more");
    c.call(&hc, "RewindCollector", "").await.unwrap();
    let next = read(
        c.call(&hc, "ReadNextEvents", "<maxCount>8</maxCount>")
            .await
            .unwrap(),
    );
    assert_eq!(next, keys[..8]);
    let next = read(
        c.call(&hc, "ReadNextEvents", "<maxCount>8</maxCount>")
            .await
            .unwrap(),
    );
    assert_eq!(next, keys[8..]);
    let next = read(
        c.call(&hc, "ReadNextEvents", "<maxCount>8</maxCount>")
            .await
            .unwrap(),
    );
    assert!(next.is_empty());

    // Filters: type, category, time, entity with recursion.
    let exits = query(
        &mut c,
        &event_manager(),
        "<eventTypeId>ExitMaintenanceModeEvent</eventTypeId>",
    )
    .await;
    assert_eq!(exits.len(), 6);
    assert!(kinds(&exits)
        .iter()
        .all(|k| *k == "ExitMaintenanceModeEvent"));
    assert!(
        query(&mut c, &event_manager(), "<category>warning</category>")
            .await
            .is_empty()
    );
    let dc_self = "<entity><entity type=\"Datacenter\">ha-datacenter</entity>\
                   <recursion>self</recursion></entity>";
    assert!(query(&mut c, &event_manager(), dc_self).await.is_empty());
    let dc_all = "<entity><entity type=\"Datacenter\">ha-datacenter</entity>\
                  <recursion>all</recursion></entity>";
    assert_eq!(query(&mut c, &event_manager(), dc_all).await.len(), 12);
    let later = ts
        .with_host(|h| h.now())
        .plus(std::time::Duration::from_secs(1));
    let after = format!("<time><beginTime>{}</beginTime></time>", later.to_rfc3339());
    assert!(query(&mut c, &event_manager(), &after).await.is_empty());
    let since_epoch = "<time><beginTime>2000-01-01T00:00:00.000+01:00</beginTime></time>";
    assert_eq!(query(&mut c, &event_manager(), since_epoch).await.len(), 12);
    let newest2 = query(&mut c, &event_manager(), "<maxCount>2</maxCount>").await;
    assert_eq!(
        newest2.iter().map(|e| e.0).collect::<Vec<_>>(),
        [keys[11], keys[10]]
    );

    // The lockout is a warning (esx.audit.account.locked).
    let mut bad = ts.client();
    for _ in 0..5 {
        let _ = bad.login("root", "wrong-password").await;
    }
    let warned = query(&mut c, &event_manager(), "<category>warning</category>").await;
    assert_eq!(kinds(&warned), ["esx.audit.account.locked"], "{warned:?}");
}

fn latest_page_spec(hc: &MoRef) -> String {
    format!(
        "<specSet><propSet><type>EventHistoryCollector</type><pathSet>latestPage</pathSet></propSet>\
         <objectSet><obj type=\"EventHistoryCollector\">{}</obj></objectSet></specSet>",
        hc.id
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_and_other_sessions_collectors_are_refused() {
    let ts = start("8.0U3", 73).await;
    let mut c = ts.login().await;
    let em = event_manager();
    let cases = [
        ("<entity><entity type=\"HostSystem\">nope</entity></entity>", "ManagedObjectNotFound"),
        ("<entity><entity type=\"HostSystem\">ha-host</entity><recursion>most</recursion></entity>", "InvalidArgument"),
        ("<entity><recursion>all</recursion></entity>", "InvalidRequest"),
        ("<time><beginTime>yesterday</beginTime></time>", "InvalidArgument"),
        ("<maxCount>many</maxCount>", "InvalidRequest"),
    ];
    for (filter, fault) in cases {
        expect_fault(
            c.call(&em, "QueryEvents", &format!("<filter>{filter}</filter>"))
                .await,
            fault,
        );
        expect_fault(
            c.call(
                &em,
                "CreateCollectorForEvents",
                &format!("<filter>{filter}</filter>"),
            )
            .await,
            fault,
        );
    }
    expect_fault(
        c.call(&em, "CreateCollectorForEvents", "").await,
        "InvalidRequest",
    );
    let hc = call_ref(&mut c, &em, "CreateCollectorForEvents", "<filter/>").await;
    for n in ["-1", "1001"] {
        expect_fault(
            c.call(
                &hc,
                "SetCollectorPageSize",
                &format!("<maxCount>{n}</maxCount>"),
            )
            .await,
            "InvalidArgument",
        );
    }
    // Another session cannot see or use it.
    let mut other = ts.login().await;
    expect_fault(
        other
            .call(&hc, "ReadNextEvents", "<maxCount>1</maxCount>")
            .await,
        "ManagedObjectNotFound",
    );
    // 32 per session (EventManager.maxCollector).
    assert_eq!(c.fetch_text(&em, "maxCollector").await.unwrap(), "32");
    for _ in 1..32 {
        call_ref(&mut c, &em, "CreateCollectorForEvents", "<filter/>").await;
    }
    expect_fault(
        c.call(&em, "CreateCollectorForEvents", "<filter/>").await,
        "SystemError",
    );
    c.call(&hc, "DestroyCollector", "").await.unwrap();
    call_ref(&mut c, &em, "CreateCollectorForEvents", "<filter/>").await;
    expect_fault(
        c.call(&hc, "ReadNextEvents", "<maxCount>1</maxCount>")
            .await,
        "ManagedObjectNotFound",
    );
    // Logout ends them all.
    c.call(&session_manager(), "Logout", "").await.unwrap();
    let mut c = ts.login().await;
    for _ in 0..32 {
        call_ref(&mut c, &em, "CreateCollectorForEvents", "<filter/>").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vcenter_merges_its_hosts_events_under_its_names() {
    let fleet = vcenter_fleet(3, Ipv4Addr::new(127, 1, 3, 81)).await;
    let mut c = Client::new(&fleet.vcenter_url().unwrap(), Trust::Any).unwrap();
    c.login("administrator@vsphere.local", "VMware1!")
        .await
        .unwrap();
    let sc = c.service_content().await.unwrap();
    let em = as_moref(sc.child("eventManager").unwrap()).unwrap();
    assert_eq!(em, MoRef::new("EventManager", "EventManager"));
    assert!(sc.child("customFieldsManager").is_some());
    let setting = as_moref(sc.child("setting").unwrap()).unwrap();
    let r = c
        .call(&setting, "QueryOptions", "<name>event.maxAge</name>")
        .await
        .unwrap();
    assert_eq!(returnval(&r).unwrap().child_text("value"), Some("30"));

    // The fleet's clock stands still: each task runs when it is moved on.
    for h in ["host-14", "host-12"] {
        for m in ["EnterMaintenanceMode_Task", "ExitMaintenanceMode_Task"] {
            let host = MoRef::new("HostSystem", h);
            call_ref(&mut c, &host, m, "<timeout>0</timeout>").await;
            fleet.advance(std::time::Duration::from_secs(1));
        }
    }
    let evs = query(&mut c, &em, "").await;
    assert_eq!(evs.len(), 4, "{evs:?}");
    let keys: Vec<i64> = evs.iter().map(|e| e.0).collect();
    assert!(
        keys.windows(2).all(|w| w[0] > w[1]),
        "unique, newest first: {keys:?}"
    );
    assert_eq!(
        evs[0].2,
        "Host 127.1.3.81 in Datacenter has exited maintenance mode"
    );
    assert_eq!(
        evs[3].2,
        "Host 127.1.3.83 in Datacenter has entered maintenance mode"
    );
    let one =
        "<entity><entity type=\"HostSystem\">host-14</entity><recursion>self</recursion></entity>";
    let only = query(&mut c, &em, one).await;
    assert_eq!(only.len(), 2);
    assert!(
        only.iter().all(|e| e.2.starts_with("Host 127.1.3.83 ")),
        "{only:?}"
    );
    // The cluster is host-14's parent: children of it reach it.
    let cluster = "<entity><entity type=\"ClusterComputeResource\">domain-c8</entity>\
                   <recursion>children</recursion></entity>";
    assert_eq!(query(&mut c, &em, cluster).await.len(), 4);
    // The vCenter's event names the host by its vCenter reference.
    let r = c
        .call(&em, "QueryEvents", &format!("<filter>{one}</filter>"))
        .await
        .unwrap();
    let first = r.all("returnval").next().unwrap();
    let host = first.child("host").unwrap().child("host").unwrap();
    assert_eq!(as_moref(host).unwrap(), MoRef::new("HostSystem", "host-14"));
}
