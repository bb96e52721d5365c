//! Tasks and the TaskManager. The `_Task` methods of HostSystem return a Task at once; its `info`
//! moves through `queued` → `running` → `success`/`error` on the virtual clock, and the work
//! itself (entering maintenance mode, rebooting) happens when the task completes, as on a real
//! host. Ids follow hostd: `haTask-ha-host-vim.HostSystem.enterMaintenanceMode-<n>`.

use std::time::Duration;

use super::{host_fault, ids, method_not_found, moref, Ctx, Vim};
use crate::api::{Call, Data, Fault, MoRef, Value};
use crate::clock::SimTime;
use crate::host::RebootKind;

/// A task waits this long in `queued` before it starts.
const QUEUE_TIME: Duration = Duration::from_millis(10);
/// How long tasks run (virtual time). Short, so scripts waiting on them stay fast.
const RUN_TIME: Duration = Duration::from_millis(200);
/// Tasks completed longer ago than this leave TaskManager.recentTask (hostd keeps ~10 minutes).
const RECENT: Duration = Duration::from_secs(600);
/// A waiter that reads a running task's `progress` is woken at each step of this many percent
/// (the wait reports whatever the progress is then); finer would wake it every few ms.
const PROGRESS_STEP: u128 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    EnterMaintenance,
    ExitMaintenance,
    Reboot { force: bool },
    Shutdown { force: bool },
}

