//! Where a setting lives in each release (facts section 6.3). What the API changes lands where
//! that release keeps it:
//!
//! | setting | 4.x–7.0 U2 | 7.0 U3 | 8.0 and later |
//! |---|---|---|---|
//! | local accounts | /etc/passwd, /etc/shadow | also `esx/authentication/user_accounts` | same |
//! | host name, IPs | esx.conf `/adv/Misc/HostName`, ... | same | also `esx/advanced_options` misc/net |
//! | network | esx.conf `/net` (6.x) | the store only (from 7.0) | the store only |
//!
//! Where a release keeps a setting in the store, the store is the source of truth: the boot
//! writes /etc/shadow and esx.conf from it (from 7.0 U1 "editing /etc/shadow by hand no longer
//! changes a password").

use super::{accounts, Host};
use crate::configstore::{Column, Key};

const MISC: (&str, &str, &str) = ("esx", "advanced_options", "misc");
const NET: (&str, &str, &str) = ("esx", "advanced_options", "net");

fn account_key(user: &str) -> Key {
    Key::new("esx", "authentication", "user_accounts", user)
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

impl Host {
    /// An esx.conf entry the store also keeps changed (8.0+: the host name and IPs).
    pub(crate) fn mirror_esx_conf(&mut self, key: &str, value: &str) {
        if !self.profile.store_holds.hostname {
            return;
        }
        let (group, field) = match key {
            "/adv/Misc/HostName" => (MISC, "host_name"),
            "/adv/Misc/HostIPAddr" => (MISC, "host_IP_addr"),
            "/adv/Net/ManagementAddr" => (NET, "management_addr"),
            _ => return,
        };
        let now = self.now;
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let k = Key::new(group.0, group.1, group.2, "");
        let mut v = store
            .json(&k, Column::Vital)
            .unwrap_or_else(|| serde_json::json!({}));
        v[field] = serde_json::Value::String(value.to_string());
        store.set(k, Column::Vital, Some(&v.to_string()), "1.0", now);
    }

    /// A local account changed (7.0.3+ keeps accounts in the store): `Some((uid, hash,
    /// description))`, or None when it was removed.
    pub(crate) fn mirror_account(&mut self, user: &str, account: Option<(u32, &str, &str)>) {
        if !self.profile.store_holds.accounts {
            return;
        }
        let now = self.now;
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let k = account_key(user);
        match account {
            None => {
                store.remove(&k);
            }
            Some((uid, hash, description)) => {
                let user_value = format!(
                    r#"{{"description":{},"name":{},"password_hash":{},"shell_access":true}}"#,
                    json_string(description),
                    json_string(user),
                    json_string(hash)
                );
                store.set(k.clone(), Column::User, Some(&user_value), "1.0", now);
                store.set(
                    k,
                    Column::Vital,
                    Some(&format!(r#"{{"uid":{uid}}}"#)),
                    "1.0",
                    now,
                );
            }
        }
    }

    /// The account's uid and description from /etc/passwd, for the store.
    pub(crate) fn passwd_entry(&self, user: &str) -> Option<(u32, String)> {
        let passwd = self.etc.read("etc/passwd")?;
        String::from_utf8_lossy(passwd).lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&user) && f.len() >= 5)
                .then(|| (f[2].parse().unwrap_or(0), f[4].to_string()))
        })
    }

    /// Per-host rows a fresh store gets: the NIC's MAC address (from the hardware's UUID).
    pub(crate) fn install_store_rows(&mut self) {
        let now = self.now;
        let uuid = self
            .identity
            .smbios_uuid
            .replace('-', "")
            .to_ascii_lowercase();
        let mac = format!(
            "00:50:56:{}:{}:{}",
            &uuid[26..28],
            &uuid[28..30],
            &uuid[30..32]
        );
        let network = self.profile.store_holds.network;
        let Some(store) = self.store.as_mut() else {
            return;
        };
        if network {
            store.set(
                Key::new("esx", "network", "nics", "vmnic0"),
                Column::Vital,
                Some(&format!(r#"{{"mac":"{mac}","name":"vmnic0"}}"#)),
                "1.0",
                now,
            );
            store.set(
                Key::new("esx", "network", "vmknics", "vmk0"),
                Column::Vital,
                Some(&format!(r#"{{"device":"vmk0","mac":"{mac}"}}"#)),
                "1.0",
                now,
            );
        }
    }

    /// At boot, from the store to /etc: accounts (7.0.3+) into /etc/passwd and /etc/shadow, the
    /// host name and IPs (8.0+) into esx.conf.
    pub(crate) fn apply_store_at_boot(&mut self) {
        let Some(store) = self.store.clone() else {
            return;
        };
        if self.profile.store_holds.accounts {
            let mut passwd = self.text_of("etc/passwd");
            let mut shadow = self.text_of("etc/shadow");
            let days = self.days();
            for (k, _) in store.rows_of("esx", "authentication", "user_accounts") {
                let Some(u) = store.json(k, Column::User) else {
                    continue;
                };
                let name = k.identifier.as_str();
                let hash = u["password_hash"].as_str().unwrap_or("");
                // A restored store is untrusted: nothing that could break a shadow line.
                if hash.contains([':', '\n', '\r']) {
                    continue;
                }
                let desc = u["description"].as_str().unwrap_or("");
                let uid = store
                    .json(k, Column::Vital)
                    .and_then(|v| v["uid"].as_u64())
                    .unwrap_or(1000);
                if !accounts::user_exists(&passwd, name) {
                    let made = accounts::create_with_uid(
                        &passwd, &shadow, name, desc, hash, uid as u32, days,
                    );
                    if let Ok((p, s)) = made {
                        passwd = p;
                        shadow = s;
                    }
                } else if accounts::shadow_field(&shadow, name) != Some(hash) {
                    if let Ok(s) = accounts::set_hash(&shadow, name, hash, days) {
                        shadow = s;
                    }
                }
            }
            if passwd != self.text_of("etc/passwd") {
                let _ = self.write_file("etc/passwd", passwd);
            }
            if shadow != self.text_of("etc/shadow") {
                let _ = self.write_file("etc/shadow", shadow);
            }
        }
        if self.profile.store_holds.hostname {
            let fields = [
                (MISC, "host_name", "/adv/Misc/HostName"),
                (MISC, "host_IP_addr", "/adv/Misc/HostIPAddr"),
                (NET, "management_addr", "/adv/Net/ManagementAddr"),
            ];
            for (g, field, conf) in fields {
                let v = store.json(&Key::new(g.0, g.1, g.2, ""), Column::Vital);
                if let Some(text) = v.as_ref().and_then(|v| v[field].as_str()) {
                    if self.esx_conf_value(conf).as_deref() != Some(text) {
                        let _ = self.set_esx_conf_value(conf, text);
                    }
                }
            }
        }
    }
}
