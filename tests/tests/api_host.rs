//! HostSystem tasks (maintenance mode, reboot, shutdown), the TaskManager, the local account
//! manager and the advanced options, over the wire.

mod common;

use std::time::Duration;

use common::*;
use esxi_harness::client::{returnval, ClientError};
use esxi_sim_tests::{account_manager, host_ref, options, start, PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_mode_tasks() {
    let ts = start("6.7U3", 40).await;
    let mut c = ts.login().await;
    let task = host_task(&mut c, "EnterMaintenanceMode_Task", "<timeout>0</timeout>").await;
    assert_eq!(task.ty, "Task");
    assert!(
        task.id
            .starts_with("haTask-ha-host-vim.HostSystem.enterMaintenanceMode-"),
        "{}",
        task.id
    );
    let info = c.fetch(&task, "info").await.unwrap().unwrap();
    assert_eq!(info.xsi_type.as_deref(), Some("TaskInfo"));
    let state = info.child_text("state").unwrap();
    assert!(matches!(state, "queued" | "running"), "{state}");
    assert_eq!(info.child_text("name"), Some("EnterMaintenanceMode_Task"));
    assert_eq!(info.child_text("key"), Some(task.id.as_str()));
    assert_eq!(
        info.child("reason").unwrap().child_text("userName"),
        Some("root")
    );
    assert!(info.child("completeTime").is_none());
    // Not yet in maintenance mode: the work happens when the task completes.
    assert_eq!(
        c.fetch_text(&host_ref(), "runtime.inMaintenanceMode")
            .await
            .unwrap(),
        "false"
    );
    // Listed as a recent task by the TaskManager and the host.
    let recent = refs_of(
        &c.fetch(&task_manager(), "recentTask")
            .await
            .unwrap()
            .unwrap(),
    );
    assert!(recent.contains(&task), "{recent:?}");
    let recent = refs_of(&c.fetch(&host_ref(), "recentTask").await.unwrap().unwrap());
    assert!(recent.contains(&task), "{recent:?}");

    let done = c.wait_task(&task).await.unwrap();
    assert_eq!(done.child_text("state"), Some("success"));
    assert!(done.child("completeTime").is_some());
    assert!(done.child("error").is_none());
    assert_eq!(
        c.fetch_text(&host_ref(), "runtime.inMaintenanceMode")
            .await
            .unwrap(),
        "true"
    );
    assert!(ts.with_host(|h| h.in_maintenance_mode()));
    // Still listed right after it finished.
    let recent = refs_of(
        &c.fetch(&task_manager(), "recentTask")
            .await
            .unwrap()
            .unwrap(),
    );
    assert!(recent.contains(&task));

    // Entering again: the task fails with InvalidState.
    let again = host_task(&mut c, "EnterMaintenanceMode_Task", "<timeout>0</timeout>").await;
    assert_ne!(again, task);
    let e = expect_fault(c.wait_task(&again).await, "InvalidState");
    assert!(
        e.to_string().contains("not allowed in the current state"),
        "{e}"
    );
    let info = c.fetch(&again, "info").await.unwrap().unwrap();
    assert_eq!(info.child_text("state"), Some("error"));
    assert_eq!(
        info.child("error")
            .unwrap()
            .child("fault")
            .unwrap()
            .xsi_type
            .as_deref(),
        Some("InvalidState")
    );

    // CancelTask is not supported.
    expect_fault(c.call(&task, "CancelTask", "").await, "NotSupported");

    let exit = host_task(&mut c, "ExitMaintenanceMode_Task", "<timeout>0</timeout>").await;
    assert!(exit.id.contains("exitMaintenanceMode"), "{}", exit.id);
    let info = c.wait_task(&exit).await.unwrap();
    assert_eq!(info.child_text("name"), Some("ExitMaintenanceMode_Task"));
    assert_eq!(
        c.fetch_text(&host_ref(), "runtime.inMaintenanceMode")
            .await
            .unwrap(),
        "false"
    );
    // Exiting when not in maintenance mode fails too.
    let exit2 = host_task(&mut c, "ExitMaintenanceMode_Task", "<timeout>0</timeout>").await;
    expect_fault(c.wait_task(&exit2).await, "InvalidState");
    // A missing timeout is a malformed call.
    expect_fault(
        c.call(&host_ref(), "EnterMaintenanceMode_Task", "").await,
        "InvalidRequest",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_tasks_age_out() {
    let ts = start("6.7U3", 41).await;
    let mut c = ts.login().await;
    let task = host_task(&mut c, "EnterMaintenanceMode_Task", "<timeout>0</timeout>").await;
    c.wait_task(&task).await.unwrap();
    ts.skip(Duration::from_secs(11 * 60));
    let mut c = ts.login().await;
    let recent = refs_of(
        &c.fetch(&task_manager(), "recentTask")
            .await
            .unwrap()
            .unwrap(),
    );
    assert!(!recent.contains(&task), "{recent:?}");
}

const SHELL_WARNING: &str = "UserVars.SuppressShellWarning";
const SHELL_WARNING_CONF: &str = "/adv/UserVars/SuppressShellWarning";

async fn set_shell_warning(c: &mut esxi_harness::client::Client, v: i64) {
    c.call(&options(), "UpdateOptions", &long_option(SHELL_WARNING, v))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_reboot_saves_and_forced_reboot_loses_unsaved_changes() {
    let ts = start("6.7U3", 42).await;
    let mut c = ts.login().await;
    set_shell_warning(&mut c, 1).await;
    assert_eq!(query_option(&mut c, SHELL_WARNING).await, "1");
    assert_eq!(
        ts.with_host(|h| h.esx_conf_value(SHELL_WARNING_CONF)),
        Some("1".into())
    );
    assert!(ts.with_host(|h| h.has_unsaved_changes()));

    // Not in maintenance mode: a graceful reboot is refused, and the host stays up.
    let before = boots(&ts);
    let t = host_task(&mut c, "RebootHost_Task", "<force>false</force>").await;
    expect_fault(c.wait_task(&t).await, "InvalidState");
    assert_eq!(boots(&ts), before);
    assert!(ts.with_host(|h| h.is_running()));

    enter_maintenance(&mut c).await;
    let t = host_task(&mut c, "RebootHost_Task", "<force>false</force>").await;
    assert!(t.id.contains("reboot"), "{}", t.id);
    wait_down(&ts, before).await;
    // While it is down the old session's calls get no answer.
    let mut c = ts.wait_back(PASSWORD).await;
    assert_eq!(boots(&ts), before + 1);
    // The shutdown save kept the change.
    assert_eq!(query_option(&mut c, SHELL_WARNING).await, "1");
    assert!(!ts.with_host(|h| h.has_unsaved_changes()));
    // Maintenance mode survives the reboot.
    assert_eq!(
        c.fetch_text(&host_ref(), "runtime.inMaintenanceMode")
            .await
            .unwrap(),
        "true"
    );

    // Now an unsaved change and a forced reboot.
    set_shell_warning(&mut c, 0).await;
    assert_eq!(query_option(&mut c, SHELL_WARNING).await, "0");
    let (unsaved, next_auto, now) =
        ts.with_host(|h| (h.has_unsaved_changes(), h.next_auto_backup(), h.now()));
    assert!(unsaved, "the change is only in RAM");
    // The hourly auto-backup is not due before the forced reboot happens.
    let next_auto = next_auto.unwrap();
    assert!(
        next_auto.since(now) > Duration::from_secs(10),
        "auto-backup due at {next_auto:?}, now {now:?}"
    );
    let saves = ts.with_host(|h| h.bootbank_writes().state_saves);
    let before = boots(&ts);
    host_task(&mut c, "RebootHost_Task", "<force>true</force>").await;
    wait_down(&ts, before).await;
    let mut c = ts.wait_back(PASSWORD).await;
    assert_eq!(boots(&ts), before + 1);
    assert_eq!(
        ts.with_host(|h| h.bootbank_writes().state_saves),
        saves,
        "a forced reboot does not save"
    );
    assert_eq!(
        query_option(&mut c, SHELL_WARNING).await,
        "1",
        "change lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_ends_sessions_and_tasks() {
    let ts = start("6.7U3", 43).await;
    let mut c = ts.login().await;
    let first_boot = c.fetch_text(&host_ref(), "runtime.bootTime").await.unwrap();
    assert_eq!(first_boot, "2024-01-01T00:00:00Z");
    ts.skip(Duration::from_secs(20));
    let before = boots(&ts);
    let t = host_task(&mut c, "RebootHost_Task", "<force>true</force>").await;
    wait_down(&ts, before).await;
    // Calls while the host is down get no answer at all, or the proxy's 503 while hostd stops
    // or starts (server/phases.rs).
    match c.fetch(&host_ref(), "name").await {
        Err(ClientError::Io(_)) => {}
        Err(ClientError::Http(s, _)) if s.as_u16() == 503 => {}
        other if boots(&ts) != before => {
            // Already back: then the old session is gone.
            expect_fault(other, "NotAuthenticated");
        }
        other => panic!("expected no answer, got {other:?}"),
    }
    let mut fresh = ts.wait_back(PASSWORD).await;
    // The old cookie does not survive hostd's restart, nor does the task.
    expect_fault(c.fetch(&host_ref(), "name").await, "NotAuthenticated");
    expect_fault(fresh.fetch(&t, "info").await, "ManagedObjectNotFound");
    let recent = refs_of(
        &fresh
            .fetch(&task_manager(), "recentTask")
            .await
            .unwrap()
            .unwrap(),
    );
    assert!(recent.is_empty(), "{recent:?}");
    // bootTime is the new boot (20 s of virtual time later).
    let boot_time = fresh
        .fetch_text(&host_ref(), "runtime.bootTime")
        .await
        .unwrap();
    assert!(boot_time.starts_with("2024-01-01T00:00:2"), "{boot_time}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_leaves_the_host_unreachable() {
    let ts = start("6.7U3", 44).await;
    let mut c = ts.login().await;
    // A graceful shutdown outside maintenance mode is refused.
    let t = host_task(&mut c, "ShutdownHost_Task", "<force>false</force>").await;
    expect_fault(c.wait_task(&t).await, "InvalidState");
    assert!(ts.with_host(|h| h.is_running()));

    let t = host_task(&mut c, "ShutdownHost_Task", "<force>true</force>").await;
    assert!(t.id.contains("shutdown"), "{}", t.id);
    wait_down(&ts, boots(&ts)).await;
    match c.fetch(&host_ref(), "name").await {
        Err(ClientError::Io(_)) => {}
        other => panic!("expected a dropped connection, got {other:?}"),
    }
    // New connections too, and it stays off.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut fresh = ts.client();
    match fresh.login("root", PASSWORD).await {
        Err(ClientError::Io(_)) => {}
        other => panic!("expected no connection, got {other:?}"),
    }
    assert!(!ts.with_host(|h| h.is_running()));
}

// ---- accounts --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_accounts() {
    let ts = start("6.7U3", 45).await;
    let mut c = ts.login().await;
    let am = account_manager();
    let spec = account_spec("backupsvc", Some("Bkp!pass42"));
    c.call(&am, "CreateUser", &spec).await.unwrap();
    assert!(ts.with_host(|h| h.check_user_exists("backupsvc")));
    let mut u = ts.client();
    let us = u.login("backupsvc", "Bkp!pass42").await.unwrap();
    assert_eq!(us.child_text("userName"), Some("backupsvc"));
    expect_fault(u.login("backupsvc", "wrong").await, "InvalidLogin");

    let e = expect_fault(c.call(&am, "CreateUser", &spec).await, "AlreadyExists");
    assert_eq!(e.field("name").as_deref(), Some("backupsvc"));

    // UpdateUser changes the password.
    c.call(
        &am,
        "UpdateUser",
        &account_spec("backupsvc", Some("N3w!pass42")),
    )
    .await
    .unwrap();
    expect_fault(u.login("backupsvc", "Bkp!pass42").await, "InvalidLogin");
    u.login("backupsvc", "N3w!pass42").await.unwrap();

    c.call(&am, "RemoveUser", "<userName>backupsvc</userName>")
        .await
        .unwrap();
    let mut u2 = ts.client();
    expect_fault(u2.login("backupsvc", "N3w!pass42").await, "InvalidLogin");

    let e = expect_fault(
        c.call(&am, "RemoveUser", "<userName>ghost</userName>")
            .await,
        "UserNotFound",
    );
    assert_eq!(e.field("principal").as_deref(), Some("ghost"));
    expect_fault(
        c.call(
            &am,
            "UpdateUser",
            &account_spec("ghost", Some("Gh0st!pass")),
        )
        .await,
        "UserNotFound",
    );
    expect_fault(
        c.call(&am, "UpdateUser", &account_spec("ghost", None))
            .await,
        "UserNotFound",
    );
    // root cannot be removed; a spec without id is malformed.
    expect_fault(
        c.call(&am, "RemoveUser", "<userName>root</userName>").await,
        "InvalidArgument",
    );
    expect_fault(
        c.call(
            &am,
            "CreateUser",
            "<user xsi:type=\"HostPosixAccountSpec\"><password>x</password></user>",
        )
        .await,
        "InvalidRequest",
    );
    // root still works.
    ts.login().await;
}

/// Facts section 7: new passwords pass `Security.PasswordQualityControl` (passwdqc), and a weak
/// one gets hostd's SystemError "Weak password: ..." (KB 344647) and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_passwords_are_refused_by_the_quality_option() {
    let ts = start("6.7U3", 48).await;
    let mut c = ts.login().await;
    let am = account_manager();
    let shadow = ts.with_host(|h| h.read_file("etc/shadow").unwrap());
    for (pw, reason) in [
        ("", "too short"),
        ("Ab1!xy", "too short"),
        // The leading capital and the trailing digit do not count: two classes.
        ("Bundle!pw1", "not enough different characters or classes"),
        ("abcdefghijkl", "not enough different characters or classes"),
    ] {
        let e = expect_fault(
            c.call(&am, "UpdateUser", &account_spec("root", Some(pw)))
                .await,
            "SystemError",
        );
        assert_eq!(
            e.field("reason").as_deref(),
            Some(format!("Weak password: {reason}.").as_str()),
            "{pw:?}"
        );
        assert!(
            e.to_string().contains("A general system error occurred"),
            "{e}"
        );
        let e = expect_fault(
            c.call(&am, "CreateUser", &account_spec("svc", Some(pw)))
                .await,
            "SystemError",
        );
        assert!(e.to_string().contains(reason), "{e}");
    }
    assert_eq!(ts.with_host(|h| h.read_file("etc/shadow").unwrap()), shadow);
    assert!(!ts.with_host(|h| h.check_user_exists("svc")));
    ts.login().await;

    // The option drives it: a stricter rule refuses what the default takes...
    let om = options();
    let set = |v: &str| {
        format!(
            "<changedValue><key>Security.PasswordQualityControl</key><value xsi:type=\"xsd:string\">{v}</value></changedValue>"
        )
    };
    c.call(
        &om,
        "UpdateOptions",
        &set("retry=3 min=disabled,disabled,disabled,disabled,15"),
    )
    .await
    .unwrap();
    expect_fault(
        c.call(&am, "CreateUser", &account_spec("svc", Some("S3cret!pw")))
            .await,
        "SystemError",
    );
    // ... and a laxer one takes what it refused.
    c.call(&om, "UpdateOptions", &set("retry=3 min=8,8,8,7,6"))
        .await
        .unwrap();
    c.call(
        &am,
        "CreateUser",
        &account_spec("svc", Some("abcdefghijkl")),
    )
    .await
    .unwrap();
    // A value PAM could not load is refused.
    let e = expect_fault(
        c.call(&om, "UpdateOptions", &set("min=7")).await,
        "InvalidArgument",
    );
    assert!(e.to_string().contains("PasswordQualityControl"), "{e}");

    // Before 6.0 there is no such option; /etc/pam.d/passwd's min=8,8,8,7,6 applies.
    let old = start("5.5GA", 49).await;
    let mut c = old.login().await;
    expect_fault(
        c.call(
            &options(),
            "QueryOptions",
            "<name>Security.PasswordQualityControl</name>",
        )
        .await,
        "InvalidName",
    );
    c.call(&am, "CreateUser", &account_spec("svc", Some("abcdefgh")))
        .await
        .unwrap();
    expect_fault(
        c.call(&am, "CreateUser", &account_spec("svc2", Some("abcdefg")))
            .await,
        "SystemError",
    );
}

// ---- options ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_options() {
    let ts = start("6.7U3", 46).await;
    let mut c = ts.login().await;
    let om = options();
    let r = c
        .call(
            &om,
            "QueryOptions",
            &format!("<name>{SHELL_WARNING}</name>"),
        )
        .await
        .unwrap();
    let all: Vec<_> = r.all("returnval").collect();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].xsi_type.as_deref(), Some("OptionValue"));
    assert_eq!(all[0].child_text("key"), Some(SHELL_WARNING));
    let v = all[0].child("value").unwrap();
    assert_eq!(v.xsi_type.as_deref(), Some("long"));
    assert_eq!(v.text, "0");

    let r = c
        .call(&om, "QueryOptions", "<name>UserVars.</name>")
        .await
        .unwrap();
    let keys: Vec<&str> = r
        .all("returnval")
        .map(|o| o.child_text("key").unwrap())
        .collect();
    assert!(keys.len() >= 3, "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("UserVars.")), "{keys:?}");
    assert!(keys.contains(&SHELL_WARNING));
    assert!(keys.contains(&"UserVars.ESXiShellTimeOut"));

    // A string option is typed as a string.
    let r = c
        .call(&om, "QueryOptions", "<name>Misc.HostName</name>")
        .await
        .unwrap();
    let ov = returnval(&r).unwrap();
    assert_eq!(
        ov.child("value").unwrap().xsi_type.as_deref(),
        Some("string")
    );
    assert_eq!(
        ov.child_text("value").unwrap(),
        ts.with_host(|h| h.hostname())
    );

    for bad in ["No.Such.Option", "UserVars", "Nope."] {
        let e = expect_fault(
            c.call(&om, "QueryOptions", &format!("<name>{bad}</name>"))
                .await,
            "InvalidName",
        );
        assert_eq!(e.field("name").as_deref(), Some(bad));
    }
    // Without a name: every option; the `setting` property has the same list.
    let r = c.call(&om, "QueryOptions", "").await.unwrap();
    let n = r.all("returnval").count();
    assert!(n > keys.len());
    let setting = c.fetch(&om, "setting").await.unwrap().unwrap();
    assert_eq!(setting.children.len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_options_validates_everything_first() {
    let ts = start("6.7U3", 47).await;
    let mut c = ts.login().await;
    let om = options();
    let conf_before = ts.with_host(|h| h.esx_conf_entries());

    // A good change followed by an unknown key: nothing changes.
    let both = format!(
        "{}<changedValue><key>No.Such.Option</key><value xsi:type=\"xsd:string\">x</value></changedValue>",
        long_option(SHELL_WARNING, 1)
    );
    let e = expect_fault(c.call(&om, "UpdateOptions", &both).await, "InvalidName");
    assert_eq!(e.field("name").as_deref(), Some("No.Such.Option"));
    assert_eq!(query_option(&mut c, SHELL_WARNING).await, "0");
    assert_eq!(ts.with_host(|h| h.esx_conf_entries()), conf_before);

    // An integer option with a value that is not an integer.
    for value in [
        "<value xsi:type=\"xsd:string\">abc</value>",
        "<value xsi:type=\"xsd:long\">abc</value>",
        "<value xsi:type=\"xsd:string\">1.5</value>",
    ] {
        let body = format!("<changedValue><key>{SHELL_WARNING}</key>{value}</changedValue>");
        let e = expect_fault(c.call(&om, "UpdateOptions", &body).await, "InvalidArgument");
        assert!(e.to_string().contains(SHELL_WARNING), "{e}");
    }
    assert_eq!(ts.with_host(|h| h.esx_conf_entries()), conf_before);

    // A string option takes a string; an integer given as a string that parses is fine.
    c.call(
        &om,
        "UpdateOptions",
        "<changedValue><key>Annotations.WelcomeMessage</key><value xsi:type=\"xsd:string\">Hello</value></changedValue>",
    )
    .await
    .unwrap();
    assert_eq!(
        query_option(&mut c, "Annotations.WelcomeMessage").await,
        "Hello"
    );
    c.call(
        &om,
        "UpdateOptions",
        &format!("<changedValue><key>{SHELL_WARNING}</key><value xsi:type=\"xsd:string\">1</value></changedValue>"),
    )
    .await
    .unwrap();
    assert_eq!(query_option(&mut c, SHELL_WARNING).await, "1");
    assert_eq!(
        ts.with_host(|h| h.esx_conf_value(SHELL_WARNING_CONF)),
        Some("1".into())
    );
    // A value that cannot go into esx.conf is refused and changes nothing.
    expect_fault(
        c.call(
            &om,
            "UpdateOptions",
            "<changedValue><key>Annotations.WelcomeMessage</key><value xsi:type=\"xsd:string\">a\"b</value></changedValue>",
        )
        .await,
        "InvalidArgument",
    );
    assert_eq!(
        query_option(&mut c, "Annotations.WelcomeMessage").await,
        "Hello"
    );
}
