//! Where scenarios run: the embedded simulator (an in-process `esxi-sim` server per scenario ×
//! profile, reached through the same SOAP client as a real host, plus direct access to the model
//! for simulator-only steps) or a real host (or a separately started esxi-sim) given by URL. A
//! separately started esxi-sim with a control API (`--control-url`) runs the simulator-only
//! steps too, through [`Sim::Control`].

use std::time::Duration;

use esxi_sim::server::{Server, ServerConfig};
use esxi_sim::{Host, HostConfig, Profile};
use tokio::sync::watch;

use crate::client::{Client, ClientError, Trust};
use crate::sim::{Control, Sim};

/// The root password an embedded host is installed with.
pub const EMBEDDED_PASSWORD: &str = "Harn3ss!pw";
/// How long an embedded host reboots (virtual time; the runner skips the clock past it).
pub const EMBEDDED_BOOT: Duration = Duration::from_secs(90);

#[derive(Clone, Debug)]
pub enum TargetSpec {
    Embedded,
    Remote {
        url: String,
        user: String,
        password: String,
        trust: Trust,
        /// An esxi-sim's control API (and its bearer token), for the simulator-only steps.
        control: Option<(String, Option<String>)>,
    },
}

impl TargetSpec {
    pub fn is_embedded(&self) -> bool {
        matches!(self, TargetSpec::Embedded)
    }
    /// Whether simulator-only steps can run (embedded, or a control API given).
    pub fn has_simulator(&self) -> bool {
        match self {
            TargetSpec::Embedded => true,
            TargetSpec::Remote { control, .. } => control.is_some(),
        }
    }
}

/// A connected target for one scenario run.
pub struct Target {
    pub url: String,
    pub user: String,
    pub trust: Trust,
    /// The simulator behind the target, if any (embedded, or through a control API).
    pub sim: Option<Sim>,
    /// Whether it runs in this process (its clock is ours to move freely).
    pub embedded: bool,
    stop: Option<watch::Sender<bool>>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(s) = &self.stop {
            let _ = s.send(true);
        }
    }
}

impl Target {
    /// Starts an embedded host of `profile` from `seed` on a free loopback port.
    pub async fn embedded(profile: &str, seed: u64) -> Result<(Target, String), String> {
        let p = Profile::named(profile).map_err(|e| e.to_string())?;
        let host: Host = HostConfig::new(p)
            .seed(seed)
            .root_password(EMBEDDED_PASSWORD)
            .boot_time(EMBEDDED_BOOT)
            .build()
            .map_err(|e| e.to_string())?;
        let mut cfg = ServerConfig::new("127.0.0.1:0".parse().expect("literal address"));
        cfg.header_timeout = Duration::from_secs(30);
        let server = Server::bind(host, cfg).await?;
        let (stop, rx) = watch::channel(false);
        let t = Target {
            url: server.url(),
            user: "root".into(),
            trust: Trust::Any,
            sim: Some(Sim::Embedded(server.shared.clone())),
            embedded: true,
            stop: Some(stop),
        };
        tokio::spawn(server.run(rx));
        Ok((t, EMBEDDED_PASSWORD.to_string()))
    }

    /// A host given by URL; with a control API, its simulator-only side too.
    pub async fn remote(
        url: &str,
        user: &str,
        trust: Trust,
        control: Option<&(String, Option<String>)>,
    ) -> Result<Target, String> {
        let url = if url.contains("/sdk") {
            url.to_string()
        } else {
            format!("{}/sdk", url.trim_end_matches('/'))
        };
        let sim = match control {
            Some((c, token)) => {
                let control = Control::connect(c, token.clone(), &url).await?;
                control.reinstall().await?;
                Some(Sim::Control(Box::new(control)))
            }
            None => None,
        };
        Ok(Target {
            url,
            user: user.to_string(),
            trust,
            sim,
            embedded: false,
            stop: None,
        })
    }

    /// Another host of `profile` beside this one (a scenario's `host = "..."` steps): embedded,
    /// a fresh one from `seed`; through a control API, another host of the same build in that
    /// fleet, none of `taken` (control API paths), reinstalled. A real host has no second one.
    pub async fn another(
        &self,
        profile: &str,
        seed: u64,
        taken: &[String],
    ) -> Result<Target, String> {
        match &self.sim {
            Some(Sim::Embedded(_)) => Target::embedded(profile, seed).await.map(|(t, _)| t),
            Some(Sim::Control(c)) => {
                let (control, url) = c.another(taken).await?;
                Ok(Target {
                    url,
                    user: self.user.clone(),
                    trust: self.trust.clone(),
                    sim: Some(Sim::Control(Box::new(control))),
                    embedded: false,
                    stop: None,
                })
            }
            None => Err("a real host has no second host to run steps on".into()),
        }
    }

    /// The control API path of the host behind this target (`/v1/hosts/3`), if it has one.
    pub fn control_path(&self) -> Option<String> {
        match &self.sim {
            Some(Sim::Control(c)) => Some(c.path().to_string()),
            _ => None,
        }
    }

    /// The profile the target runs, by its `about` (version and build): the catalogue build
    /// itself, or the newest catalogue build of that version below it (a patch the catalogue
    /// lacks). Else `ESXi <version> build <build>`, which no scenario names.
    pub async fn profile_name(&self) -> Result<String, ClientError> {
        let about = self
            .client()?
            .service_content()
            .await?
            .child("about")
            .cloned()
            .ok_or_else(|| ClientError::Protocol("the service content has no about".into()))?;
        let version = about.child_text("version").unwrap_or_default().to_string();
        let build: u32 = about
            .child_text("build")
            .and_then(|b| b.trim().parse().ok())
            .unwrap_or(0);
        let best = Profile::all()
            .iter()
            .filter(|p| p.version == version && p.build <= build)
            .max_by_key(|p| p.build);
        Ok(match best {
            Some(p) => p.name.clone(),
            None => format!("ESXi {version} build {build}"),
        })
    }

    pub fn client(&self) -> Result<Client, ClientError> {
        Client::new(&self.url, self.trust.clone())
    }
}
