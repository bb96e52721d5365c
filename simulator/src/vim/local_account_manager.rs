//! HostLocalAccountManager `ha-localacctmgr`: CreateUser, UpdateUser, RemoveUser over the host's
//! `/etc/passwd` and `/etc/shadow`. The portable way to change persisted configuration: the same
//! call works on a real host, and the change persists (or is lost) by the sticky-file rules.
//! A new password must pass the host's `Security.PasswordQualityControl` first
//! ([`super::password_quality`], facts section 7); a refused call changes nothing.

use super::{bad_param, host_fault, method_not_found, required, Ctx, Vim};
use crate::api::{Call, Fault, Value};

pub fn call(vim: &mut Vim, _ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    match req.method.as_str() {
        "UpdateUser" | "CreateUser" => {
            let spec = required(req, "user")?;
            let id = spec
                .child_text("id")
                .filter(|s| !s.is_empty())
                .ok_or_else(|| bad_param(req, "HostAccountSpec without id".into()))?
                .to_string();
            let password = spec.child("password").map(|p| p.text.clone());
            let description = spec
                .child_text("description")
                .unwrap_or_default()
                .to_string();
            if let Some(new) = &password {
                let policy = super::option_manager::password_quality_policy(vim);
                policy
                    .check(new)
                    .map_err(super::password_quality::weak_password_fault)?;
            }
            if req.method == "CreateUser" {
                vim.host
                    .create_user(&id, password.as_deref().unwrap_or(""), &description)
                    .map_err(host_fault)?;
            } else if let Some(p) = password {
                vim.host.set_password(&id, &p).map_err(host_fault)?;
            } else if !vim.host.check_user_exists(&id) {
                return Err(host_fault(
                    crate::host::accounts::AccountError::UserNotFound(id).into(),
                ));
            }
            Ok(None)
        }
        "RemoveUser" => {
            let name = required(req, "userName")?.text.trim().to_string();
            vim.host.remove_user(&name).map_err(host_fault)?;
            Ok(None)
        }
        _ => Err(method_not_found(req)),
    }
}
