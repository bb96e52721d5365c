//! Who may do what on the host: hostd's permissions (access control entries), configuration a
//! backup carries like any other. They live where the release keeps them (facts 6.2, 6.3):
//!
//! - before 7.0, `/etc/vmware/hostd/authorization.xml`, one `ACEData` per permission (entity,
//!   user, group flag, propagate, role id);
//! - from 7.0, the ConfigStore's `esx/authorization/permissions/<id>` rows (`principal`,
//!   `is_group`, `access_mode` as a role name), the real 7.0.2 sample's root, dcui and vpxuser as
//!   Admin. Those rows name no entity: they are the root folder's [inferred], so this model keeps
//!   7.0+ permissions on the root folder only.
//!
//! A restore brings back the bundle's permissions, a reset the image's; a change not yet saved
//! is lost in a crash, as every sticky file is.

use super::{Host, HostError};
use crate::configstore::{Column, Key};
use crate::soap::xml;

pub const AUTHORIZATION_XML: &str = "etc/vmware/hostd/authorization.xml";
/// The entity of every permission the store keeps (see the module comment).
pub const ROOT_ENTITY: &str = "ha-folder-root";
const STORE: (&str, &str, &str) = ("esx", "authorization", "permissions");

/// One permission: `principal` (a user or, with `group`, a group) has role `role` on the entity
/// with id `entity`, and on everything below it when `propagate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub entity: String,
    pub principal: String,
    pub group: bool,
    pub role: i32,
    pub propagate: bool,
}

/// The system roles every host has: id and name (the store's `access_mode` names them).
/// [inferred: ids and names as on every vSphere endpoint; NoCryptoAdmin from 6.5]
pub const ROLES: &[(i32, &str)] = &[
    (-1, "Admin"),
    (-2, "ReadOnly"),
    (-3, "View"),
    (-4, "Anonymous"),
    (-5, "NoAccess"),
    (-6, "NoCryptoAdmin"),
];

pub fn role_name(id: i32) -> Option<&'static str> {
    ROLES.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

pub fn role_id(name: &str) -> Option<i32> {
    ROLES.iter().find(|(_, n)| *n == name).map(|(i, _)| *i)
}

impl Host {
    /// Whether this release keeps permissions in the ConfigStore (7.0 and later).
    pub fn permissions_in_store(&self) -> bool {
        self.store.is_some()
    }

    /// The host's permissions, in the order they are stored. A row or entry that cannot be read
    /// (a hand-edited or restored file) is skipped, as hostd skips what it cannot parse
    /// [inferred].
    pub fn permissions(&self) -> Vec<Permission> {
        match &self.store {
            Some(store) => store
                .rows_of(STORE.0, STORE.1, STORE.2)
                .filter_map(|(_, row)| {
                    let v: serde_json::Value =
                        serde_json::from_str(row.value(Column::User)?).ok()?;
                    Some(Permission {
                        entity: ROOT_ENTITY.into(),
                        principal: v["principal"].as_str()?.to_string(),
                        group: v["is_group"].as_bool().unwrap_or(false),
                        role: role_id(v["access_mode"].as_str()?)?,
                        propagate: true,
                    })
                })
                .collect(),
            None => parse_xml(&self.text_of(AUTHORIZATION_XML)),
        }
    }

    /// Sets permissions (SetEntityPermissions): each replaces one its principal already has on
    /// its entity, or is added. All are checked first: a refused call changes nothing.
    pub fn set_permissions(&mut self, ps: Vec<Permission>) -> Result<(), HostError> {
        self.require_running()?;
        for p in &ps {
            if role_name(p.role).is_none() {
                return Err(HostError::InvalidArgument(format!(
                    "no role with id {}",
                    p.role
                )));
            }
            if p.principal.is_empty() || p.principal.contains(['<', '>', '&', '\n']) {
                return Err(HostError::InvalidArgument(format!(
                    "invalid principal {:?}",
                    p.principal
                )));
            }
            if self.store.is_some() && p.entity != ROOT_ENTITY {
                return Err(HostError::InvalidArgument(format!(
                    "this release keeps permissions on {ROOT_ENTITY} only"
                )));
            }
        }
        if self.store.is_none() {
            let mut all = self.permissions();
            for p in ps {
                match all.iter_mut().find(|q| {
                    q.entity == p.entity && q.principal == p.principal && q.group == p.group
                }) {
                    Some(q) => *q = p,
                    None => all.push(p),
                }
            }
            return self.write_file(AUTHORIZATION_XML, format_xml(&all));
        }
        for p in ps {
            let id = self.store_row_of(&p.principal, p.group).unwrap_or_else(|| {
                let mut b = [0u8; 16];
                self.rng.fill(&mut b);
                vmware_id(&b)
            });
            let json = serde_json::json!({
                "access_mode": role_name(p.role),
                "cs_generated_id": id,
                "is_group": p.group,
                "principal": p.principal,
            });
            let now = self.now;
            if let Some(store) = self.store.as_mut() {
                store.set(
                    Key::new(STORE.0, STORE.1, STORE.2, &id),
                    Column::User,
                    Some(&json.to_string()),
                    "proposed",
                    now,
                );
            }
        }
        Ok(())
    }

