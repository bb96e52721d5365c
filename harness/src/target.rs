//! Where scenarios run: the embedded simulator (an in-process `esxi-sim` server per scenario ×
//! profile, reached through the same SOAP client as a real host, plus direct access to the model
//! for simulator-only steps) or a real host (or a separately started esxi-sim) given by URL.

use std::sync::Arc;
use std::time::Duration;

use esxi_sim::server::{Server, ServerConfig, Shared};
use esxi_sim::{Host, HostConfig, Profile};
use tokio::sync::watch;

use crate::client::{Client, ClientError, Trust};

/// The root password an embedded host is installed with.
pub const EMBEDDED_PASSWORD: &str = "Harness!1";
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
    },
}

impl TargetSpec {
    pub fn is_embedded(&self) -> bool {
        matches!(self, TargetSpec::Embedded)
    }
}

/// A connected target for one scenario run.
pub struct Target {
    pub url: String,
    pub user: String,
    pub trust: Trust,
    /// The model behind an embedded target.
    pub sim: Option<Arc<Shared>>,
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
            sim: Some(server.shared.clone()),
            stop: Some(stop),
        };
        tokio::spawn(server.run(rx));
        Ok((t, EMBEDDED_PASSWORD.to_string()))
    }

    pub fn remote(url: &str, user: &str, trust: Trust) -> Target {
        let url = if url.contains("/sdk") {
            url.to_string()
        } else {
            format!("{}/sdk", url.trim_end_matches('/'))
        };
        Target {
            url,
            user: user.to_string(),
            trust,
            sim: None,
            stop: None,
        }
    }

    pub fn client(&self) -> Result<Client, ClientError> {
        Client::new(&self.url, self.trust.clone())
    }

    /// Runs `f` on the simulated host, after moving it to now.
    pub fn with_host<R>(&self, f: impl FnOnce(&mut Host) -> R) -> Option<R> {
        let shared = self.sim.as_ref()?;
        let mut vim = shared.lock();
        Some(f(&mut vim.host))
    }

    /// Moves the embedded host's virtual clock forward.
    pub fn skip(&self, d: Duration) {
        if let Some(s) = &self.sim {
            s.clock.lock().unwrap_or_else(|e| e.into_inner()).skip(d);
        }
    }
}
