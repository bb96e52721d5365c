//! TaskManager.CreateCollectorForTasks and TaskHistoryCollector: the task history PowerCLI's
//! `Get-Task` and vCenter clients page through (`latestPage`, `ReadNextTasks`,
//! `ReadPreviousTasks`; the scroll is [`super::history_collector`]'s).
//!
//! The history is what hostd holds: every task since it started (a reboot clears it, on the
//! host and so on a vCenter, which here reads its hosts' tasks rather than keeping its own
//! database [inferred simplification]). On a vCenter the tasks of all hosts are merged by the
//! time they were queued, in vCenter ids. TaskFilterSpec's entity (with recursion), time (by
//! queued, started or completed time), userName.userList and state select tasks; its alarm,
//! scheduled-task, chain and tag parts are accepted and ignored (no such tasks exist here).

use super::history_collector::{lineage, time_bound, EntityFilter, Scroll, Step, MAX_COLLECTORS};
use super::{method_not_found, moref, not_found, vcenter, Ctx, Vim};
use crate::api::{Call, Param};
use crate::api::{Data, Fault, MoRef, Value};
use crate::clock::SimTime;

#[derive(Clone, Debug)]
pub struct Collector {
    pub session: String,
    filter: Filter,
    scroll: Scroll,
}

#[derive(Clone, Debug, Default)]
struct Filter {
    entity: Option<EntityFilter>,
    /// Which TaskInfo time, and the bounds.
    time: Option<(&'static str, Option<SimTime>, Option<SimTime>)>,
    users: Vec<String>,
    states: Vec<String>,
}

/// One task as the history shows it.
struct Item {
    key: i64,
    /// The task's host, then its ancestors on this endpoint.
    lineage: Vec<MoRef>,
    info: Data,
}

/// The endpoint's tasks, oldest first.
fn items(vim: &Vim, f: &Filter) -> Vec<Item> {
    let all = match &vim.estate {
        None => {
            let up = lineage(None);
            vim.tasks
                .iter()
                .map(|(n, t)| Item {
                    key: *n as i64,
                    lineage: up.clone(),
                    info: super::task::info(vim, t),
                })
                .collect::<Vec<_>>()
        }
        Some(est) => {
            let hosts: Vec<usize> = match &f.entity {
                Some(EntityFilter { entity: e, .. }) if e.ty == "HostSystem" => {
                    vcenter::host_index_of(&e.id)
                        .filter(|i| *i < est.hosts.len())
                        .into_iter()
                        .collect()
                }
                _ => (0..est.hosts.len()).collect(),
            };
            let mut refs = vcenter::all_tasks(vim, est, &hosts);
            refs.sort_by_key(|(queued, i, n, _)| (*queued, *i, *n));
            refs.into_iter()
                .enumerate()
                .filter_map(|(k, (_, i, _, r))| {
                    let task = vim.properties_only(&r, None, Some(&["info"]))?;
                    let Some(Value::Data(info)) = task.get("info").cloned() else {
                        return None;
                    };
                    Some(Item {
                        key: k as i64 + 1,
                        lineage: lineage(Some(i)),
                        info,
                    })
                })
                .collect()
        }
    };
    all.into_iter().filter(|t| f.admits(t)).collect()
}

impl Filter {
    fn admits(&self, t: &Item) -> bool {
        if self.entity.as_ref().is_some_and(|f| !f.admits(&t.lineage)) {
            return false;
        }
        if let Some((field, begin, end)) = &self.time {
            let at = match t.info.get(field) {
                Some(Value::Time(at)) => *at,
                _ => return false, // not started or not completed yet
            };
            if begin.is_some_and(|b| at < b) || end.is_some_and(|e| at > e) {
                return false;
            }
        }
        if !self.users.is_empty() {
            let user = t.info.get("reason").and_then(|r| match r {
                Value::Data(d) => match d.get("userName") {
                    Some(Value::Str(u)) => Some(u.as_str()),
                    _ => None,
                },
                _ => None,
            });
            if !user.is_some_and(|u| self.users.iter().any(|w| w == u)) {
                return false;
            }
        }
        if !self.states.is_empty() {
            let state = match t.info.get("state") {
                Some(Value::Enum(_, s)) => *s,
                _ => "",
            };
            if !self.states.iter().any(|s| s == state) {
                return false;
            }
        }
        true
    }