impl Action {
    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Action::EnterMaintenance => ("EnterMaintenanceMode_Task", "enterMaintenanceMode"),
            Action::ExitMaintenance => ("ExitMaintenanceMode_Task", "exitMaintenanceMode"),
            Action::Reboot { .. } => ("RebootHost_Task", "reboot"),
            Action::Shutdown { .. } => ("ShutdownHost_Task", "shutdown"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Task {
    pub id: String,
    pub action: Action,
    pub entity: MoRef,
    pub entity_name: String,
    pub user: String,
    pub queued: SimTime,
    pub starts: SimTime,
    pub ends: SimTime,
    /// Set when the task has run: Ok(result) or the fault.
    pub outcome: Option<Result<Option<Value>, Fault>>,
    pub chain: i32,
}

impl Task {
    /// When the task's work is due, if it has not run yet.
    pub fn due(&self) -> Option<SimTime> {
        self.outcome.is_none().then_some(self.ends)
    }
    pub fn moref(&self) -> MoRef {
        moref("Task", &self.id)
    }
}

/// Queues a task on the host; returns its reference.
pub fn create(vim: &mut Vim, ctx: &Ctx, action: Action) -> MoRef {
    vim.task_seq += 1;
    let n = vim.task_seq;
    let (_, op) = action.describe();
    let id = format!("haTask-{}-vim.HostSystem.{op}-{}", ids::HOST, 100 + n);
    let user = ctx
        .session
        .as_deref()
        .and_then(|k| super::session_manager::session_by_key(vim, k))
        .map(|s| s.user.clone())
        .unwrap_or_else(|| "root".into());
    let now = vim.now();
    let t = Task {
        id,
        action,
        entity: moref("HostSystem", ids::HOST),
        entity_name: vim.host.hostname(),
        user,
        queued: now,
        starts: now.plus(QUEUE_TIME),
        ends: now.plus(QUEUE_TIME + RUN_TIME),
        outcome: None,
        chain: 1000 + n as i32,
    };
    let r = t.moref();
    vim.tasks.insert(n, t);
    r
}

/// Does a task's work (called by [`Vim::sync_to`] when the task is due).
pub fn run(vim: &mut Vim, n: u64) {
    let Some(action) = vim.tasks.get(&n).map(|t| t.action) else {
        return;
    };
    let host = &mut vim.host;
    let result = match action {
        Action::EnterMaintenance => host.enter_maintenance_mode().map_err(host_fault),
        Action::ExitMaintenance => host.exit_maintenance_mode().map_err(host_fault),
        Action::Reboot { force } | Action::Shutdown { force }
            if !force && !host.in_maintenance_mode() =>
        {
            Err(Fault::new(
                "InvalidState",
                "The operation is not allowed in the current state.",
            ))
        }
        Action::Reboot { .. } | Action::Shutdown { .. } => Ok(()),
    };
    if let Some(t) = vim.tasks.get_mut(&n) {
        t.outcome = Some(result.clone().map(|_| None));
    }
    if result.is_ok() {
        // The API's force means "even outside maintenance mode"; we also let it mean `reboot -f`
        // (no shutdown save), which is what the host model distinguishes (see README).
        let kind = |force| {
            if force {
                RebootKind::Forced
            } else {
                RebootKind::Graceful
            }
        };
        let _ = match action {
            Action::Reboot { force } => vim.host.reboot(kind(force), "RebootHost_Task"),
            Action::Shutdown { force } => vim.host.shutdown(kind(force)),
            _ => Ok(()),
        };
    }
}

pub fn info(vim: &Vim, t: &Task) -> Data {
    let now = vim.now();
    let (method, op) = t.action.describe();
    let state = match &t.outcome {
        Some(Ok(_)) => "success",
        Some(Err(_)) => "error",
        None if now < t.starts => "queued",
        None => "running",
    };
    let progress = match state {
        "running" => {
            let total = t.ends.since(t.starts).as_millis().max(1);
            let p = (now.since(t.starts).as_millis() * 100 / total).min(99);
            // A waiter reading this looks again at the next tenth (the end is an event).
            let next = (p / PROGRESS_STEP + 1) * PROGRESS_STEP;
            if next < 100 {
                let at = t
                    .starts
                    .plus(Duration::from_millis((total * next).div_ceil(100) as u64));
                vim.note_drift(at.max(now.plus(Duration::from_millis(1))));
            }
            Some(p as i32)
        }
        "queued" => {
            vim.note_drift(t.starts);
            None
        }
        _ => None,
    };
    let (error, result) = match &t.outcome {
        Some(Err(f)) => (Some(f.localized()), None),
        Some(Ok(r)) => (None, r.clone()),
        None => (None, None),
    };
    Data::new("TaskInfo")
        .with("key", t.id.as_str())
        .with("task", t.moref())
        .with("name", method)
        .with("descriptionId", format!("HostSystem.{op}"))
        .with("entity", t.entity.clone())
        .with("entityName", t.entity_name.as_str())
        .with("state", Value::enumerated("TaskInfoState", state))
        .with("cancelled", false)
        .with("cancelable", false)
        .opt("error", error)
        .opt("result", result.map(Value::any))
        .opt("progress", progress)
        .with(
            "reason",
            Data::new("TaskReasonUser").with("userName", t.user.as_str()),
        )
        .with("queueTime", t.queued)
        .opt("startTime", (now >= t.starts).then_some(t.starts))
        .opt("completeTime", t.outcome.is_some().then_some(t.ends))
        .with("eventChainId", t.chain)
}

pub fn properties(vim: &Vim, id: &str) -> Option<Data> {
    let t = vim.tasks.values().find(|t| t.id == id)?;
    Some(Data::new("Task").with("info", info(vim, t)))
}

/// Tasks that are not done or finished recently.
pub fn recent(vim: &Vim) -> Vec<MoRef> {
    let now = vim.now();
    let recent: Vec<&Task> = vim
        .tasks
        .values()
        .filter(|t| t.outcome.is_none() || now.since(t.ends) <= RECENT)
        .collect();
    // The first done task to leave the list changes it by time alone.
    if let Some(leaves) = recent
        .iter()
        .filter(|t| t.outcome.is_some())
        .map(|t| t.ends.plus(RECENT + Duration::from_millis(1)))
        .min()
    {
        vim.note_drift(leaves);
    }
    recent.into_iter().map(Task::moref).collect()
}

pub fn manager_properties(vim: &Vim) -> Data {
    // A vCenter's recent tasks are its hosts' (every host task runs there, forwarded as vpxd
    // does), in vCenter ids: what `govc tasks` and vCenter clients list.
    let recent = match vim.estate() {
        Some(est) => super::vcenter::recent_tasks(vim, est),
        None => recent(vim),
    };
    Data::new("TaskManager")
        .with("recentTask", Value::refs(recent))
        .with(
            "maxCollector",
            super::history_collector::MAX_COLLECTORS as i32,
        )
}

pub fn call(vim: &mut Vim, ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    match (req.this.ty.as_str(), req.method.as_str()) {
        ("TaskManager", "CreateCollectorForTasks") => {
            super::task_history_collector::create(vim, ctx, req)
        }
        ("Task", "CancelTask") => Err(Fault::new(
            "NotSupported",
            "The operation is not supported on the object.",
        )),
        _ => Err(method_not_found(req)),
    }
}