    /// One permission (see [`Host::set_permissions`]).
    pub fn set_permission(&mut self, p: Permission) -> Result<(), HostError> {
        self.set_permissions(vec![p])
    }

    /// Removes `principal`'s permission on `entity` (RemoveEntityPermission); Ok(false) when
    /// there is none.
    pub fn remove_permission(
        &mut self,
        entity: &str,
        principal: &str,
        group: bool,
    ) -> Result<bool, HostError> {
        self.require_running()?;
        if self.store.is_some() {
            let Some(id) = (entity == ROOT_ENTITY)
                .then(|| self.store_row_of(principal, group))
                .flatten()
            else {
                return Ok(false);
            };
            if let Some(store) = self.store.as_mut() {
                store.remove(&Key::new(STORE.0, STORE.1, STORE.2, &id));
            }
            return Ok(true);
        }
        let mut all = self.permissions();
        let before = all.len();
        all.retain(|q| !(q.entity == entity && q.principal == principal && q.group == group));
        if all.len() == before {
            return Ok(false);
        }
        self.write_file(AUTHORIZATION_XML, format_xml(&all))?;
        Ok(true)
    }

    /// The store row holding `principal`'s permission.
    fn store_row_of(&self, principal: &str, group: bool) -> Option<String> {
        self.store
            .as_ref()?
            .rows_of(STORE.0, STORE.1, STORE.2)
            .find_map(|(k, row)| {
                let v: serde_json::Value = serde_json::from_str(row.value(Column::User)?).ok()?;
                (v["principal"].as_str() == Some(principal)
                    && v["is_group"].as_bool().unwrap_or(false) == group)
                    .then(|| k.identifier.clone())
            })
    }
}

/// A VMware-style id as the store's rows use (`52 2f 4d 38 94 0b 2c 9c-c7 5d b2 56 c2 9e d5 8d`).
fn vmware_id(b: &[u8; 16]) -> String {
    let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}", hex[..8].join(" "), hex[8..].join(" "))
}

/// The ACEData entries of an authorization.xml; unreadable entries are skipped.
pub fn parse_xml(text: &str) -> Vec<Permission> {
    let Ok(root) = xml::parse(text.as_bytes()) else {
        return Vec::new();
    };
    root.all("ACEData")
        .filter_map(|e| {
            let t = |n: &str| e.child_text(n).map(str::trim);
            Some(Permission {
                entity: t("ACEDataEntity")?.to_string(),
                principal: t("ACEDataUser")?.to_string(),
                group: t("ACEDataIsGroup") == Some("true"),
                role: t("ACEDataRoleId")?.parse().ok()?,
                propagate: t("ACEDataPropagate") != Some("false"),
            })
        })
        .collect()
}

