//! TaskManager.CreateCollectorForTasks and TaskHistoryCollector (issue 13's task history): the
//! latest page, scrolling back and forth, and TaskFilterSpec's state, entity and time, on a host
//! and merged on a vCenter.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::*;
use esxi_harness::client::{Client, Trust};
use esxi_sim::api::MoRef;
use esxi_sim::soap::xml::Element;
use esxi_sim_tests::{host_ref, start};

/// (key, state, entityName) of each TaskInfo in an answer, in order.
fn infos(el: &Element) -> Vec<(String, String, String)> {
    if el.child("key").is_some() && el.child("queueTime").is_some() {
        let t = |n| el.child_text(n).unwrap_or("").to_string();
        return vec![(t("key"), t("state"), t("entityName"))];
    }
    el.children.iter().flat_map(infos).collect()
}

async fn create(c: &mut Client, tm: &MoRef, filter: &str) -> MoRef {
    call_ref(
        c,
        tm,
        "CreateCollectorForTasks",
        &format!("<filter>{filter}</filter>"),
    )
    .await
}

async fn read(c: &mut Client, hc: &MoRef, method: &str, n: u32) -> Vec<(String, String, String)> {
    infos(
        &c.call(hc, method, &format!("<maxCount>{n}</maxCount>"))
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_task_history_pages_scrolls_and_filters() {
    let ts = start("8.0U3", 81).await;
    let mut c = ts.login().await;
    let tm = task_manager();
    for _ in 0..3 {
        enter_maintenance(&mut c).await;
        let t = host_task(&mut c, "ExitMaintenanceMode_Task", "<timeout>0</timeout>").await;
        c.wait_task(&t).await.unwrap();
    }
    // A task that fails: exit maintenance mode when not in it.
    let t = host_task(&mut c, "ExitMaintenanceMode_Task", "<timeout>0</timeout>").await;
    let _ = c.wait_task(&t).await;

    let all = create(&mut c, &tm, "").await;
    c.call(&all, "RewindCollector", "").await.unwrap();
    let every = read(&mut c, &all, "ReadNextTasks", 100).await;
    assert_eq!(every.len(), 7, "{every:?}");
    assert_eq!(every[6].0, t.id, "oldest first, the failed one last");
    assert_eq!(every[6].1, "error");

    c.call(&all, "SetCollectorPageSize", "<maxCount>2</maxCount>")
        .await
        .unwrap();
    let page = infos(&c.fetch(&all, "latestPage").await.unwrap().unwrap());
    assert_eq!(
        page.iter().map(|p| &p.0).collect::<Vec<_>>(),
        [&every[6].0, &every[5].0],
        "newest first"
    );
    c.call(&all, "ResetCollector", "").await.unwrap();
    let back = read(&mut c, &all, "ReadPreviousTasks", 3).await;
    assert_eq!(back, every[2..5]);

    let failed = create(&mut c, &tm, "<state>error</state>").await;
    c.call(&failed, "RewindCollector", "").await.unwrap();
    let errs = read(&mut c, &failed, "ReadNextTasks", 100).await;
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].0, t.id);

    let on_host = "<entity><entity type=\"HostSystem\">ha-host</entity>\
                   <recursion>self</recursion></entity>";
    let hc = create(&mut c, &tm, on_host).await;
    c.call(&hc, "RewindCollector", "").await.unwrap();
    assert_eq!(read(&mut c, &hc, "ReadNextTasks", 100).await.len(), 7);
    let later = ts
        .with_host(|h| h.now())
        .plus(Duration::from_secs(60))
        .to_rfc3339();
    let future =
        format!("<time><timeType>completedTime</timeType><beginTime>{later}</beginTime></time>");
    let none = create(&mut c, &tm, &future).await;
    c.call(&none, "RewindCollector", "").await.unwrap();
    assert!(read(&mut c, &none, "ReadNextTasks", 100).await.is_empty());

    for (filter, fault) in [
        ("<state>finished</state>", "InvalidArgument"),
        (
            "<time><timeType>someTime</timeType></time>",
            "InvalidArgument",
        ),
        (
            "<entity><entity type=\"HostSystem\">nope</entity></entity>",
            "ManagedObjectNotFound",
        ),
    ] {
        expect_fault(
            c.call(
                &tm,
                "CreateCollectorForTasks",
                &format!("<filter>{filter}</filter>"),
            )
            .await,
            fault,
        );
    }
    // Another session cannot read this one's collector.
    let mut other = ts.login().await;
    expect_fault(
        other
            .call(&all, "ReadNextTasks", "<maxCount>1</maxCount>")
            .await,
        "ManagedObjectNotFound",
    );
    let _ = host_ref();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vcenters_task_history_merges_its_hosts() {
    let fleet = vcenter_fleet(3, Ipv4Addr::new(127, 1, 3, 91)).await;
    let mut c = Client::new(&fleet.vcenter_url().unwrap(), Trust::Any).unwrap();
    c.login("administrator@vsphere.local", "VMware1!")
        .await
        .unwrap();
    let tm = MoRef::new("TaskManager", "TaskManager");
    for h in ["host-14", "host-12", "host-14"] {
        let m = if fleet_in_mm(&mut c, h).await {
            "ExitMaintenanceMode_Task"
        } else {
            "EnterMaintenanceMode_Task"
        };
        call_ref(
            &mut c,
            &MoRef::new("HostSystem", h),
            m,
            "<timeout>0</timeout>",
        )
        .await;
        fleet.advance(Duration::from_secs(1));
    }
    let hc = create(&mut c, &tm, "").await;
    c.call(&hc, "RewindCollector", "").await.unwrap();
    let all = read(&mut c, &hc, "ReadNextTasks", 100).await;
    let names: Vec<&str> = all.iter().map(|t| t.2.as_str()).collect();
    assert_eq!(names, ["127.1.3.93", "127.1.3.91", "127.1.3.93"], "{all:?}");
    assert!(
        all.iter().all(|t| t.0.starts_with("task-")),
        "vCenter ids: {all:?}"
    );
    let one = "<entity><entity type=\"HostSystem\">host-14</entity>\
               <recursion>self</recursion></entity>";
    let hc = create(&mut c, &tm, one).await;
    c.call(&hc, "RewindCollector", "").await.unwrap();
    assert_eq!(read(&mut c, &hc, "ReadNextTasks", 100).await.len(), 2);
}

async fn fleet_in_mm(c: &mut Client, h: &str) -> bool {
    c.fetch_text(&MoRef::new("HostSystem", h), "runtime.inMaintenanceMode")
        .await
        .unwrap()
        == "true"
}