    fn parse(vim: &Vim, req: &Call, el: &Param, session: &str) -> Result<Filter, Fault> {
        let mut f = Filter::default();
        if let Some(ent) = el.child("entity") {
            f.entity = Some(EntityFilter::parse(
                vim,
                req,
                ent,
                session,
                "TaskFilterSpecRecursionOption",
            )?);
        }
        if let Some(t) = el.child("time") {
            let field = match t.child_text("timeType").unwrap_or("queuedTime") {
                "queuedTime" => "queueTime",
                "startedTime" => "startTime",
                "completedTime" => "completeTime",
                other => {
                    return Err(Fault::invalid_argument(
                        format!("'{other}' is not a TaskFilterSpecTimeOption"),
                        Some("filter.time.timeType"),
                    ))
                }
            };
            f.time = Some((
                field,
                time_bound(t, "beginTime")?,
                time_bound(t, "endTime")?,
            ));
        }
        if let Some(u) = el.child("userName") {
            f.users = u
                .all("userList")
                .map(|x| x.text.trim().to_string())
                .collect();
        }
        f.states = el.all("state").map(|s| s.text.trim().to_string()).collect();
        for s in &f.states {
            if !matches!(s.as_str(), "queued" | "running" | "success" | "error") {
                return Err(Fault::invalid_argument(
                    format!("'{s}' is not a TaskInfoState"),
                    Some("filter.state"),
                ));
            }
        }
        Ok(f)
    }
}

fn infos(items: Vec<Item>) -> Value {
    Value::Array(
        "TaskInfo",
        items.into_iter().map(|t| t.info.into()).collect(),
    )
}

fn collector<'a>(vim: &'a mut Vim, req: &Call) -> Result<&'a mut Collector, Fault> {
    vim.task_collectors
        .get_mut(&req.this.id)
        .ok_or_else(|| not_found(&req.this))
}

/// TaskManager.CreateCollectorForTasks.
pub fn create(vim: &mut Vim, ctx: &Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    let session = ctx.session.clone().unwrap_or_default();
    let f = Filter::parse(vim, req, super::required(req, "filter")?, &session)?;
    let mine = vim
        .task_collectors
        .values()
        .filter(|c| c.session == session)
        .count();
    if mine >= MAX_COLLECTORS {
        return Err(super::limits::too_many("task collectors", MAX_COLLECTORS));
    }
    let keys: Vec<i64> = items(vim, &f).iter().map(|t| t.key).collect();
    vim.seq += 1;
    let id = format!("session[{session}]{:x}", vim.seq);
    vim.task_collectors.insert(
        id.clone(),
        Collector {
            session,
            filter: f,
            scroll: Scroll::new(&keys),
        },
    );
    Ok(Some(moref("TaskHistoryCollector", &id).into()))
}

/// The methods of a TaskHistoryCollector.
const METHODS: &[&str] = &[
    "SetCollectorPageSize",
    "RewindCollector",
    "ResetCollector",
    "DestroyCollector",
    "ReadNextTasks",
    "ReadPreviousTasks",
];

pub fn call(vim: &mut Vim, _ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    if !METHODS.contains(&req.method.as_str()) {
        return Err(method_not_found(req));
    }
    if req.method == "DestroyCollector" {
        collector(vim, req)?;
        vim.task_collectors.remove(&req.this.id);
        return Ok(None);
    }
    let c = collector(vim, req)?;
    let (f, mut scroll) = (c.filter.clone(), c.scroll.clone());
    let Some(step) = scroll.call(req, "Tasks", || items(vim, &f), |t| t.key) else {
        return Err(method_not_found(req));
    };
    let step = step?;
    collector(vim, req)?.scroll = scroll;
    Ok(match step {
        Step::Done => None,
        Step::Items(ts) => Some(infos(ts)),
    })
}

/// A collector's properties (its session's only): `filter` is echoed empty (the spec is not
/// kept as sent), `latestPage` newest first.
pub fn properties(vim: &Vim, id: &str) -> Option<Data> {
    let c = vim.task_collectors.get(id)?;
    let page = c.scroll.latest(items(vim, &c.filter));
    Some(
        Data::new("TaskHistoryCollector")
            .with("filter", Data::new("TaskFilterSpec"))
            .with("latestPage", infos(page)),
    )
}
