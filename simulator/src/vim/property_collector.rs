//! PropertyCollector: how every client reads state.
//!
//! - `Fetch(_this, prop)`: the internal method pyVmomi uses for every property access.
//! - `RetrieveProperties` / `RetrievePropertiesEx` / `ContinueRetrievePropertiesEx`: ObjectSpecs
//!   expanded through TraversalSpecs (and SelectionSpec references by name), PropertySpecs with
//!   `all` or nested `pathSet`s (`config.product.version`), paged by `maxObjects`.
//! - `CreateFilter` / `WaitForUpdates` / `WaitForUpdatesEx` / `CheckForUpdates` /
//!   `CancelWaitForUpdates` / `DestroyPropertyFilter`: each filter remembers what it last
//!   reported; an update set is the difference to now. A wait with nothing to report is
//!   answered later, which is how `pyVim.task.WaitForTask` waits: it is handed back as
//!   [`super::Pending`], with the horizon of what its filters read, and the server asks again
//!   when something changed or the horizon is reached ([`super::changes`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use super::{bad_param, is_a, method_not_found, moref, not_found, required, Ctx, Vim};
use crate::api::call::{parse_bool, parse_int, parse_moref};
use crate::api::{Call, Param};
use crate::api::{Data, Fault, MoRef, Value};
use crate::secret;

/// Deepest traversal followed (the inventory is shallow; this stops hostile specs).
const MAX_TRAVERSAL_DEPTH: usize = 32;

