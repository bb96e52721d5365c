//! The ServiceContent's account and diagnostic managers on the wire (issue 13): UserDirectory
//! (what Ansible's `vmware_local_user_info` lists), AuthorizationManager (roles and
//! permissions: `govc role.ls`, `permissions.ls`, `vmware_object_role_permission`),
//! DiagnosticManager (`govc logs`) and LicenseManager (`govc license.ls`), on a host and on a
//! vCenter. That permissions are configuration a bundle carries is proven on the model
//! (`host::permissions`' tests); here, what clients send and read.

mod common;

use std::net::Ipv4Addr;

use common::*;
use esxi_harness::client::{as_moref, Client, Trust};
use esxi_sim::api::MoRef;
use esxi_sim::soap::xml::Element;
use esxi_sim_tests::{account_manager, host_ref, start};

fn auth() -> MoRef {
    MoRef::new("AuthorizationManager", "ha-authmgr")
}
fn users() -> MoRef {
    MoRef::new("UserDirectory", "ha-user-directory")
}
fn diag() -> MoRef {
    MoRef::new("DiagnosticManager", "ha-diagnosticmgr")
}

fn texts<'a>(el: &'a Element, child: &str) -> Vec<&'a str> {
    el.all("returnval")
        .filter_map(|r| r.child_text(child))
        .collect()
}

/// (principal, roleId) of each Permission in an answer.
fn permissions(el: &Element) -> Vec<(String, i32)> {
    el.all("returnval")
        .map(|p| {
            (
                p.child_text("principal").unwrap().to_string(),
                p.child_text("roleId").unwrap().parse().unwrap(),
            )
        })
        .collect()
}

fn search(find: &str, exact: bool, users: bool, groups: bool) -> String {
    format!(
        "<searchStr>{find}</searchStr><exactMatch>{exact}</exactMatch>\
         <findUsers>{users}</findUsers><findGroups>{groups}</findGroups>"
    )
}

