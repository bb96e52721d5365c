//! EventManager and EventHistoryCollector: what a host did, as the vSphere events clients read
//! (`govc events`, PowerCLI `Get-VIEvent`, pyVmomi's `QueryEvents`).
//!
//! The events are the host model's event log ([`crate::host::EventLog`]) told in the API's
//! types; nothing is logged twice. Which model events a client sees, and as what:
//!
//! | model event | vSphere event | where |
//! |---|---|---|
//! | maintenance mode entered / exited | `EnteredMaintenanceModeEvent` / `ExitMaintenanceModeEvent` | host, vCenter |
//! | booted | `EventEx` `esx.audit.host.boot` "Host has booted." | host, vCenter |
//! | reboot | `EventEx` `esx.audit.host.stop.reboot` "Host is rebooting." | host, vCenter |
//! | configuration restored / reset | `GeneralHostInfoEvent` [inferred] | host, vCenter |
//! | account locked | `EventEx` `esx.audit.account.locked` (warning) | host, vCenter |
//! | crash, power cut | `HostConnectionLostEvent` (error) | vCenter only: the host is down |
//!
//! Message formats are vCenter's (`EventDescription.eventInfo.fullFormat`) and the vob texts
//! ESXi logs; the restore/reset wording is ours [inferred: what hostd logs for them is not in
//! the facts]. Saves are not events (auto-backup.sh writes syslog, not hostd's event stream).
//!
//! A host's hostd keeps its events in memory: a host shows those since its last boot, a vCenter
//! (which keeps them in its database) all that the model still holds [inferred]. Keys count
//! every event the endpoint has logged, oldest first, so `event.Sort` (by key) is chronological.
//!
//! A collector (`CreateCollectorForEvents`) belongs to its session, at most
//! [`MAX_COLLECTORS`] per session (vCenter's documented `maxCollector`); it has a latest page
//! (`latestPage`, newest first, `SetCollectorPageSize`, default 10) and a scrollable cursor that
//! starts just before the latest page (`ReadNextEvents` forward, `ReadPreviousEvents` back,
//! `RewindCollector`, `ResetCollector`).

use super::history_collector::{
    self, time_bound, EntityFilter, Scroll, Step, MAX_COLLECTORS, MAX_PAGE,
};
use super::{bad_param, method_not_found, moref, not_found, vcenter, Ctx, Vim};
use crate::api::call::parse_int;
use crate::api::{Call, Param};
use crate::api::{Data, Fault, MoRef, Value};
use crate::clock::SimTime;
use crate::host::EventKind;

/// A session's event collector.
#[derive(Clone, Debug)]
pub struct Collector {
    pub session: String,
    filter: Filter,
    scroll: Scroll,
}

/// EventFilterSpec, the parts that select events.
#[derive(Clone, Debug, Default)]
struct Filter {
    entity: Option<EntityFilter>,
    begin: Option<SimTime>,
    end: Option<SimTime>,
    /// Type names or EventEx ids.
    type_ids: Vec<String>,
    categories: Vec<String>,
    /// QueryEvents keeps the newest this many (the API's default and cap: 1000).
    max_count: usize,
    /// Raw spec, echoed as the collector's `filter`.
    spec: Option<Data>,
}

/// One event as a client sees it.
#[derive(Clone, Debug)]
pub struct ApiEvent {
    pub key: i64,
    pub at: SimTime,
    /// The host it is about: its reference and ancestors on this endpoint, nearest first.
    lineage: Vec<MoRef>,
    type_id: String,
    category: &'static str,
    pub data: Data,
}

/// Names and references one host's events carry on an endpoint.
struct Args {
    /// The host, its compute resource, host folder, datacenter, root folder
    /// ([`history_collector::lineage`]).
    lineage: Vec<MoRef>,
    host_name: String,
    compute_name: String,
    datacenter_name: String,
}

