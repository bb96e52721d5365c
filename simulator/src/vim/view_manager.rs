//! ViewManager and ContainerView: `CreateContainerView(container, type[], recursive)`, the way
//! govc and PowerCLI's `Get-View -ViewType HostSystem` find hosts. A view's `view` property is
//! computed when read, so it always reflects the inventory.

use super::{
    bad_param, is_a, method_not_found, moref, not_found, required, required_bool, Ctx, Vim,
};
use crate::soap::{parse_moref, Data, Fault, MoRef, Request, Value};

#[derive(Clone, Debug)]
pub struct View {
    pub session: String,
    pub container: MoRef,
    pub types: Vec<String>,
    pub recursive: bool,
}

pub fn call(vim: &mut Vim, ctx: &mut Ctx, req: &Request) -> Result<Option<Value>, Fault> {
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
                .body
                .all("type")
                .map(|t| t.text.trim().to_string())
                .collect();
            let recursive = required_bool(req, "recursive")?;
            let limit = vim.cfg.limits.views_per_session;
            if vim.views.values().filter(|v| v.session == session).count() >= limit {
                return Err(super::limits::too_many("views", limit));
            }
            vim.seq += 1;
            let id = format!("session[{}]{:x}", session, vim.seq);
            vim.views.insert(
                id.clone(),
                View {
                    session,
                    container,
                    types,
                    recursive,
                },
            );
            Ok(Some(moref("ContainerView", &id).into()))
        }
        ("ContainerView", "DestroyView") => {
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
        .map(|(id, _)| moref("ContainerView", id));
    Data::new("ViewManager").with("viewList", Value::refs(views))
}

pub fn view_properties(vim: &Vim, id: &str) -> Option<Data> {
    let v = vim.views.get(id)?;
    let mut found = Vec::new();
    vim.descendants(&v.container, v.recursive, &mut found);
    let matching = found
        .into_iter()
        .filter(|o| v.types.is_empty() || v.types.iter().any(|t| is_a(&o.ty, t)));
    Some(
        Data::new("ContainerView")
            .with("view", Value::refs(matching))
            .with("container", v.container.clone())
            .with("type", Value::strings(v.types.clone()))
            .with("recursive", v.recursive),
    )
}
