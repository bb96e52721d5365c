//! Helpers for the end-to-end tests: an in-process `esxi-sim` server on a loopback port, and a
//! harness client logged in to it.

use std::sync::Arc;
use std::time::Duration;

use esxi_harness::client::{Client, Trust};
use esxi_sim::api::MoRef;
use esxi_sim::server::{Server, ServerConfig, Shared};
use esxi_sim::{Host, HostConfig, Profile};
use tokio::sync::watch;

pub const PASSWORD: &str = "S3cret!pw";

/// A running server; dropping it shuts the server down.
pub struct TestServer {
    pub url: String,
    pub addr: std::net::SocketAddr,
    pub redirect_addr: Option<std::net::SocketAddr>,
    pub shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A host of `profile` from `seed` with root's password [`PASSWORD`] and a short boot time.
pub fn host(profile: &str, seed: u64) -> Host {
    host_with(profile, seed, |c| c)
}

pub fn host_with(profile: &str, seed: u64, f: impl FnOnce(HostConfig) -> HostConfig) -> Host {
    let cfg = HostConfig::new(Profile::named(profile).unwrap())
        .seed(seed)
        .root_password(PASSWORD)
        .boot_time(Duration::from_millis(300));
    f(cfg).build().unwrap()
}

/// Starts a server for `host` on 127.0.0.1 (any port) with TLS, after `tweak`ing its config.
pub async fn start_with(host: Host, tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let mut cfg = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    tweak(&mut cfg);
    let server = Server::bind(host, cfg).await.unwrap();
    let (stop, rx) = watch::channel(false);
    let t = TestServer {
        url: server.url(),
        addr: server.addr,
        redirect_addr: server.redirect_addr,
        shared: server.shared.clone(),
        stop,
    };
    tokio::spawn(server.run(rx));
    t
}

pub async fn start(profile: &str, seed: u64) -> TestServer {
    start_with(host(profile, seed), |_| {}).await
}

impl TestServer {
    /// A client that trusts the self-signed certificate, not logged in.
    pub fn client(&self) -> Client {
        Client::new(&self.url, Trust::Any).unwrap()
    }
    /// A client logged in as root.
    pub async fn login(&self) -> Client {
        let mut c = self.client();
        c.login("root", PASSWORD).await.unwrap();
        c
    }
    /// Jumps the server's virtual clock forward.
    pub fn skip(&self, d: Duration) {
        self.shared.clock.lock().unwrap().skip(d);
    }
    /// Runs `f` on the host model (after moving it to now).
    pub fn with_host<R>(&self, f: impl FnOnce(&mut Host) -> R) -> R {
        let mut vim = self.shared.lock();
        f(&mut vim.host)
    }
    /// Waits (wall clock) until the host answers again after a reboot; returns a fresh login.
    pub async fn wait_back(&self, password: &str) -> Client {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let mut c = self.client();
            match c.login("root", password).await {
                Ok(_) => return c,
                Err(e) if tokio::time::Instant::now() > deadline => {
                    panic!("host did not come back: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

pub fn host_ref() -> MoRef {
    MoRef::new("HostSystem", "ha-host")
}
pub fn firmware() -> MoRef {
    MoRef::new("HostFirmwareSystem", "ha-firmwareSystem")
}
pub fn property_collector() -> MoRef {
    MoRef::new("PropertyCollector", "ha-property-collector")
}
pub fn account_manager() -> MoRef {
    MoRef::new("HostLocalAccountManager", "ha-localacctmgr")
}
pub fn options() -> MoRef {
    MoRef::new("OptionManager", "ha-adv-options")
}
