//! HistoryCollector, the base of EventHistoryCollector and TaskHistoryCollector: a latest page
//! and a scrollable view over a list of items ordered by key, oldest first.
//!
//! The API reference's model: `latestPage` holds the newest `SetCollectorPageSize` items
//! (default 10); the scrollable view starts just before the latest page; `ReadNext*` reads
//! forward from it, `ReadPrevious*` backward (each moves the view past what it read; nothing is
//! returned at either end); `RewindCollector` moves the view before the oldest item,
//! `ResetCollector` just before the latest page again. Reads return items oldest first. The
//! items are recomputed at each call from what the endpoint holds now, so the view is a key,
//! not an index.

use super::{bad_param, moref, not_found, vcenter, Vim};
use crate::api::call::{parse_int, parse_moref};
use crate::api::{Call, Param};
use crate::api::{Fault, MoRef};
use crate::clock::SimTime;

/// EventManager.maxCollector and TaskManager.maxCollector: collectors per session (vSphere's
/// documented limit).
pub const MAX_COLLECTORS: usize = 32;
/// The latest page's size until SetCollectorPageSize.
pub const DEFAULT_PAGE: usize = 10;
/// The most a page or one read may hold.
pub const MAX_PAGE: i64 = 1000;

/// A collector's page size and where its scrollable view is.
#[derive(Clone, Debug)]
pub struct Scroll {
    pub page_size: usize,
    /// The view sits after the item with this key (0: before the first).
    cursor: i64,
}

/// What a collector call asks of its items.
pub enum Step<T> {
    /// The call changed the collector only.
    Done,
    /// Items to answer with, oldest first.
    Items(Vec<T>),
}

impl Scroll {
    /// A new collector over `keys` (oldest first): the view just before the latest page.
    pub fn new(keys: &[i64]) -> Scroll {
        let mut s = Scroll {
            page_size: DEFAULT_PAGE,
            cursor: 0,
        };
        s.reset(keys);
        s
    }

    /// The latest page of `items` (oldest first), newest first as `latestPage` shows it.
    pub fn latest<T>(&self, mut items: Vec<T>) -> Vec<T> {
        if items.len() > self.page_size {
            items.drain(..items.len() - self.page_size);
        }
        items.reverse();
        items
    }

    fn reset(&mut self, keys: &[i64]) {
        let start = keys.len().saturating_sub(self.page_size);
        self.cursor = match start {
            0 => 0,
            s => keys[s - 1],
        };
    }

    /// Answers the HistoryCollector methods (`Tasks`/`Events` in the read methods' names is
    /// the caller's `noun`) over `items`, oldest first, keyed by `key`. None: not one of them.
    pub fn call<T>(
        &mut self,
        req: &Call,
        noun: &str,
        items: impl FnOnce() -> Vec<T>,
        key: impl Fn(&T) -> i64,
    ) -> Option<Result<Step<T>, Fault>> {
        let m = req.method.as_str();
        let r = match m {
            "SetCollectorPageSize" => count(req).map(|n| {
                self.page_size = n as usize;
                Step::Done
            }),
            "RewindCollector" => {
                self.cursor = 0;
                Ok(Step::Done)
            }
            "ResetCollector" => {
                let keys: Vec<i64> = items().iter().map(&key).collect();
                self.reset(&keys);
                Ok(Step::Done)
            }
            _ if m == format!("ReadNext{noun}") => count(req).map(|n| {
                let cursor = self.cursor;
                let page: Vec<T> = items()
                    .into_iter()
                    .filter(|i| key(i) > cursor)
                    .take(n.max(1) as usize)
                    .collect();
                if let Some(last) = page.last() {
                    self.cursor = key(last);
                }
                Step::Items(page)
            }),
            _ if m == format!("ReadPrevious{noun}") => count(req).map(|n| {
                let cursor = self.cursor;
                let mut before: Vec<T> = items().into_iter().filter(|i| key(i) <= cursor).collect();
                let page = before.split_off(before.len().saturating_sub(n.max(1) as usize));
                if let Some(first) = page.first() {
                    self.cursor = key(first) - 1;
                }
                Step::Items(page)
            }),
            _ => return None,
        };
        Some(r)
    }
}

