//! The simulator-only side of a target: what scenario steps do to a host that the vSphere API
//! cannot (write a file on its shell, crash it, cut its power, move its clock).
//!
//! Two ways in: the embedded simulator's model, directly (in-process), or a separately running
//! esxi-sim through its control API (`--control-url`), which finds the target host by its URL.
//! Both answer the same questions, so a scenario reads the same against either.

use std::sync::Arc;
use std::time::Duration;

use esxi_sim::fleet::control::{self as control_api, encode, EncryptionState};
use esxi_sim::host::RebootKind;
use esxi_sim::keystore::Mode;
use esxi_sim::server::Shared;
use hyper::Method;
use serde_json::Value;

use crate::client::{Client, Trust};

/// Where a host's simulator-only operations go.
pub enum Sim {
    Embedded(Arc<Shared>),
    Control(Box<Control>),
}

/// A host of a running esxi-sim, through its control API.
pub struct Control {
    client: tokio::sync::Mutex<Client>,
    /// The control API's URL.
    url: String,
    token: Option<String>,
    /// The host's path prefix, `/v1/hosts/<index>`.
    host: String,
}

type Answer<T> = Result<T, String>;

impl Control {
    /// Connects to the control API at `url` and finds the host serving `target_url`.
    pub async fn connect(url: &str, token: Option<String>, target_url: &str) -> Answer<Control> {
        let client = Client::new(url.trim_end_matches('/'), Trust::Any)
            .map_err(|e| format!("--control-url {url}: {e}"))?;
        let mut c = Control {
            client: tokio::sync::Mutex::new(client),
            url: url.to_string(),
            token,
            host: String::new(),
        };
        let hosts = c.json(Method::GET, "/v1/hosts", None).await?;
        let want = authority(target_url);
        let found = hosts.as_array().and_then(|a| {
            a.iter()
                .find(|h| h["url"].as_str().map(authority) == Some(want.clone()))
        });
        let Some(h) = found else {
            return Err(format!(
                "the control API at {url} serves no host at {target_url} (it lists {})",
                hosts.as_array().map(|a| a.len()).unwrap_or(0)
            ));
        };
        c.host = format!("/v1/hosts/{}", h["index"]);
        Ok(c)
    }

    /// Installs the host afresh, so each scenario starts where an embedded run starts.
    pub async fn reinstall(&self) -> Answer<()> {
        self.host_post("reinstall", None).await
    }

    /// The host's path prefix in the control API (`/v1/hosts/3`).
    pub fn path(&self) -> &str {
        &self.host
    }

    /// Another host of the same fleet and build, none of `taken` (paths), installed afresh:
    /// the second machine a scenario's `host = "..."` steps run on. Returns it and its SDK URL.
    pub async fn another(&self, taken: &[String]) -> Answer<(Control, String)> {
        let me = self.state().await?;
        let profile = me["profile"].as_str().unwrap_or_default().to_string();
        let hosts = self.json(Method::GET, "/v1/hosts", None).await?;
        let found = hosts.as_array().and_then(|a| {
            a.iter().find(|h| {
                let path = format!("/v1/hosts/{}", h["index"]);
                h["profile"].as_str() == Some(profile.as_str()) && !taken.contains(&path)
            })
        });
        let Some(h) = found else {
            return Err(format!(
                "the control API at {} has no other {profile} host for a second machine                  (serve more hosts of that build: --hosts, --profiles)",
                self.url
            ));
        };
        let client = Client::new(self.url.trim_end_matches('/'), Trust::Any)
            .map_err(|e| format!("--control-url {}: {e}", self.url))?;
        let other = Control {
            client: tokio::sync::Mutex::new(client),
            url: self.url.clone(),
            token: self.token.clone(),
            host: format!("/v1/hosts/{}", h["index"]),
        };
        other.reinstall().await?;
        let url = h["url"].as_str().unwrap_or_default().to_string();
        Ok((other, url))
    }