/// The vSphere event for a model event, if a client sees one on this kind of endpoint.
fn convert(kind: &EventKind, at: SimTime, key: i64, a: &Args, vcenter: bool) -> Option<ApiEvent> {
    let dc_host = format!("Host {} in {}", a.host_name, a.datacenter_name);
    // (wire type, EventEx id, severity/category, message)
    let (ty, ex, category, msg): (&'static str, Option<&str>, &'static str, String) = match kind {
        EventKind::MaintenanceMode { entered: true } => (
            "EnteredMaintenanceModeEvent",
            None,
            "info",
            format!("{dc_host} has entered maintenance mode"),
        ),
        EventKind::MaintenanceMode { entered: false } => (
            "ExitMaintenanceModeEvent",
            None,
            "info",
            format!("{dc_host} has exited maintenance mode"),
        ),
        EventKind::Booted { .. } => (
            "EventEx",
            Some("esx.audit.host.boot"),
            "info",
            "Host has booted.".into(),
        ),
        EventKind::Reboot { .. } => (
            "EventEx",
            Some("esx.audit.host.stop.reboot"),
            "info",
            "Host is rebooting.".into(),
        ),
        EventKind::Restored { .. } | EventKind::ResetToDefaults => (
            "GeneralHostInfoEvent",
            None,
            "info",
            match kind {
                EventKind::ResetToDefaults => {
                    "Configuration reset to factory defaults; the host reboots".into()
                }
                _ => "Configuration restored from a backup bundle; the host reboots".into(),
            },
        ),
        EventKind::AccountLocked { .. } => (
            "EventEx",
            Some("esx.audit.account.locked"),
            "warning",
            kind.to_string(),
        ),
        EventKind::Crashed | EventKind::PowerCut { .. } if vcenter => (
            "HostConnectionLostEvent",
            None,
            "error",
            format!("{dc_host} is not responding"),
        ),
        _ => return None,
    };
    let mut d = Data::new(ty)
        .with("key", key as i32)
        .with("chainId", key as i32)
        .with("createdTime", at)
        .with("userName", "")
        .with(
            "datacenter",
            Data::new("DatacenterEventArgument")
                .with("name", a.datacenter_name.as_str())
                .with("datacenter", a.lineage[3].clone()),
        )
        .with(
            "computeResource",
            Data::new("ComputeResourceEventArgument")
                .with("name", a.compute_name.as_str())
                .with("computeResource", a.lineage[1].clone()),
        )
        .with(
            "host",
            Data::new("HostEventArgument")
                .with("name", a.host_name.as_str())
                .with("host", a.lineage[0].clone()),
        )
        .with("fullFormattedMessage", msg.as_str());
    match (ty, ex) {
        ("EventEx", Some(id)) => {
            d = d
                .with("eventTypeId", id)
                .with("severity", category)
                .with("message", msg.as_str())
                .with("objectId", a.lineage[0].id.as_str())
                .with("objectType", "HostSystem")
                .with("objectName", a.host_name.as_str());
        }
        ("GeneralHostInfoEvent", _) => d = d.with("message", msg.as_str()),
        _ => {}
    }
    Some(ApiEvent {
        key,
        at,
        lineage: a.lineage.clone(),
        type_id: ex.unwrap_or(ty).to_string(),
        category,
        data: d,
    })
}

/// The wire types this module sends, with vCenter's description of each (`description.eventInfo`:
/// govc reads it for an event's category).
const KINDS: &[(&str, &str, &str, &str)] = &[
    (
        "EnteredMaintenanceModeEvent",
        "Entered maintenance mode",
        "info",
        "Host {host.name} in {datacenter.name} has entered maintenance mode",
    ),
    (
        "ExitMaintenanceModeEvent",
        "Exit maintenance mode",
        "info",
        "Host {host.name} in {datacenter.name} has exited maintenance mode",
    ),
    (
        "GeneralHostInfoEvent",
        "Host information",
        "info",
        "General event: {message}",
    ),
    (
        "HostConnectionLostEvent",
        "Host connection lost",
        "error",
        "Host {host.name} in {datacenter.name} is not responding",
    ),
    ("EventEx", "Event", "info", "{message}"),
];

// ---- the events of an endpoint -------------------------------------------------------------

/// A host's events as its own hostd reports them: since its last boot.
fn host_events(vim: &Vim) -> Vec<ApiEvent> {
    let h = &vim.host;
    let log = h.events();
    let first_key = log.total() as i64 - log.iter().len() as i64 + 1;
    let since = log
        .iter()
        .rposition(|e| matches!(e.kind, EventKind::Booted { .. }))
        .unwrap_or(0);
    let name = h.hostname();
    let a = Args {
        lineage: history_collector::lineage(None),
        host_name: name.clone(),
        compute_name: name,
        datacenter_name: super::ids::DATACENTER.into(),
    };
    log.iter()
        .enumerate()
        .skip(since)
        .filter_map(|(i, e)| convert(&e.kind, e.at, first_key + i as i64, &a, false))
        .collect()
}

/// The hosts a filter can reach on a vCenter (all of them unless it names one host).
fn vcenter_hosts(est: &vcenter::Estate, f: &Filter) -> Vec<usize> {
    if let Some(EntityFilter { entity: e, .. }) = &f.entity {
        if e.ty == "HostSystem" {
            return vcenter::host_index_of(&e.id)
                .filter(|i| *i < est.hosts.len())
                .into_iter()
                .collect();
        }
    }
    (0..est.hosts.len()).collect()
}