/// authorization.xml as hostd writes it: ids from 10 in order (the image's root entry is 10).
pub fn format_xml(all: &[Permission]) -> String {
    let mut out = String::from("<ConfigRoot>\n");
    for (i, p) in all.iter().enumerate() {
        let id = 10 + i;
        let mut principal = String::new();
        xml::escape(&p.principal, &mut principal);
        let mut entity = String::new();
        xml::escape(&p.entity, &mut entity);
        out.push_str(&format!(
            "  <ACEData id=\"{id}\">\n    <ACEDataEntity>{entity}</ACEDataEntity>\n    \
             <ACEDataId>{id}</ACEDataId>\n    <ACEDataIsGroup>{}</ACEDataIsGroup>\n    \
             <ACEDataPropagate>{}</ACEDataPropagate>\n    <ACEDataRoleId>{}</ACEDataRoleId>\n    \
             <ACEDataUser>{principal}</ACEDataUser>\n  </ACEData>\n",
            p.group, p.propagate, p.role
        ));
    }
    out.push_str("</ConfigRoot>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_file_round_trips() {
        let img = crate::host::image::AUTHZ;
        let all = parse_xml(img);
        assert_eq!(
            all,
            vec![Permission {
                entity: "ha-folder-root".into(),
                principal: "root".into(),
                group: false,
                role: -1,
                propagate: true,
            }]
        );
        assert_eq!(format_xml(&all), img, "hostd's layout, byte for byte");
        assert!(
            parse_xml("<ConfigRoot><ACEData><ACEDataUser>x</ACEDataUser></ACEData>").is_empty()
        );
        assert!(parse_xml("not xml").is_empty());
    }

    fn running(profile: &str) -> Host {
        crate::HostConfig::new(crate::Profile::named(profile).unwrap())
            .seed(5)
            .build()
            .unwrap()
    }

    fn reboot_done(h: &mut Host) {
        h.wait_until_running();
        assert!(h.is_running());
    }

    fn grant(h: &mut Host, user: &str, role: i32) {
        h.set_permission(Permission {
            entity: ROOT_ENTITY.into(),
            principal: user.into(),
            group: false,
            role,
            propagate: true,
        })
        .unwrap();
    }

    fn has(h: &Host, user: &str) -> Option<i32> {
        h.permissions()
            .iter()
            .find(|p| p.principal == user)
            .map(|p| p.role)
    }

    /// Each era keeps them where its release does, and a bundle carries them: a restore brings
    /// back the bundle's, a reset the image's, a crash loses what was not saved.
    #[test]
    fn permissions_are_configuration_a_bundle_carries() {
        for profile in ["6.7U3", "7.0U1", "8.0U3"] {
            let mut h = running(profile);
            let in_store = h.permissions_in_store();
            assert_eq!(in_store, profile != "6.7U3", "{profile}");
            let image: Vec<String> = h.permissions().into_iter().map(|p| p.principal).collect();
            assert_eq!(
                image,
                match in_store {
                    true => vec!["root", "dcui", "vpxuser"],
                    false => vec!["root"],
                },
                "{profile}: the image's"
            );

            grant(&mut h, "dcui", -2);
            assert_eq!(has(&h, "dcui"), Some(-2), "{profile}: replaced, not added");
            assert_eq!(h.permissions().len(), image.len() + usize::from(!in_store));
            let xml = h.read_text(AUTHORIZATION_XML).unwrap().unwrap();
            assert_eq!(
                xml.contains("<ACEDataUser>dcui</ACEDataUser>"),
                !in_store,
                "{profile}"
            );
            let bundle = h.backup_bundle().unwrap().bytes.to_vec();

            assert!(h.remove_permission(ROOT_ENTITY, "dcui", false).unwrap());
            assert!(!h.remove_permission(ROOT_ENTITY, "dcui", false).unwrap());
            assert_eq!(has(&h, "dcui"), None);
            h.enter_maintenance_mode().unwrap();
            h.restore_bundle(bundle, false).unwrap();
            reboot_done(&mut h);
            assert_eq!(
                has(&h, "dcui"),
                Some(-2),
                "{profile}: the restore brings it back"
            );

            // Not saved, then a crash: lost.
            grant(&mut h, "root", -3);
            h.crash().unwrap();
            h.power_on().unwrap();
            reboot_done(&mut h);
            assert_eq!(
                has(&h, "root"),
                Some(-1),
                "{profile}: the crash lost the change"
            );

            // A restored host comes back in maintenance mode (facts section 5).
            assert!(h.in_maintenance_mode());
            h.reset_to_factory_defaults().unwrap();
            reboot_done(&mut h);
            let after: Vec<String> = h.permissions().into_iter().map(|p| p.principal).collect();
            assert_eq!(after, image, "{profile}: a reset brings back the image's");
        }
    }

    #[test]
    fn refused_changes_change_nothing() {
        for profile in ["6.7U3", "8.0U3"] {
            let mut h = running(profile);
            let before = h.permissions();
            let bad = |entity: &str, principal: &str, role: i32| Permission {
                entity: entity.into(),
                principal: principal.into(),
                group: false,
                role,
                propagate: true,
            };
            assert!(
                h.set_permission(bad(ROOT_ENTITY, "root", 7)).is_err(),
                "no such role"
            );
            assert!(h.set_permission(bad(ROOT_ENTITY, "a<b", -1)).is_err());
            assert!(h.set_permission(bad(ROOT_ENTITY, "", -1)).is_err());
            let other = h.set_permission(bad("ha-host", "root", -2));
            assert_eq!(
                other.is_err(),
                profile == "8.0U3",
                "the store keeps the root's only"
            );
            if other.is_ok() {
                assert!(h.remove_permission("ha-host", "root", false).unwrap());
            }
            assert_eq!(h.permissions(), before, "{profile}");
        }
    }
}