#[derive(Clone, Debug, PartialEq)]
pub struct PropSpec {
    pub ty: String,
    pub all: bool,
    pub paths: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Selection {
    Traversal {
        name: Option<String>,
        ty: String,
        path: String,
        skip: bool,
        select: Vec<Selection>,
    },
    Named(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ObjSpec {
    pub obj: MoRef,
    pub skip: bool,
    pub select: Vec<Selection>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FilterSpec {
    pub props: Vec<PropSpec>,
    pub objects: Vec<ObjSpec>,
}

/// One object's properties: name → value.
type Props = BTreeMap<String, Value>;
/// What a filter last reported: object → its properties.
type Snapshot = BTreeMap<MoRef, Props>;

#[derive(Clone, Debug)]
pub struct Filter {
    pub session: String,
    /// The PropertyCollector it belongs to: the endpoint's own, or one the session created.
    pub collector: String,
    pub spec: FilterSpec,
    pub partial_updates: bool,
    pub last: Option<Snapshot>,
}

/// Results RetrievePropertiesEx did not return yet, for ContinueRetrievePropertiesEx.
#[derive(Clone, Debug)]
pub struct Page {
    pub session: String,
    pub rest: Vec<Data>,
    pub max: usize,
    /// When it was made (`Vim::seq`): the oldest go first at the caps ([`super::limits`]).
    pub made: u64,
}

// ---- parsing -------------------------------------------------------------------------------

fn parse_selection(el: &Param) -> Result<Selection, String> {
    let name = el.child_text("name").map(str::to_string);
    let is_traversal = el.declared_type.as_deref() == Some("TraversalSpec")
        || (el.child("type").is_some() && el.child("path").is_some());
    if is_traversal {
        Ok(Selection::Traversal {
            name,
            ty: el
                .child_text("type")
                .ok_or("TraversalSpec without type")?
                .to_string(),
            path: el
                .child_text("path")
                .ok_or("TraversalSpec without path")?
                .to_string(),
            skip: el
                .child("skip")
                .map(parse_bool)
                .transpose()?
                .unwrap_or(false),
            select: el
                .all("selectSet")
                .map(parse_selection)
                .collect::<Result<_, _>>()?,
        })
    } else {
        Ok(Selection::Named(
            name.ok_or("SelectionSpec without a name")?,
        ))
    }
}

pub fn parse_filter_spec(el: &Param) -> Result<FilterSpec, String> {
    let props = el
        .all("propSet")
        .map(|p| {
            Ok(PropSpec {
                ty: p
                    .child_text("type")
                    .ok_or("PropertySpec without type")?
                    .to_string(),
                all: p.child("all").map(parse_bool).transpose()?.unwrap_or(false),
                paths: p
                    .all("pathSet")
                    .map(|x| x.text.trim().to_string())
                    .collect(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let objects = el
        .all("objectSet")
        .map(|o| {
            Ok(ObjSpec {
                obj: parse_moref(o.child("obj").ok_or("ObjectSpec without obj")?)?,
                skip: o
                    .child("skip")
                    .map(parse_bool)
                    .transpose()?
                    .unwrap_or(false),
                select: o
                    .all("selectSet")
                    .map(parse_selection)
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if props.is_empty() || objects.is_empty() {
        return Err("a PropertyFilterSpec needs at least one propSet and one objectSet".into());
    }
    Ok(FilterSpec { props, objects })
}

// ---- evaluation ----------------------------------------------------------------------------

fn collect_named<'a>(sels: &'a [Selection], out: &mut HashMap<&'a str, &'a Selection>) {
    for s in sels {
        if let Selection::Traversal { name, select, .. } = s {
            if let Some(n) = name {
                out.entry(n.as_str()).or_insert(s);
            }
            collect_named(select, out);
        }
    }
}

/// The objects a spec selects, in the order first reached.
fn objects(vim: &Vim, spec: &FilterSpec, session: Option<&str>) -> Result<Vec<MoRef>, Fault> {
    let mut named = HashMap::new();
    for o in &spec.objects {
        collect_named(&o.select, &mut named);
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut walked = BTreeSet::new();
    for o in &spec.objects {
        if !vim.exists(&o.obj, session) {
            return Err(not_found(&o.obj));
        }
        visit(
            vim,
            session,
            &o.obj,
            o.skip,
            &o.select,
            &named,
            &mut out,
            &mut seen,
            &mut walked,
            0,
        );
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn visit(
    vim: &Vim,
    session: Option<&str>,
    obj: &MoRef,
    skip: bool,
    select: &[Selection],
    named: &HashMap<&str, &Selection>,
    out: &mut Vec<MoRef>,
    seen: &mut BTreeSet<MoRef>,
    walked: &mut BTreeSet<(MoRef, usize)>,
    depth: usize,
) {
    if !skip && seen.insert(obj.clone()) {
        out.push(obj.clone());
    }
    if depth >= MAX_TRAVERSAL_DEPTH {
        return;
    }
    // Built at most once per object however many traversals start from it.
    let mut props: Option<Option<Value>> = None;
    for sel in select {
        let ts = match sel {
            Selection::Named(n) => match named.get(n.as_str()) {
                Some(t) => *t,
                None => continue,
            },
            t => t,
        };
        let Selection::Traversal {
            ty,
            path,
            skip,
            select,
            ..
        } = ts
        else {
            continue;
        };
        // The same traversal from the same object gives the same objects: walk it once.
        if !walked.insert((obj.clone(), ts as *const Selection as usize)) || !is_a(&obj.ty, ty) {
            continue;
        }
        let Some(v) = props.get_or_insert_with(|| vim.properties(obj, session).map(Value::Data))
        else {
            continue;
        };
        let parts: Vec<&str> = path.split('.').collect();
        for target in refs_in(v.at_path(&parts)) {
            if vim.exists(&target, session) {
                visit(
                    vim,
                    session,
                    &target,
                    *skip,
                    select,
                    named,
                    out,
                    seen,
                    walked,
                    depth + 1,
                );
            }
        }
    }
}

fn refs_in(v: Option<&Value>) -> Vec<MoRef> {
    match v {
        Some(Value::Ref(r)) => vec![r.clone()],
        Some(Value::Array(_, items)) => items.iter().flat_map(|i| refs_in(Some(i))).collect(),
        Some(Value::Any(v)) => refs_in(Some(v)),
        _ => Vec::new(),
    }
}

/// The requested properties of one object; None when no PropertySpec names its type.
fn object_props(
    vim: &Vim,
    session: Option<&str>,
    obj: &MoRef,
    props: &[PropSpec],
) -> Option<BTreeMap<String, Value>> {
    let specs: Vec<&PropSpec> = props.iter().filter(|p| is_a(&obj.ty, &p.ty)).collect();
    if specs.is_empty() {
        return None;
    }
    // Build only the top-level properties asked for, unless some spec wants them all.
    let wanted: Option<Vec<&str>> = (!specs.iter().any(|s| s.all)).then(|| {
        let mut w: Vec<&str> = specs
            .iter()
            .flat_map(|s| s.paths.iter())
            .map(|p| p.split('.').next().unwrap_or(p))
            .collect();
        w.sort_unstable();
        w.dedup();
        w
    });
    let root = Value::Data(vim.properties_only(obj, session, wanted.as_deref())?);
    let Value::Data(data) = &root else {
        unreachable!("built as data just above")
    };
    let mut out = BTreeMap::new();
    for s in specs {
        if s.all {
            for (k, v) in &data.fields {
                out.insert(k.to_string(), v.clone());
            }
        }
        for p in &s.paths {
            let parts: Vec<&str> = p.split('.').collect();
            if let Some(v) = root.at_path(&parts) {
                out.insert(p.clone(), v.clone());
            }
        }
    }
    Some(out)
}

/// The objects a spec selects with their properties, in traversal order: each start object,
/// then what its traversals reach, as first reached. RetrieveProperties answers in this order
/// (hostd and vpxd do), and govmomi's `mo.Ancestors` needs it: it takes the first object with
/// no parent as the root, so a root folder listed before the entities below it would be added
/// twice and give paths like `/Datacenter/Datacenter` (issue 13).
fn collect(
    vim: &Vim,
    session: Option<&str>,
    spec: &FilterSpec,
) -> Result<Vec<(MoRef, Props)>, Fault> {
    Ok(objects(vim, spec, session)?
        .into_iter()
        .filter_map(|obj| {
            let p = object_props(vim, session, &obj, &spec.props)?;
            Some((obj, p))
        })
        .collect())
}

/// What a filter reports, by object (update sets compare snapshots).
fn snapshot(vim: &Vim, session: Option<&str>, spec: &FilterSpec) -> Result<Snapshot, Fault> {
    Ok(collect(vim, session, spec)?.into_iter().collect())
}

fn object_content(obj: &MoRef, props: &BTreeMap<String, Value>) -> Data {
    Data::new("ObjectContent").with("obj", obj.clone()).with(
        "propSet",
        Value::Array(
            "DynamicProperty",
            props
                .iter()
                .map(|(k, v)| {
                    Data::new("DynamicProperty")
                        .with("name", k.as_str())
                        .with("val", Value::any(v.clone()))
                        .into()
                })
                .collect(),
        ),
    )
}

/// One ObjectContent per object, however many specSets reach it (their properties merged, in
/// the order the objects were first reached): as a real PropertyCollector answers, and so that
/// repeating a specSet does not multiply the answer (issue 12).
fn retrieve(vim: &Vim, session: Option<&str>, req: &Call) -> Result<Vec<Data>, Fault> {
    let mut found: Vec<(MoRef, Props)> = Vec::new();
    let mut at: HashMap<MoRef, usize> = HashMap::new();
    let mut any = false;
    for el in req.params.all("specSet") {
        any = true;
        let spec = parse_filter_spec(el).map_err(|e| bad_param(req, e))?;
        for (obj, props) in collect(vim, session, &spec)? {
            match at.get(&obj) {
                Some(&i) => found[i].1.extend(props),
                None => {
                    at.insert(obj.clone(), found.len());
                    found.push((obj, props));
                }
            }
        }
    }
    if !any {
        return Err(required(req, "specSet").unwrap_err());
    }
    Ok(found
        .iter()
        .map(|(obj, props)| object_content(obj, props))
        .collect())
}

/// RetrieveProperties(Ex) without a session: answered, but every property asked of a start
/// object is missing with NotAuthenticated, and no traversal is followed (nothing is read).
/// This is how a client learns that a saved session cookie has expired: govmomi's
/// `session.Manager.UserSession` (govc's session cache) reads `currentSession` and takes a
/// missing NotAuthenticated for "log in again", but fails on a NotAuthenticated SOAP fault
/// (govc 0.24). vcsim answers the same way; facts section 3 only says calls need a session.
fn anonymous(req: &Call) -> Result<Option<Value>, Fault> {
    let mut items = Vec::new();
    for el in req.params.all("specSet") {
        let spec = parse_filter_spec(el).map_err(|e| bad_param(req, e))?;
        for o in &spec.objects {
            let missing: Vec<Value> = spec
                .props
                .iter()
                .filter(|p| p.ty == o.obj.ty)
                .flat_map(|p| &p.paths)
                .map(|path| {
                    let fault = Fault::not_authenticated()
                        .with("object", o.obj.clone())
                        .with("privilegeId", "System.Read");
                    Data::new("MissingProperty")
                        .with("path", path.as_str())
                        .with("fault", fault.localized())
                        .into()
                })
                .collect();
            if !o.skip && !missing.is_empty() {
                items.push(
                    Data::new("ObjectContent")
                        .with("obj", o.obj.clone())
                        .with("missingSet", Value::Array("MissingProperty", missing)),
                );
            }
        }
    }
    if items.is_empty() {
        return match req.method.as_str() {
            "RetrieveProperties" => Ok(Some(Value::Array("ObjectContent", Vec::new()))),
            _ => Ok(None),
        };
    }
    let items = Value::Array(
        "ObjectContent",
        items.into_iter().map(Value::Data).collect(),
    );
    Ok(Some(match req.method.as_str() {
        "RetrievePropertiesEx" => Data::new("RetrieveResult").with("objects", items).into(),
        "RetrieveProperties" => items,
        _ => return Err(Fault::not_authenticated().with("object", req.this.clone())),
    }))
}

// ---- the methods ---------------------------------------------------------------------------

pub fn fetch(vim: &mut Vim, ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    let prop = required(req, "prop")?.text.trim().to_string();
    let data = vim
        .properties(&req.this, ctx.session.as_deref())
        .ok_or_else(|| not_found(&req.this))?;
    let parts: Vec<&str> = prop.split('.').collect();
    Ok(Value::Data(data).at_path(&parts).cloned().map(Value::any))
}

pub fn call(vim: &mut Vim, ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    let Some(session) = ctx.session.clone() else {
        return anonymous(req);
    };
    match (req.this.ty.as_str(), req.method.as_str()) {
        ("PropertyCollector", "RetrieveProperties") => {
            let items = retrieve(vim, Some(&session), req)?;
            Ok(Some(Value::Array(
                "ObjectContent",
                items.into_iter().map(Value::Data).collect(),
            )))
        }
        ("PropertyCollector", "RetrievePropertiesEx") => {
            let items = retrieve(vim, Some(&session), req)?;
            let max = match req.param("options").and_then(|o| o.child("maxObjects")) {
                Some(m) => parse_int(m).map_err(|e| bad_param(req, e))?,
                None => 0,
            };
            let max = if max <= 0 { usize::MAX } else { max as usize };
            Ok(page(vim, &session, items, max))
        }
        ("PropertyCollector", "ContinueRetrievePropertiesEx") => {
            let token = required(req, "token")?.text.trim().to_string();
            // Only the session that made a token can continue (or end) it.
            match vim.pages.get(&token).filter(|p| p.session == session) {
                Some(_) => {
                    let p = vim.pages.remove(&token).expect("found above");
                    Ok(page(vim, &session, p.rest, p.max))
                }
                None => Err(Fault::invalid_argument(
                    format!("unknown or finished retrieval token '{token}'"),
                    Some("token"),
                )),
            }
        }
        ("PropertyCollector", "CancelRetrievePropertiesEx") => {
            let token = required(req, "token")?.text.trim().to_string();
            if vim.pages.get(&token).is_some_and(|p| p.session == session) {
                vim.pages.remove(&token);
            }
            Ok(None)
        }
        ("PropertyCollector", "CreateFilter") => {
            let spec = parse_filter_spec(required(req, "spec")?).map_err(|e| bad_param(req, e))?;
            let limit = vim.cfg.limits.filters_per_session;
            if vim
                .filters
                .values()
                .filter(|f| f.session == session)
                .count()
                >= limit
            {
                return Err(super::limits::too_many("property filters", limit));
            }
            // Objects that do not exist fail now, as hostd's CreateFilter does.
            objects(vim, &spec, Some(&session))?;
            let partial = match req.param("partialUpdates") {
                Some(p) => parse_bool(p).map_err(|e| bad_param(req, e))?,
                None => false,
            };
            vim.seq += 1;
            let id = format!("session[{}]{:x}", session, vim.seq);
            vim.filters.insert(
                id.clone(),
                Filter {
                    session: session.clone(),
                    collector: req.this.id.clone(),
                    spec,
                    partial_updates: partial,
                    last: None,
                },
            );
            Ok(Some(moref("PropertyFilter", &id).into()))
        }
        // A collector of the session's own (govmomi's `property.Wait` makes one per wait), with
        // its own filters and versions; it ends with the session.
        ("PropertyCollector", "CreatePropertyCollector") => {
            let limit = vim.cfg.limits.collectors_per_session;
            if vim.collectors.values().filter(|s| **s == session).count() >= limit {
                return Err(super::limits::too_many("property collectors", limit));
            }
            vim.seq += 1;
            let id = format!("session[{}]{:x}", session, vim.seq);
            vim.collectors.insert(id.clone(), session.clone());
            Ok(Some(moref("PropertyCollector", &id).into()))
        }
        ("PropertyCollector", "DestroyPropertyCollector") => {
            if vim.collectors.remove(&req.this.id).is_none() {
                // The endpoint's own collector is not the session's to destroy [inferred fault].
                return Err(Fault::new(
                    "NotSupported",
                    "The operation is not supported on the object.",
                ));
            }
            let id = req.this.id.clone();
            vim.filters.retain(|_, f| f.collector != id);
            vim.collector_versions.retain(|(_, c), _| *c != id);
            Ok(None)
        }
        ("PropertyFilter", "DestroyPropertyFilter") => {
            vim.filters.remove(&req.this.id);
            Ok(None)
        }
        ("PropertyCollector", "CancelWaitForUpdates") => {
            if let Some(s) = super::session_manager::session_by_key_mut(vim, &session) {
                s.cancel_wait = true;
            }
            Ok(None)
        }
        ("PropertyCollector", m @ ("WaitForUpdates" | "WaitForUpdatesEx" | "CheckForUpdates")) => {
            let version = req
                .param("version")
                .map(|v| v.text.trim().to_string())
                .unwrap_or_default();
            let max_wait = match m {
                "CheckForUpdates" => Some(Duration::ZERO),
                "WaitForUpdates" => None,
                _ => match req.param("options").and_then(|o| o.child("maxWaitSeconds")) {
                    Some(w) => Some(Duration::from_secs(
                        parse_int(w).map_err(|e| bad_param(req, e))?.max(0) as u64,
                    )),
                    None => None,
                },
            };
            if let Some(s) = super::session_manager::session_by_key_mut(vim, &session) {
                // A cancel only ends a wait in progress: a fresh call forgets an old one.
                let cancelled = std::mem::take(&mut s.cancel_wait);
                if cancelled && ctx.retry {
                    return Err(Fault::new("RequestCanceled", "The request was canceled."));
                }
            }
            let key = (session.clone(), req.this.id.clone());
            let current = vim.collector_versions.get(&key).copied().unwrap_or(0);
            if !version.is_empty() && version != current.to_string() {
                return Err(Fault::new(
                    "InvalidCollectorVersion",
                    format!("collector version '{version}' was not issued (current: {current})"),
                ));
            }
            // What the filters read is noted afresh: it says when they change by time alone.
            vim.take_horizon();
            match updates(vim, &session, &req.this.id, &version)? {
                Some(set) => Ok(Some(set.into())),
                None if max_wait == Some(Duration::ZERO) => Ok(None),
                None => {
                    let mut horizon = vim.take_horizon();
                    horizon.event(vim.next_due());
                    // A waiting session is in use: it looks again before it could time out.
                    let keepalive = (vim.cfg.session_timeout / 2).max(Duration::from_secs(1));
                    horizon.drift(Some(vim.now().plus(keepalive)));
                    ctx.pending = Some(super::Pending { max_wait, horizon });
                    Ok(None)
                }
            }
        }
        _ => Err(method_not_found(req)),
    }
}

fn page(vim: &mut Vim, session: &str, mut items: Vec<Data>, max: usize) -> Option<Value> {
    if items.is_empty() {
        return None;
    }
    let rest = if items.len() > max {
        items.split_off(max)
    } else {
        Vec::new()
    };
    let token = if rest.is_empty() {
        None
    } else {
        let t = secret::hex(16);
        vim.seq += 1;
        vim.pages.insert(
            t.clone(),
            Page {
                session: session.to_string(),
                rest,
                max,
                made: vim.seq,
            },
        );
        trim_pages(vim, session, &t);
        Some(t)
    };
    Some(
        Data::new("RetrieveResult")
            .opt("token", token)
            .with(
                "objects",
                Value::Array(
                    "ObjectContent",
                    items.into_iter().map(Value::Data).collect(),
                ),
            )
            .into(),
    )
}

/// Drops the oldest tokens beyond the session's and the endpoint's caps, never `keep` (the one
/// just handed out).
fn trim_pages(vim: &mut Vim, session: &str, keep: &str) {
    let limits = vim.cfg.limits.clone();
    let oldest = |vim: &Vim, of_session: bool| {
        vim.pages
            .iter()
            .filter(|(t, p)| *t != keep && (!of_session || p.session == session))
            .min_by_key(|(_, p)| p.made)
            .map(|(t, _)| t.clone())
    };
    while vim.pages.values().filter(|p| p.session == session).count() > limits.tokens_per_session {
        let Some(t) = oldest(vim, true) else { break };
        vim.pages.remove(&t);
    }
    while vim.pages.values().map(|p| p.rest.len()).sum::<usize>() > limits.token_objects {
        let Some(t) = oldest(vim, false) else { break };
        vim.pages.remove(&t);
    }
}

/// The difference between what each of the session's filters on `collector` last reported and
/// now.
fn updates(
    vim: &mut Vim,
    session: &str,
    collector: &str,
    version: &str,
) -> Result<Option<Data>, Fault> {
    let ids: Vec<String> = vim
        .filters
        .iter()
        .filter(|(_, f)| f.session == session && f.collector == collector)
        .map(|(id, _)| id.clone())
        .collect();
    let mut filter_updates = Vec::new();
    for id in ids {
        let (spec, last) = {
            let f = &vim.filters[&id];
            let last = if version.is_empty() {
                None
            } else {
                f.last.clone()
            };
            (f.spec.clone(), last)
        };
        let now = snapshot(vim, Some(session), &spec)?;
        let mut object_updates = Vec::new();
        for (obj, props) in &now {
            let before = last.as_ref().and_then(|l| l.get(obj));
            let (kind, changes): (&str, Vec<Value>) = match before {
                None => (
                    "enter",
                    props.iter().map(|(k, v)| change(k, Some(v))).collect(),
                ),
                Some(b) => {
                    let mut c: Vec<Value> = props
                        .iter()
                        .filter(|(k, v)| b.get(*k) != Some(*v))
                        .map(|(k, v)| change(k, Some(v)))
                        .collect();
                    c.extend(
                        b.keys()
                            .filter(|k| !props.contains_key(*k))
                            .map(|k| change(k, None)),
                    );
                    ("modify", c)
                }
            };
            if kind == "modify" && changes.is_empty() {
                continue;
            }
            object_updates.push(
                Data::new("ObjectUpdate")
                    .with("kind", kind)
                    .with("obj", obj.clone())
                    .with("changeSet", Value::Array("PropertyChange", changes))
                    .into(),
            );
        }
        if let Some(l) = &last {
            for obj in l.keys().filter(|o| !now.contains_key(*o)) {
                object_updates.push(
                    Data::new("ObjectUpdate")
                        .with("kind", "leave")
                        .with("obj", obj.clone())
                        .into(),
                );
            }
        }
        if let Some(f) = vim.filters.get_mut(&id) {
            f.last = Some(now);
        }
        if !object_updates.is_empty() {
            filter_updates.push(
                Data::new("PropertyFilterUpdate")
                    .with("filter", moref("PropertyFilter", &id))
                    .with("objectSet", Value::Array("ObjectUpdate", object_updates))
                    .into(),
            );
        }
    }
    if filter_updates.is_empty() {
        return Ok(None);
    }
    let v = vim
        .collector_versions
        .entry((session.to_string(), collector.to_string()))
        .or_insert(0);
    *v += 1;
    Ok(Some(
        Data::new("UpdateSet").with("version", v.to_string()).with(
            "filterSet",
            Value::Array("PropertyFilterUpdate", filter_updates),
        ),
    ))
}

fn change(name: &str, v: Option<&Value>) -> Value {
    let d = Data::new("PropertyChange").with("name", name);
    match v {
        Some(v) => d
            .with("op", "assign")
            .with("val", Value::any(v.clone()))
            .into(),
        None => d.with("op", "remove").into(),
    }
}

pub fn properties(vim: &Vim, collector: &str, session: Option<&str>) -> Data {
    let filters = vim
        .filters
        .iter()
        .filter(|(_, f)| Some(f.session.as_str()) == session && f.collector == collector)
        .map(|(id, _)| moref("PropertyFilter", id));
    Data::new("PropertyCollector").with("filter", Value::refs(filters))
}

pub fn filter_properties(vim: &Vim, id: &str) -> Option<Data> {
    let f = vim.filters.get(id)?;
    Some(Data::new("PropertyFilter").with("partialUpdates", f.partial_updates))
}