/// A vCenter's events: every host's, merged by time. Keys count the events evicted from the
/// hosts' logs too, so a key stays with its event while the logs roll on.
fn vcenter_events(vim: &Vim, est: &vcenter::Estate, f: &Filter) -> Vec<ApiEvent> {
    let mut all: Vec<(SimTime, usize, u64, ApiEvent)> = Vec::new();
    let mut evicted = 0i64;
    for i in vcenter_hosts(est, f) {
        let a = Args {
            lineage: history_collector::lineage(Some(i)),
            host_name: est.hosts[i].name.clone(),
            compute_name: vcenter::cluster_name(i),
            datacenter_name: est.datacenter_name.clone(),
        };
        let (gone, evs) = est.read_host(vim, i, |h| {
            let log = h.host.events();
            let gone = log.total() - log.iter().len() as u64;
            let evs: Vec<_> = log
                .iter()
                .enumerate()
                .filter_map(|(n, e)| {
                    let ev = convert(&e.kind, e.at, 0, &a, true)?;
                    Some((e.at, i, n as u64, ev))
                })
                .collect();
            (gone, evs)
        });
        evicted += gone as i64;
        all.extend(evs);
    }
    all.sort_by_key(|x| (x.0, x.1, x.2));
    all.into_iter()
        .enumerate()
        .map(|(n, (_, _, _, mut ev))| {
            ev.key = evicted + n as i64 + 1;
            ev.data.fields[0].1 = Value::Int(ev.key as i32);
            ev.data.fields[1].1 = Value::Int(ev.key as i32);
            ev
        })
        .collect()
}

/// Every event the endpoint has, oldest first: what its own log file tells
/// ([`super::diagnostic_manager`]).
pub(crate) fn all_events(vim: &Vim) -> Vec<ApiEvent> {
    matching(vim, &Filter::default())
}

/// The endpoint's events that pass the filter, oldest first.
fn matching(vim: &Vim, f: &Filter) -> Vec<ApiEvent> {
    let evs = match &vim.estate {
        Some(est) => vcenter_events(vim, est, f),
        None => host_events(vim),
    };
    evs.into_iter().filter(|e| f.admits(e)).collect()
}

impl Filter {
    fn admits(&self, e: &ApiEvent) -> bool {
        if self.entity.as_ref().is_some_and(|f| !f.admits(&e.lineage)) {
            return false;
        }
        if self.begin.is_some_and(|b| e.at < b) || self.end.is_some_and(|t| e.at > t) {
            return false;
        }
        if !self.type_ids.is_empty() && !self.type_ids.contains(&e.type_id) {
            return false;
        }
        if !self.categories.is_empty() && !self.categories.iter().any(|c| c == e.category) {
            return false;
        }
        true
    }

    /// Reads an EventFilterSpec; references must exist, values must parse.
    fn parse(vim: &Vim, req: &Call, el: Option<&Param>, session: &str) -> Result<Filter, Fault> {
        let mut f = Filter {
            max_count: MAX_PAGE as usize,
            ..Filter::default()
        };
        let Some(el) = el else { return Ok(f) };
        if let Some(m) = el.child("maxCount") {
            f.max_count = parse_int(m)
                .map_err(|e| bad_param(req, e))?
                .clamp(1, MAX_PAGE) as usize;
        }
        let mut spec = Data::new("EventFilterSpec");
        if let Some(ent) = el.child("entity") {
            let ef = EntityFilter::parse(vim, req, ent, session, "EventFilterSpecRecursionOption")?;
            spec = spec.with(
                "entity",
                Data::new("EventFilterSpecByEntity")
                    .with("entity", ef.entity.clone())
                    .with(
                        "recursion",
                        Value::enumerated("EventFilterSpecRecursionOption", ef.recursion),
                    ),
            );
            f.entity = Some(ef);
        }
        if let Some(t) = el.child("time") {
            f.begin = time_bound(t, "beginTime")?;
            f.end = time_bound(t, "endTime")?;
            spec = spec.with(
                "time",
                Data::new("EventFilterSpecByTime")
                    .opt("beginTime", f.begin)
                    .opt("endTime", f.end),
            );
        }
        // `type` is the pre-4.0 spelling of `eventTypeId` (type names only).
        for n in ["type", "eventTypeId"] {
            f.type_ids
                .extend(el.all(n).map(|t| t.text.trim().to_string()));
        }
        f.categories = el
            .all("category")
            .map(|c| c.text.trim().to_string())
            .collect();
        if !f.categories.is_empty() {
            spec = spec.with("category", Value::strings(f.categories.clone()));
        }
        if !f.type_ids.is_empty() {
            spec = spec.with("eventTypeId", Value::strings(f.type_ids.clone()));
        }
        f.spec = Some(spec);
        Ok(f)
    }
}

// ---- calls ---------------------------------------------------------------------------------

fn collector<'a>(vim: &'a mut Vim, req: &Call) -> Result<&'a mut Collector, Fault> {
    vim.event_collectors
        .get_mut(&req.this.id)
        .ok_or_else(|| not_found(&req.this))
}