    async fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Answer<Vec<u8>> {
        let mut headers = Vec::new();
        if let Some(t) = &self.token {
            headers.push(("authorization", format!("Bearer {t}")));
        }
        if method == Method::POST || method == Method::PUT {
            // The control API takes writes only as JSON (its CSRF guard).
            headers.push(("content-type", "application/json".to_string()));
        }
        let mut c = self.client.lock().await;
        let r = c
            .http(method.clone(), path, &headers, body.unwrap_or_default())
            .await
            .map_err(|e| format!("control API {method} {path}: {e}"))?;
        if !r.status.is_success() {
            let msg = serde_json::from_slice::<Value>(&r.body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&r.body).into_owned());
            return Err(format!(
                "control API {method} {path}: HTTP {}: {msg}",
                r.status
            ));
        }
        Ok(r.body.to_vec())
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> Answer<Value> {
        let raw = self
            .call(method, path, body.map(|b| b.to_string().into_bytes()))
            .await?;
        serde_json::from_slice(&raw).map_err(|e| format!("control API {path}: {e}"))
    }

    async fn host_post(&self, what: &str, body: Option<Value>) -> Answer<()> {
        self.json(Method::POST, &format!("{}/{what}", self.host), body)
            .await
            .map(|_| ())
    }

    fn file(&self, path: &str) -> String {
        let p = path.trim_start_matches('/');
        let segs: Vec<String> = p.split('/').map(encode).collect();
        format!("{}/files/{}", self.host, segs.join("/"))
    }

    async fn state(&self) -> Answer<Value> {
        self.json(Method::GET, &self.host, None).await
    }
}

/// `host:port` of a URL, for matching the target against the control API's host list.
fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_ascii_lowercase()
}

/// A point in a host's history: state saves and events so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mark {
    pub saves: u64,
    pub events: u64,
}

impl Sim {
    fn embedded<R>(s: &Shared, f: impl FnOnce(&mut esxi_sim::Host) -> R) -> R {
        let mut vim = s.lock();
        f(&mut vim.host)
    }

    pub async fn write_file(&self, path: &str, data: &[u8]) -> Answer<()> {
        match self {
            Sim::Embedded(s) => {
                Self::embedded(s, |h| h.write_file(path, data.to_vec())).map_err(|e| e.to_string())
            }
            Sim::Control(c) => c
                .call(Method::PUT, &c.file(path), Some(data.to_vec()))
                .await
                .map(|_| ()),
        }
    }

    pub async fn delete_file(&self, path: &str) -> Answer<()> {
        match self {
            Sim::Embedded(s) => Self::embedded(s, |h| h.delete_file(path))
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Sim::Control(c) => match c.call(Method::DELETE, &c.file(path), None).await {
                // Deleting what is not there is no error (as the model's `delete_file`).
                Err(e) if e.contains("HTTP 404") => Ok(()),
                r => r.map(|_| ()),
            },
        }
    }