fn permission(principal: &str, role: i32) -> String {
    format!(
        "<permission><principal>{principal}</principal><group>false</group>\
         <roleId>{role}</roleId><propagate>true</propagate></permission>"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_content_lists_the_managers_in_schema_order() {
    let ts = start("8.0U3", 81).await;
    let mut c = ts.login().await;
    let sc = c.service_content().await.unwrap();
    let names: Vec<&str> = sc.children.iter().map(|e| e.name.as_str()).collect();
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| *x == n)
            .unwrap_or_else(|| panic!("{n} missing: {names:?}"))
    };
    // The schema's order: setting, userDirectory, sessionManager, authorizationManager, ...,
    // accountManager, diagnosticManager, licenseManager, searchIndex.
    let order = [
        "setting",
        "userDirectory",
        "sessionManager",
        "authorizationManager",
        "perfManager",
        "eventManager",
        "taskManager",
        "accountManager",
        "diagnosticManager",
        "licenseManager",
        "searchIndex",
    ];
    for w in order.windows(2) {
        assert!(pos(w[0]) < pos(w[1]), "{} before {}: {names:?}", w[0], w[1]);
    }
    assert_eq!(
        as_moref(sc.child("authorizationManager").unwrap()).unwrap(),
        auth()
    );
    // Each reference answers.
    for (m, prop) in [
        (auth(), "roleList"),
        (users(), "domainList"),
        (
            MoRef::new("LicenseManager", "ha-license-manager"),
            "licenses",
        ),
    ] {
        c.fetch(&m, prop).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_directory_lists_local_accounts_as_posix_results() {
    let ts = start("8.0U3", 82).await;
    let mut c = ts.login().await;
    c.call(
        &account_manager(),
        "CreateUser",
        &account_spec("backup-op", Some("bAck!up9pass")),
    )
    .await
    .unwrap();
    let r = c
        .call(
            &users(),
            "RetrieveUserGroups",
            &search("", false, true, false),
        )
        .await
        .unwrap();
    let names = texts(&r, "principal");
    assert!(
        names.contains(&"root") && names.contains(&"backup-op"),
        "{names:?}"
    );
    let first = r.all("returnval").next().unwrap();
    assert_eq!(first.xsi_type.as_deref(), Some("PosixUserSearchResult"));
    assert_eq!(first.child_text("id"), Some("0"));
    assert_eq!(first.child_text("shellAccess"), Some("true"));
    assert_eq!(first.child_text("group"), Some("false"));

    let r = c
        .call(
            &users(),
            "RetrieveUserGroups",
            &search("backup", false, true, true),
        )
        .await
        .unwrap();
    assert_eq!(texts(&r, "principal"), ["backup-op"], "a substring search");
    let r = c
        .call(
            &users(),
            "RetrieveUserGroups",
            &search("backup", true, true, true),
        )
        .await
        .unwrap();
    assert!(texts(&r, "principal").is_empty(), "an exact search");
    let r = c
        .call(
            &users(),
            "RetrieveUserGroups",
            &search("", false, false, true),
        )
        .await
        .unwrap();
    let groups = texts(&r, "principal");
    assert!(
        groups.contains(&"root") && !groups.contains(&"backup-op"),
        "{groups:?}"
    );
    let r = c
        .call(
            &users(),
            "RetrieveUserGroups",
            &format!(
                "<belongsToGroup>users</belongsToGroup>{}",
                search("", false, true, false)
            ),
        )
        .await
        .unwrap();
    // 7.0+'s /etc/group (the real 7.0.2 sample's): `users` (gid 100) is dcui's primary group.
    assert_eq!(texts(&r, "principal"), ["dcui"], "users' member");

    expect_fault(
        c.call(
            &users(),
            "RetrieveUserGroups",
            &format!(
                "<domain>corp.example</domain>{}",
                search("", false, true, true)
            ),
        )
        .await,
        "NotFound",
    );
    expect_fault(
        c.call(&users(), "RetrieveUserGroups", "<searchStr></searchStr>")
            .await,
        "InvalidRequest",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_set_read_and_refused() {
    for (profile, image) in [("6.7U3", 1), ("8.0U3", 3)] {
        let ts = start(profile, 83).await;
        let mut c = ts.login().await;
        let root = root_folder();
        let r = c
            .call(
                &auth(),
                "RetrieveEntityPermissions",
                &format!("{}<inherited>false</inherited>", moref_xml("entity", &root)),
            )
            .await
            .unwrap();
        assert_eq!(permissions(&r).len(), image, "{profile}");
        assert_eq!(permissions(&r)[0], ("root".to_string(), -1));
        // The host inherits the root folder's; without inheritance it has none.
        let on_host = |inherited: bool| {
            format!(
                "{}<inherited>{inherited}</inherited>",
                moref_xml("entity", &host_ref())
            )
        };
        let r = c
            .call(&auth(), "RetrieveEntityPermissions", &on_host(true))
            .await
            .unwrap();
        assert_eq!(permissions(&r).len(), image);
        let r = c
            .call(&auth(), "RetrieveEntityPermissions", &on_host(false))
            .await
            .unwrap();
        assert!(permissions(&r).is_empty());

        c.call(
            &account_manager(),
            "CreateUser",
            &account_spec("auditor", Some("aUdit!9pass")),
        )
        .await
        .unwrap();
        let set = |who: &str, role: i32| {
            format!("{}{}", moref_xml("entity", &root), permission(who, role))
        };
        c.call(&auth(), "SetEntityPermissions", &set("auditor", -2))
            .await
            .unwrap();
        let r = c.call(&auth(), "RetrieveAllPermissions", "").await.unwrap();
        assert!(
            permissions(&r).contains(&("auditor".into(), -2)),
            "{profile}"
        );
        let r = c
            .call(
                &auth(),
                "FetchUserPrivilegeOnEntities",
                &format!(
                    "{}<userName>auditor</userName>",
                    moref_xml("entities", &host_ref())
                ),
            )
            .await
            .unwrap();
        let privs: Vec<&str> = r
            .all("returnval")
            .flat_map(|u| u.all("privileges").map(|p| p.text.as_str()))
            .collect();
        assert_eq!(privs, ["System.Anonymous", "System.View", "System.Read"]);
        expect_fault(
            c.call(
                &auth(),
                "FetchUserPrivilegeOnEntities",
                &format!(
                    "{}<userName>auditor</userName>",
                    moref_xml("entities", &MoRef::new("HostSystem", "no-such-host"))
                ),
            )
            .await,
            "ManagedObjectNotFound",
        );

        // Refused, and nothing changes.
        let before = c.call(&auth(), "RetrieveAllPermissions", "").await.unwrap();
        expect_fault(
            c.call(&auth(), "SetEntityPermissions", &set("nobody", -2))
                .await,
            "UserNotFound",
        );
        expect_fault(
            c.call(&auth(), "SetEntityPermissions", &set("auditor", 42))
                .await,
            "InvalidArgument",
        );
        expect_fault(
            c.call(
                &auth(),
                "SetEntityPermissions",
                &format!(
                    "{}{}",
                    moref_xml("entity", &MoRef::new("Folder", "no-such-folder")),
                    permission("auditor", -2)
                ),
            )
            .await,
            "ManagedObjectNotFound",
        );
        expect_fault(
            c.call(
                &auth(),
                "SetEntityPermissions",
                &format!(
                    "{}{}",
                    moref_xml("entity", &MoRef::new("PerformanceManager", "ha-perfmgr")),
                    permission("auditor", -2)
                ),
            )
            .await,
            "InvalidArgument",
        );
        // Two at once, the second refused: the first is not written either.
        expect_fault(
            c.call(
                &auth(),
                "SetEntityPermissions",
                &format!(
                    "{}{}<permission><principal>a&lt;b</principal><group>true</group>\
                     <roleId>-2</roleId><propagate>true</propagate></permission>",
                    moref_xml("entity", &root),
                    permission("root", -3)
                ),
            )
            .await,
            "InvalidArgument",
        );
        let on_host_set = format!(
            "{}{}",
            moref_xml("entity", &host_ref()),
            permission("auditor", -2)
        );
        let r = c.call(&auth(), "SetEntityPermissions", &on_host_set).await;
        if profile == "8.0U3" {
            expect_fault(r, "NotSupported");
        } else {
            r.unwrap();
            c.call(
                &auth(),
                "RemoveEntityPermission",
                &format!(
                    "{}<user>auditor</user><isGroup>false</isGroup>",
                    moref_xml("entity", &host_ref())
                ),
            )
            .await
            .unwrap();
        }
        let after = c.call(&auth(), "RetrieveAllPermissions", "").await.unwrap();
        assert_eq!(permissions(&after), permissions(&before), "{profile}");

        let remove = format!(
            "{}<user>auditor</user><isGroup>false</isGroup>",
            moref_xml("entity", &root)
        );
        c.call(&auth(), "RemoveEntityPermission", &remove)
            .await
            .unwrap();
        expect_fault(
            c.call(&auth(), "RemoveEntityPermission", &remove).await,
            "NotFound",
        );
    }
}

/// `govc logs` pages as govmomi's DiagnosticLog does: Seek asks for start = MaxInt32 and
/// lines = 0 to learn the last line, then reads from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostic_logs_tell_the_hosts_events() {
    let ts = start("8.0U3", 84).await;
    let mut c = ts.login().await;
    let r = c.call(&diag(), "QueryDescriptions", "").await.unwrap();
    assert_eq!(texts(&r, "key"), ["hostd", "vmkernel", "vpxa"]);
    for m in ["EnterMaintenanceMode_Task", "ExitMaintenanceMode_Task"] {
        let t = call_ref(&mut c, &host_ref(), m, "<timeout>0</timeout>").await;
        c.wait_task(&t).await.unwrap();
    }
    let browse = |start: Option<i64>, lines: Option<i64>| {
        let mut p = "<key>hostd</key>".to_string();
        if let Some(s) = start {
            p.push_str(&format!("<start>{s}</start>"));
        }
        if let Some(l) = lines {
            p.push_str(&format!("<lines>{l}</lines>"));
        }
        p
    };
    let header = |r: &Element| {
        let h = r.child("returnval").unwrap();
        let n = |k| h.child_text(k).unwrap().parse::<i64>().unwrap();
        let lines: Vec<String> = h.all("lineText").map(|l| l.text.clone()).collect();
        (n("lineStart"), n("lineEnd"), lines)
    };
    let (_, end, lines) = header(
        &c.call(
            &diag(),
            "BrowseDiagnosticLog",
            &browse(Some(i32::MAX as i64), Some(0)),
        )
        .await
        .unwrap(),
    );
    assert!(lines.is_empty());
    assert_eq!(end, 3, "hostd starting, entered, exited");
    let (start, end, lines) = header(
        &c.call(&diag(), "BrowseDiagnosticLog", &browse(None, None))
            .await
            .unwrap(),
    );
    assert_eq!((start, end, lines.len()), (1, 3, 3));
    assert!(
        lines[0].contains("Hostd[") && lines[0].contains("starting"),
        "{lines:?}"
    );
    assert!(lines[1].contains("In(166)") && lines[1].contains("has entered maintenance mode"));
    assert!(lines[2].contains("has exited maintenance mode"));
    let (start, end, lines) = header(
        &c.call(&diag(), "BrowseDiagnosticLog", &browse(Some(2), Some(1)))
            .await
            .unwrap(),
    );
    assert_eq!((start, end), (2, 2));
    assert!(lines[0].contains("entered"));
    expect_fault(
        c.call(&diag(), "BrowseDiagnosticLog", "<key>no-such-log</key>")
            .await,
        "InvalidArgument",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vcenter_has_its_own_permissions_and_logs_and_reads_a_hosts() {
    let fleet = vcenter_fleet(2, Ipv4Addr::new(127, 1, 3, 91)).await;
    let mut c = Client::new(&fleet.vcenter_url().unwrap(), Trust::Any).unwrap();
    c.login("administrator@vsphere.local", "VMware1!")
        .await
        .unwrap();
    let sc = c.service_content().await.unwrap();
    let am = as_moref(sc.child("authorizationManager").unwrap()).unwrap();
    assert_eq!(
        am,
        MoRef::new("AuthorizationManager", "AuthorizationManager")
    );
    let host = MoRef::new("HostSystem", "host-12");
    let r = c
        .call(
            &am,
            "RetrieveEntityPermissions",
            &format!("{}<inherited>true</inherited>", moref_xml("entity", &host)),
        )
        .await
        .unwrap();
    assert_eq!(
        permissions(&r),
        [("VSPHERE.LOCAL\\Administrators".to_string(), -1)]
    );
    let key = c
        .fetch(
            &MoRef::new("SessionManager", "SessionManager"),
            "currentSession",
        )
        .await
        .unwrap();
    let key = key.unwrap().child("key").unwrap().text.clone();
    let r = c
        .call(
            &am,
            "HasPrivilegeOnEntity",
            &format!(
                "{}<sessionId>{key}</sessionId><privId>Host.Config.Firmware</privId>",
                moref_xml("entity", &host)
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        texts_of(&r),
        ["true"],
        "the SSO administrator is in Administrators"
    );
    expect_fault(
        c.call(
            &am,
            "SetEntityPermissions",
            &format!("{}{}", moref_xml("entity", &host), permission("root", -1)),
        )
        .await,
        "NotSupported",
    );

    let dm = as_moref(sc.child("diagnosticManager").unwrap()).unwrap();
    let r = c.call(&dm, "QueryDescriptions", "").await.unwrap();
    assert_eq!(texts(&r, "key"), ["vpxd:vpxd.log"]);
    let r = c
        .call(&dm, "QueryDescriptions", &moref_xml("host", &host))
        .await
        .unwrap();
    assert_eq!(texts(&r, "key"), ["hostd", "vmkernel", "vpxa"]);
    let r = c
        .call(
            &dm,
            "BrowseDiagnosticLog",
            &format!("{}<key>hostd</key>", moref_xml("host", &host)),
        )
        .await
        .unwrap();
    let first = r
        .child("returnval")
        .unwrap()
        .child_text("lineText")
        .unwrap();
    assert!(
        first.contains("hostd[") || first.contains("Hostd["),
        "{first}"
    );
}

fn texts_of(el: &Element) -> Vec<&str> {
    el.all("returnval").map(|r| r.text.as_str()).collect()
}

fn moref_xml(name: &str, r: &MoRef) -> String {
    format!("<{name} type=\"{}\">{}</{name}>", r.ty, r.id)
}
