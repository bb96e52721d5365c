//! ViewManager, ContainerView and ListView. `CreateContainerView(container, type[], recursive)`
//! is the way govc and PowerCLI's `Get-View -ViewType HostSystem` find hosts; a container view's
//! `view` is computed when read, so it always reflects the inventory. `CreateListView(obj[])` is
//! a list the client keeps (govmomi's `property.Wait` and `govc tasks` watch tasks through one):
//! ModifyListView, ResetListView and ResetListViewFromView change it, and objects that no longer
//! exist drop out of `view` when it is read.

use super::{
    bad_param, is_a, method_not_found, moref, not_found, required, required_bool, Ctx, Vim,
};
use crate::api::call::parse_moref;
use crate::api::{Call, Data, Fault, MoRef, Value};

#[derive(Clone, Debug)]
pub struct View {
    pub session: String,
    pub kind: ViewKind,
}

#[derive(Clone, Debug)]
pub enum ViewKind {
    Container {
        container: MoRef,
        types: Vec<String>,
        recursive: bool,
    },
    List(Vec<MoRef>),
}

impl View {
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ViewKind::Container { .. } => "ContainerView",
            ViewKind::List(_) => "ListView",
        }
    }
}

/// Makes a view of this session, within the session's cap ([`super::limits`]).
fn add_view(vim: &mut Vim, session: String, kind: ViewKind) -> Result<MoRef, Fault> {
    let limit = vim.cfg.limits.views_per_session;
    if vim.views.values().filter(|v| v.session == session).count() >= limit {
        return Err(super::limits::too_many("views", limit));
    }
    vim.seq += 1;
    let id = format!("session[{}]{:x}", session, vim.seq);
    let view = View { session, kind };
    let r = moref(view.type_name(), &id);
    vim.views.insert(id, view);
    Ok(r)
}

/// The objects named in `name` elements; unknown ones are returned apart (ModifyListView and
/// ResetListView answer them as "unresolved").
fn objects(
    vim: &Vim,
    req: &Call,
    name: &str,
    session: &str,
) -> Result<(Vec<MoRef>, Vec<MoRef>), Fault> {
    let mut found = Vec::new();
    let mut unresolved = Vec::new();
    for el in req.params.all(name) {
        let r = parse_moref(el).map_err(|e| bad_param(req, e))?;
        if vim.exists(&r, Some(session)) {
            if !found.contains(&r) {
                found.push(r);
            }
        } else {
            unresolved.push(r);
        }
    }
    Ok((found, unresolved))
}

fn list_of<'a>(vim: &'a mut Vim, req: &Call) -> Result<&'a mut Vec<MoRef>, Fault> {
    match vim.views.get_mut(&req.this.id).map(|v| &mut v.kind) {
        Some(ViewKind::List(l)) => Ok(l),
        _ => Err(not_found(&req.this)),
    }
}

pub fn call(vim: &mut Vim, ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    let session = ctx.session.clone().unwrap_or_default();
    match (req.this.ty.as_str(), req.method.as_str()) {
        ("ViewManager", "CreateContainerView") => {
            let container =
                parse_moref(required(req, "container")?).map_err(|e| bad_param(req, e))?;
            if !vim.exists(&container, Some(&session)) {
                return Err(not_found(&container));
            }
            if !matches!(
                container.ty.as_str(),
                "Folder"
                    | "Datacenter"
                    | "ComputeResource"
                    | "ClusterComputeResource"
                    | "HostSystem"
            ) {
                return Err(Fault::invalid_argument(
                    format!("{container} is not a container"),
                    Some("container"),
                ));
            }
            let types = req
                .params
                .all("type")
                .map(|t| t.text.trim().to_string())
                .collect();
            let recursive = required_bool(req, "recursive")?;
            let kind = ViewKind::Container {
                container,
                types,
                recursive,
            };
            Ok(Some(add_view(vim, session, kind)?.into()))
        }
        ("ViewManager", "CreateListView") => {
            let (found, _) = objects(vim, req, "obj", &session)?;
            Ok(Some(add_view(vim, session, ViewKind::List(found))?.into()))
        }
        ("ViewManager", "CreateListViewFromView") => {
            let from = parse_moref(required(req, "view")?).map_err(|e| bad_param(req, e))?;
            let items = view_objects(vim, &from.id).ok_or_else(|| not_found(&from))?;
            Ok(Some(add_view(vim, session, ViewKind::List(items))?.into()))
        }
        ("ListView", "ModifyListView") => {
            let (add, unresolved_add) = objects(vim, req, "add", &session)?;
            let remove: Vec<MoRef> = req
                .params
                .all("remove")
                .map(|el| parse_moref(el).map_err(|e| bad_param(req, e)))
                .collect::<Result<_, _>>()?;
            let list = list_of(vim, req)?;
            let mut unresolved = unresolved_add;
            for r in &remove {
                match list.iter().position(|o| o == r) {
                    Some(i) => {
                        list.remove(i);
                    }
                    None => unresolved.push(r.clone()),
                }
            }
            for a in add {
                if !list.contains(&a) {
                    list.push(a);
                }
            }
            Ok(Some(Value::refs(unresolved)))
        }
        ("ListView", "ResetListView") => {
            let (found, unresolved) = objects(vim, req, "obj", &session)?;
            *list_of(vim, req)? = found;
            Ok(Some(Value::refs(unresolved)))
        }
        ("ListView", "ResetListViewFromView") => {
            let from = parse_moref(required(req, "view")?).map_err(|e| bad_param(req, e))?;
            let items = view_objects(vim, &from.id).ok_or_else(|| not_found(&from))?;
            *list_of(vim, req)? = items;
            Ok(None)
        }
        ("ContainerView" | "ListView", "DestroyView") => {
            vim.views.remove(&req.this.id);
            Ok(None)
        }
        _ => Err(method_not_found(req)),
    }
}

pub fn properties(vim: &Vim, session: Option<&str>) -> Data {
    let views = vim
        .views
        .iter()
        .filter(|(_, v)| Some(v.session.as_str()) == session)
        .map(|(id, v)| moref(v.type_name(), id));
    Data::new("ViewManager").with("viewList", Value::refs(views))
}

/// What a view shows now: a container's matching descendants, or a list's objects that still
/// exist.
fn view_objects(vim: &Vim, id: &str) -> Option<Vec<MoRef>> {
    let v = vim.views.get(id)?;
    Some(match &v.kind {
        ViewKind::Container {
            container,
            types,
            recursive,
        } => {
            let mut found = Vec::new();
            vim.descendants(container, *recursive, &mut found);
            found
                .into_iter()
                .filter(|o| types.is_empty() || types.iter().any(|t| is_a(&o.ty, t)))
                .collect()
        }
        ViewKind::List(items) => items
            .iter()
            .filter(|o| vim.exists(o, Some(&v.session)))
            .cloned()
            .collect(),
    })
}

pub fn view_properties(vim: &Vim, id: &str) -> Option<Data> {
    let v = vim.views.get(id)?;
    let view = Value::refs(view_objects(vim, id)?);
    Some(match &v.kind {
        ViewKind::Container {
            container,
            types,
            recursive,
        } => Data::new("ContainerView")
            .with("view", view)
            .with("container", container.clone())
            .with("type", Value::strings(types.clone()))
            .with("recursive", *recursive),
        ViewKind::List(_) => Data::new("ListView").with("view", view),
    })
}