    pub async fn read_text(&self, path: &str) -> Answer<Option<String>> {
        match self {
            Sim::Embedded(s) => Self::embedded(s, |h| h.read_text(path)).map_err(|e| e.to_string()),
            Sim::Control(c) => match c.call(Method::GET, &c.file(path), None).await {
                Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
                Err(e) if e.contains("HTTP 404") && e.contains("does not exist") => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// Moves the clock forward (everything due on the way runs).
    pub async fn advance(&self, d: Duration) -> Answer<()> {
        match self {
            Sim::Embedded(s) => {
                s.clock.lock().unwrap_or_else(|e| e.into_inner()).skip(d);
                drop(s.lock());
                Ok(())
            }
            Sim::Control(c) => c
                .json(
                    Method::POST,
                    "/v1/clock/advance",
                    Some(serde_json::json!({ "by": format!("{}ms", d.as_millis()) })),
                )
                .await
                .map(|_| ()),
        }
    }

    /// Moves the clock past a boot in progress, if any.
    pub async fn finish_boot(&self, embedded_boot: Duration) -> Answer<()> {
        match self {
            Sim::Embedded(_) => self.advance(embedded_boot + Duration::from_secs(1)).await,
            Sim::Control(c) => {
                let st = c.state().await?;
                match st["booting_for_ms"].as_u64() {
                    Some(ms) => self.advance(Duration::from_millis(ms + 1000)).await,
                    None => Ok(()),
                }
            }
        }
    }

    pub async fn crash(&self) -> Answer<()> {
        match self {
            Sim::Embedded(s) => Self::embedded(s, |h| h.crash()).map_err(|e| e.to_string()),
            Sim::Control(c) => c.host_post("crash", None).await,
        }
    }

    pub async fn power_cut(&self, during_next_save: bool) -> Answer<()> {
        match self {
            Sim::Embedded(s) => Self::embedded(s, |h| {
                if during_next_save {
                    h.arm_power_cut_during_next_save();
                    Ok(())
                } else {
                    h.power_cut()
                }
            })
            .map_err(|e| e.to_string()),
            Sim::Control(c) => {
                let when = if during_next_save { "next-save" } else { "now" };
                c.host_post("power-cut", Some(serde_json::json!({ "when": when })))
                    .await
            }
        }
    }

    /// Powers the host on; `recovery_key` is typed at the boot prompt (facts 6.5).
    pub async fn power_on(&self, recovery_key: Option<&str>) -> Answer<()> {
        match self {
            Sim::Embedded(s) => Self::embedded(s, |h| match recovery_key {
                Some(k) => h.power_on_with_recovery_key(k),
                None => h.power_on(),
            })
            .map_err(|e| e.to_string()),
            Sim::Control(c) => {
                let body = recovery_key.map(|k| serde_json::json!({ "recovery_key": k }));
                c.host_post("power-on", body).await
            }
        }
    }

    /// The host's configuration encryption, as the control API shows it.
    pub async fn encryption(&self) -> Answer<EncryptionState> {
        match self {
            Sim::Embedded(s) => Ok(Self::embedded(s, |h| control_api::encryption_state(h))),
            Sim::Control(c) => {
                let v = c
                    .json(Method::GET, &format!("{}/encryption", c.host), None)
                    .await?;
                serde_json::from_value(v).map_err(|e| format!("control API encryption: {e}"))
            }
        }
    }

    /// `esxcli system settings encryption set`.
    pub async fn set_encryption(
        &self,
        mode: Option<Mode>,
        secure_boot: Option<bool>,
    ) -> Answer<()> {
        match self {
            Sim::Embedded(s) => {
                Self::embedded(s, |h| control_api::change_encryption(h, mode, secure_boot))
                    .map_err(|e| e.to_string())
            }
            Sim::Control(c) => {
                let mut body = serde_json::Map::new();
                if let Some(m) = mode {
                    body.insert("mode".into(), m.to_string().into());
                }
                if let Some(b) = secure_boot {
                    body.insert("require_secure_boot".into(), b.into());
                }
                c.json(
                    Method::PUT,
                    &format!("{}/encryption", c.host),
                    Some(serde_json::Value::Object(body)),
                )
                .await
                .map(|_| ())
            }
        }
    }

    pub async fn rotate_recovery_key(&self) -> Answer<()> {
        match self {
            Sim::Embedded(s) => {
                Self::embedded(s, control_api::rotate_recovery_key).map_err(|e| e.to_string())
            }
            Sim::Control(c) => c.host_post("encryption/recovery/rotate", None).await,
        }
    }

    /// A new motherboard and TPM: the host shuts down (saving) and stays off.
    pub async fn replace_board(&self, new_uuid: bool) -> Answer<()> {
        match self {
            Sim::Embedded(s) => {
                Self::embedded(s, |h| h.replace_board(new_uuid)).map_err(|e| e.to_string())
            }
            Sim::Control(c) => {
                c.host_post(
                    "replace-board",
                    Some(serde_json::json!({ "new_uuid": new_uuid })),
                )
                .await
            }
        }
    }

    /// `/bootbank/state.tgz` as it is on the boot device (None: there is none, or no bank).
    pub async fn saved_state_tgz(&self) -> Answer<Option<Vec<u8>>> {
        match self {
            Sim::Embedded(s) => Ok(Self::embedded(s, |h| {
                h.bootbank().and_then(|b| b.state_tgz()).map(|b| b.to_vec())
            })),
            Sim::Control(c) => {
                let path = format!("{}/bootbank/state.tgz", c.host);
                match c.call(Method::GET, &path, None).await {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.contains("HTTP 404") && !e.contains("no host") => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }

    pub async fn corrupt_state_tgz(&self) -> Answer<()> {
        match self {
            Sim::Embedded(s) => {
                Self::embedded(s, |h| h.corrupt_state_tgz()).map_err(|e| e.to_string())
            }
            Sim::Control(c) => c.host_post("corrupt-state-tgz", None).await,
        }
    }

    pub async fn reboot(&self, kind: RebootKind) -> Answer<()> {
        match self {
            Sim::Embedded(s) => {
                Self::embedded(s, |h| h.reboot(kind, "scenario")).map_err(|e| e.to_string())
            }
            Sim::Control(c) => {
                let force = kind == RebootKind::Forced;
                c.host_post("reboot", Some(serde_json::json!({ "force": force })))
                    .await
            }
        }
    }

    pub async fn set_stateless(&self, on: bool) -> Answer<()> {
        match self {
            Sim::Embedded(s) => {
                Self::embedded(s, |h| h.set_stateless(on));
                Ok(())
            }
            Sim::Control(c) => c
                .json(
                    Method::PUT,
                    &format!("{}/stateless", c.host),
                    Some(serde_json::json!({ "enabled": on })),
                )
                .await
                .map(|_| ()),
        }
    }

    pub async fn mark(&self) -> Answer<Mark> {
        match self {
            Sim::Embedded(s) => Ok(Self::embedded(s, |h| Mark {
                saves: h.bootbank_writes().state_saves,
                events: h.events().total(),
            })),
            Sim::Control(c) => {
                let st = c.state().await?;
                let last = c.json(Method::GET, "/v1/fleet", None).await?;
                Ok(Mark {
                    saves: st["state_saves"].as_u64().unwrap_or(0),
                    events: last["events"].as_u64().unwrap_or(0),
                })
            }
        }
    }

    /// The kinds of the host's events after a mark, oldest first.
    pub async fn events_since(&self, m: Mark) -> Answer<Vec<String>> {
        match self {
            Sim::Embedded(s) => Ok(Self::embedded(s, |h| {
                let n = h.events().total().saturating_sub(m.events) as usize;
                h.events()
                    .tail(n)
                    .map(|e| e.kind.name().to_string())
                    .collect()
            })),
            Sim::Control(c) => {
                let index = c.host.rsplit('/').next().unwrap_or("0");
                let evs = c
                    .json(
                        Method::GET,
                        &format!("/v1/events?host={index}&after={}", m.events),
                        None,
                    )
                    .await?;
                Ok(evs
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| e["kind"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default())
            }
        }
    }

    /// The host's last events as text, for failure reports.
    pub async fn recent_events(&self, n: usize) -> Vec<String> {
        match self {
            Sim::Embedded(s) => {
                Self::embedded(s, |h| h.events().tail(n).map(|e| e.to_string()).collect())
            }
            Sim::Control(c) => {
                let path = format!("{}/events", c.host);
                let evs = c.json(Method::GET, &path, None).await.unwrap_or_default();
                let all: Vec<String> = evs
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|e| {
                                format!(
                                    "{} {}",
                                    e["at"].as_str().unwrap_or(""),
                                    e["text"].as_str().unwrap_or("")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                all[all.len().saturating_sub(n)..].to_vec()
            }
        }
    }

    pub async fn has_unsaved_changes(&self) -> Answer<bool> {
        match self {
            Sim::Embedded(s) => Ok(Self::embedded(s, |h| h.has_unsaved_changes())),
            Sim::Control(c) => Ok(c.state().await?["unsaved_changes"]
                .as_bool()
                .unwrap_or(false)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_match_whatever_the_path() {
        assert_eq!(
            authority("https://127.1.0.3:8443/sdk"),
            authority("https://127.1.0.3:8443")
        );
        assert_ne!(
            authority("https://127.1.0.3:8443/sdk"),
            authority("https://127.1.0.4:8443/sdk")
        );
        assert_eq!(encode("etc/hosts"), "etc%2Fhosts");
    }
}