fn keys(evs: &[ApiEvent]) -> Vec<i64> {
    evs.iter().map(|e| e.key).collect()
}

fn events_value(evs: impl IntoIterator<Item = ApiEvent>) -> Value {
    Value::Array("Event", evs.into_iter().map(|e| e.data.into()).collect())
}

pub fn call(vim: &mut Vim, ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    let session = ctx.session.clone().unwrap_or_default();
    match (req.this.ty.as_str(), req.method.as_str()) {
        ("EventManager", "QueryEvents") => {
            let f = Filter::parse(vim, req, req.param("filter"), &session)?;
            let mut evs = matching(vim, &f);
            if evs.len() > f.max_count {
                evs.drain(..evs.len() - f.max_count);
            }
            evs.reverse();
            Ok(Some(events_value(evs)))
        }
        ("EventManager", "CreateCollectorForEvents") => {
            let f = Filter::parse(vim, req, Some(super::required(req, "filter")?), &session)?;
            let mine = vim
                .event_collectors
                .values()
                .filter(|c| c.session == session)
                .count();
            if mine >= MAX_COLLECTORS {
                return Err(super::limits::too_many("event collectors", MAX_COLLECTORS));
            }
            let scroll = Scroll::new(&keys(&matching(vim, &f)));
            vim.seq += 1;
            let id = format!("session[{session}]{:x}", vim.seq);
            vim.event_collectors.insert(
                id.clone(),
                Collector {
                    session,
                    filter: f,
                    scroll,
                },
            );
            Ok(Some(moref("EventHistoryCollector", &id).into()))
        }
        ("EventManager", "PostEvent" | "LogUserEvent" | "RetrieveArgumentDescription") => {
            Err(Fault::new(
                "NotSupported",
                format!("{} is not supported by this simulator", req.method),
            ))
        }
        (
            "EventHistoryCollector",
            "SetCollectorPageSize"
            | "RewindCollector"
            | "ResetCollector"
            | "ReadNextEvents"
            | "ReadPreviousEvents",
        ) => {
            let c = collector(vim, req)?;
            let (f, mut scroll) = (c.filter.clone(), c.scroll.clone());
            let step = scroll.call(req, "Events", || matching(vim, &f), |e| e.key);
            let Some(step) = step else {
                return Err(method_not_found(req));
            };
            let step = step?;
            collector(vim, req)?.scroll = scroll;
            Ok(match step {
                Step::Done => None,
                Step::Items(evs) => Some(events_value(evs)),
            })
        }
        ("EventHistoryCollector", "DestroyCollector") => {
            vim.event_collectors.remove(&req.this.id);
            Ok(None)
        }
        _ => Err(method_not_found(req)),
    }
}

/// EventManager's properties: the description govc reads, the newest event (built only when
/// asked for: on a vCenter it reads every host), the collector cap.
pub fn properties(vim: &Vim, wanted: Option<&[&str]>) -> Data {
    let categories = ["info", "warning", "error", "user"]
        .iter()
        .map(|c| {
            let label = format!("{}{}", c[..1].to_uppercase(), &c[1..]);
            Data::new("ElementDescription")
                .with("label", label.as_str())
                .with("summary", label.as_str())
                .with("key", *c)
                .into()
        })
        .collect();
    let info = KINDS
        .iter()
        .map(|(key, desc, cat, full)| {
            Data::new("EventDescriptionEventDetail")
                .with("key", *key)
                .with("description", *desc)
                .with("category", *cat)
                .with("formatOnDatacenter", "")
                .with("formatOnComputeResource", "")
                .with("formatOnHost", "")
                .with("formatOnVm", "")
                .with("fullFormat", *full)
                .into()
        })
        .collect();
    let latest = wanted
        .is_none_or(|w| w.contains(&"latestEvent"))
        .then(|| matching(vim, &Filter::default()).pop())
        .flatten();
    Data::new("EventManager")
        .with(
            "description",
            Data::new("EventDescription")
                .with("category", Value::Array("ElementDescription", categories))
                .with(
                    "eventInfo",
                    Value::Array("EventDescriptionEventDetail", info),
                ),
        )
        .opt("latestEvent", latest.map(|e| e.data))
        .with("maxCollector", MAX_COLLECTORS as i32)
}

/// A collector's properties (its session's only).
pub fn collector_properties(vim: &Vim, id: &str) -> Option<Data> {
    let c = vim.event_collectors.get(id)?;
    let evs = c.scroll.latest(matching(vim, &c.filter));
    Some(
        Data::new("EventHistoryCollector")
            .with(
                "filter",
                c.filter
                    .spec
                    .clone()
                    .unwrap_or_else(|| Data::new("EventFilterSpec")),
            )
            .with("latestPage", events_value(evs)),
    )
}