/// `maxCount`: 0 to [`MAX_PAGE`], else InvalidArgument.
fn count(req: &Call) -> Result<i64, Fault> {
    let el = super::required(req, "maxCount")?;
    let n = parse_int(el).map_err(|m| bad_param(req, m))?;
    if !(0..=MAX_PAGE).contains(&n) {
        return Err(Fault::invalid_argument(
            format!("maxCount must be between 0 and {MAX_PAGE}, not {n}"),
            Some("maxCount"),
        ));
    }
    Ok(n)
}

/// A filter spec's `entity` (EventFilterSpecByEntity, TaskFilterSpecByEntity): an object and how
/// far below it an item's host may be.
#[derive(Clone, Debug)]
pub struct EntityFilter {
    pub entity: MoRef,
    /// `self`, `children` or `all`, as sent.
    pub recursion: &'static str,
}

impl EntityFilter {
    /// Reads `<entity><entity type=..>id</entity><recursion>..</recursion></entity>`; the object
    /// must exist for the session and the recursion be one of the enum's (`kind`: its type name,
    /// `EventFilterSpecRecursionOption` or `TaskFilterSpecRecursionOption`).
    pub fn parse(
        vim: &Vim,
        req: &Call,
        ent: &Param,
        session: &str,
        kind: &str,
    ) -> Result<EntityFilter, Fault> {
        let e = ent
            .child("entity")
            .ok_or_else(|| bad_param(req, "the filter's entity needs an <entity>".into()))?;
        let entity = parse_moref(e).map_err(|m| bad_param(req, m))?;
        if !vim.exists(&entity, Some(session)) {
            return Err(not_found(&entity));
        }
        let recursion = match ent.child_text("recursion").unwrap_or("all") {
            "self" => "self",
            "children" => "children",
            "all" => "all",
            other => {
                return Err(Fault::invalid_argument(
                    format!("'{other}' is not a {kind} (self, children, all)"),
                    Some("filter.entity.recursion"),
                ))
            }
        };
        Ok(EntityFilter { entity, recursion })
    }

    /// Whether an item about the host whose lineage (the host, then its ancestors, nearest
    /// first) is `lineage` is at or below the entity as far as the recursion reaches.
    pub fn admits(&self, lineage: &[MoRef]) -> bool {
        let reach = match self.recursion {
            "self" => 1,
            "children" => 2,
            _ => lineage.len(),
        };
        lineage.iter().take(reach).any(|r| *r == self.entity)
    }
}

/// A filter spec's time bound `name` (`beginTime`, `endTime`) inside `time`, if given.
pub fn time_bound(time: &Param, name: &str) -> Result<Option<SimTime>, Fault> {
    match time.child_text(name) {
        None => Ok(None),
        Some(s) => crate::clock::parse_xsd_datetime(s)
            .map(Some)
            .ok_or_else(|| {
                Fault::invalid_argument(
                    format!("'{s}' is not an xsd:dateTime"),
                    Some(&format!("filter.time.{name}")),
                )
            }),
    }
}

/// Host `i`'s lineage on an endpoint (a standalone host: None), nearest first: the host, its
/// compute resource or cluster, the host folder, the datacenter, the root folder.
pub fn lineage(i: Option<usize>) -> Vec<MoRef> {
    match i {
        None => vec![
            moref("HostSystem", super::ids::HOST),
            moref("ComputeResource", super::ids::COMPUTE_RESOURCE),
            moref("Folder", super::ids::HOST_FOLDER),
            moref("Datacenter", super::ids::DATACENTER),
            moref("Folder", super::ids::ROOT_FOLDER),
        ],
        Some(i) => vec![
            vcenter::host_ref(i),
            vcenter::compute_of(i),
            moref("Folder", vcenter::ids::HOST_FOLDER),
            moref("Datacenter", vcenter::ids::DATACENTER),
            moref("Folder", vcenter::ids::ROOT_FOLDER),
        ],
    }
}
