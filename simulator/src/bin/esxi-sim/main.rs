//! `esxi-sim`: the simulator's command line: `serve` puts a host on the wire (the vSphere API over
//! HTTPS), `profiles` lists the builds, `simulate` runs a host model for a span of virtual time,
//! `bootbank` writes a host's boot bank (after restoring a bundle) as files.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod ctl;
use esxi_sim::profile::{Profile, Schedule};
use esxi_sim::HostConfig;

#[derive(Parser)]
#[command(
    name = "esxi-sim",
    version,
    about = "A mock ESXi host for configuration backup/restore testing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a simulated ESXi host (or a fleet, or a fleet behind a vCenter): the vSphere SOAP
    /// API over HTTPS at /sdk, the bundle downloads and uploads. Prints `ready: <url>` once it
    /// accepts connections.
    Serve(Box<ServeArgs>),
    /// Drive a running simulator through its control API (`serve --control ADDR`).
    Ctl(ctl::CtlArgs),
    /// List the build profiles.
    Profiles,
    /// Write a host's boot bank as files (boot.cfg, s.v00, useropts.gz, jumpstrt.gz, state.tgz):
    /// a fresh install's, or the one a forced restore of BUNDLE leaves. Forensic readers load
    /// such a directory as an ESXi host (dissect.target: `target-query DIR -f hostname`).
    Bootbank(BootbankArgs),
    /// Run one host model for a span of virtual time and print its event log.
    Simulate {
        #[arg(long, default_value = "6.7U3")]
        profile: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Virtual hours to run.
        #[arg(long, default_value_t = 3)]
        hours: u64,
        /// Override the auto-backup schedule (`every-10-minutes`, `1 * * * *`, ...).
        #[arg(long)]
        schedule: Option<String>,
        /// Edit /etc/hosts every this many minutes (0: never).
        #[arg(long, default_value_t = 25)]
        edit_every: u64,
    },
}

#[derive(clap::Args)]
struct BootbankArgs {
    /// The directory to write (made if missing; files of the same names are replaced).
    #[arg(long)]
    out: std::path::PathBuf,
    /// A configuration bundle (configBundle-*.tgz) to restore first, as
    /// RestoreFirmwareConfiguration with force does. Its release level names the build.
    #[arg(long)]
    bundle: Option<std::path::PathBuf>,
    /// Build profile (default: the bundle's, else 8.0U3).
    #[arg(long)]
    profile: Option<String>,
    /// Seed of the host.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// 7.0 U2 and later: the host's encryption mode at install (`none` or `tpm`).
    #[arg(long, default_value = "none", value_parser = parse_mode)]
    encryption: esxi_sim::keystore::Mode,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (port 0: any free port; the ready line tells which).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: std::net::SocketAddr,
    /// Build profile (see `esxi-sim profiles`).
    #[arg(long, default_value = "6.7U3")]
    profile: String,
    /// The administrator account (root on ESXi; another name is created next to root).
    #[arg(long, default_value = "root")]
    user: String,
    /// The administrator's password at install time.
    #[arg(long, default_value = esxi_sim::host::DEFAULT_ROOT_PASSWORD)]
    password: String,
    /// Seed of the host's identity and of every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Host name at install (default: derived from the seed).
    #[arg(long)]
    hostname: Option<String>,
    /// SMBIOS system UUID, uppercase (default: derived from the seed).
    #[arg(long)]
    uuid: Option<String>,
    /// How long a reboot keeps the host unreachable (virtual time: `90s`, `2m`, `500ms`).
    #[arg(long, value_parser = parse_duration)]
    boot_time: Option<Duration>,
    /// The first part of a reboot, while hostd stops: the port answers `503 Service
    /// Unavailable` as the reverse proxy does (at most a quarter of the boot time).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    stopping_time: Duration,
    /// The last part of a boot, while hostd starts: `503` again (at most a quarter of the boot
    /// time). Between the two the port is closed.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    hostd_start_time: Duration,
    /// While a host is down: `refuse` connections (the port is closed, as on a real host) or
    /// `close` them once accepted (a reset; what esxi-sim did before).
    #[arg(long, default_value = "refuse", value_parser = ["refuse", "close"])]
    down_connections: String,
    /// 7.0 U2 and later: how the first boot seals the configuration, `none` (the default: the
    /// key derives from encryption.info) or `tpm` (sealed to the host's TPM, with a recovery
    /// key). A fleet's mix can say it per entry: `8.0U3+tpm:10`.
    #[arg(long, default_value = "none", value_parser = parse_mode)]
    encryption: esxi_sim::keystore::Mode,
    /// Virtual seconds per wall-clock second (60: an hour of schedule per minute).
    #[arg(long, default_value_t = 1.0)]
    clock_speed: f64,
    /// Override the auto-backup schedule (`every-10-minutes`, `1 * * * *`, ...).
    #[arg(long)]
    schedule: Option<String>,
    /// Serve plain HTTP instead of HTTPS (debugging only).
    #[arg(long)]
    plain_http: bool,
    /// PEM certificate (default: a self-signed one made at start).
    #[arg(long, requires = "key")]
    cert: Option<std::path::PathBuf>,
    /// PEM private key for --cert.
    #[arg(long, requires = "cert")]
    key: Option<std::path::PathBuf>,
    /// Also listen here with plain HTTP answering `301` to https (a real host's port 80).
    #[arg(long)]
    redirect_listen: Option<std::net::SocketAddr>,
    /// Fleets: every host also answers plain HTTP on this port with `301` to https, as port 80
    /// on a real host (`--addresses`: this port on each host's address; `--ports`: this port
    /// plus the host's index; 0: any free port).
    #[arg(long)]
    redirect_port: Option<u16>,
    /// Firmware URLs as a real host writes them (`esxi`: http://*/...), with scheme and port
    /// (`explicit`: https://*:PORT/...), or `auto` (esxi exactly on port 443).
    #[arg(long, default_value = "auto", value_parser = ["auto", "esxi", "explicit"])]
    url_style: String,
    /// Idle time after which a session ends (virtual time).
    #[arg(long, value_parser = parse_duration, default_value = "30m")]
    session_timeout: Duration,
    /// Largest accepted upload, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    max_upload: usize,
    /// Record every request (endpoint, SOAP method and object, user, client, status, fault,
    /// bytes) here as JSON lines; a fleet's control API also serves it (GET /v1/trace).
    #[arg(long)]
    trace: Option<std::path::PathBuf>,
    /// More logging (-v requests, -vv calls, -vvv everything); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,

    // ---- fleets --------------------------------------------------------------------------
    /// Serve this many hosts (a fleet), each its own endpoint.
    #[arg(long, help_heading = "Fleets")]
    hosts: Option<usize>,
    /// `esxi`: hosts only; `vcenter`: also a vCenter endpoint at --listen in front of them.
    #[arg(long, default_value = "esxi", value_parser = ["esxi", "vcenter"], help_heading = "Fleets")]
    mode: String,
    /// A mix of builds in host order, e.g. `6.7U3:100,8.0U3:40` (instead of --profile).
    #[arg(long, conflicts_with = "profile", help_heading = "Fleets")]
    profiles: Option<String>,
    /// Give host i the address FIRST+i (all on --host-port), as real hosts.
    #[arg(long, conflicts_with = "ports", help_heading = "Fleets")]
    addresses: Option<std::net::Ipv4Addr>,
    /// The port every host listens on with --addresses.
    #[arg(long, default_value_t = 443, help_heading = "Fleets")]
    host_port: u16,
    /// Give host i the port FIRST+i on the --listen address (0: any free port each). Default:
    /// --listen's port (esxi mode) or the one after it (vcenter mode).
    #[arg(long, help_heading = "Fleets")]
    ports: Option<u16>,
    /// Serve the control API (JSON over HTTP) here; see docs/control-api.md.
    #[arg(long, help_heading = "Fleets")]
    control: Option<std::net::SocketAddr>,
    /// The control API's bearer token (`Authorization: Bearer TOKEN`). Default: one made at
    /// start, printed as `control-token:` and written where `esxi-sim ctl` finds it.
    #[arg(long, env = "ESXI_SIM_CONTROL_TOKEN", help_heading = "Fleets")]
    control_token: Option<String>,
    /// Serve the control API without a token: anyone who reaches it drives the fleet.
    #[arg(long, conflicts_with = "control_token", help_heading = "Fleets")]
    no_control_token: bool,
    /// Allow --control on an address other than loopback (the control API has no TLS).
    #[arg(long, help_heading = "Fleets")]
    control_remote: bool,
    /// A name the control API answers to in `Host` besides IP addresses and localhost (a CI
    /// service name); repeatable. Other names are refused (DNS rebinding).
    #[arg(long, help_heading = "Fleets")]
    control_host: Vec<String>,
    /// vCenter's administrator.
    #[arg(
        long,
        default_value = "administrator@vsphere.local",
        help_heading = "Fleets"
    )]
    vcenter_user: String,
    /// vCenter administrator's password.
    #[arg(long, default_value = "VMware1!", help_heading = "Fleets")]
    vcenter_password: String,
    /// The vCenter's build, a profile name (default: its newest host's). From 8.0U1 it also
    /// speaks VI/JSON (docs/vi-json.md); older ones, and hosts, speak SOAP only.
    #[arg(long, help_heading = "Fleets")]
    vcenter_version: Option<String>,
    /// Write the fleet's hosts (index, name, url) to this file as JSON.
    #[arg(long, help_heading = "Fleets")]
    hosts_file: Option<std::path::PathBuf>,
    /// Write the fleet CA's certificate (PEM) here: every host's and the vCenter's certificate
    /// chains to it, so clients can verify them (also GET /v1/ca.pem).
    #[arg(long, help_heading = "Fleets")]
    ca_out: Option<std::path::PathBuf>,
}

impl ServeArgs {
    /// Whether this asks for more than the plain single host.
    fn is_fleet(&self) -> bool {
        self.hosts.is_some()
            || self.mode != "esxi"
            || self.profiles.is_some()
            || self.addresses.is_some()
            || self.ports.is_some()
            || self.control.is_some()
            || self.ca_out.is_some()
            || self.vcenter_version.is_some()
    }
}

fn parse_mode(s: &str) -> Result<esxi_sim::keystore::Mode, String> {
    s.parse()
}

/// `bootbank`: a host of the bundle's build restores it (forced: the bundle may come from
/// another host), boots, and its /bootbank is written out.
fn bootbank(a: BootbankArgs) -> Result<(), Box<dyn std::error::Error>> {
    use esxi_sim::bundle::{ConfigBundle, Limits};
    let bundle = match &a.bundle {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let parsed = ConfigBundle::parse(&bytes, &Limits::default())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Some((bytes, parsed.manifest.release_level))
        }
        None => None,
    };
    let profile = match (&a.profile, &bundle) {
        (Some(p), _) => Profile::named(p)?,
        (None, Some((_, level))) => Profile::all()
            .iter()
            .find(|p| &p.release_level == level)
            .cloned()
            .ok_or_else(|| {
                format!("no profile has the bundle's release level {level:?}: give --profile")
            })?,
        (None, None) => Profile::named("8.0U3")?,
    };
    let boot = Duration::from_secs(1);
    let mut host = HostConfig::new(profile.clone())
        .seed(a.seed)
        .encryption(a.encryption)
        .boot_time(boot)
        .build()?;
    if let Some((bytes, _)) = bundle {
        host.enter_maintenance_mode()?;
        host.restore_bundle(bytes, true)?;
        host.advance(boot * 2);
    }
    let bank = host.bootbank().ok_or("the host has no boot bank")?;
    let files = bank.directory(host.etc().image())?;
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    for (name, data) in &files {
        let path = a.out.join(name);
        std::fs::write(&path, data).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("{:>9} {}", data.len(), path.display());
    }
    println!(
        "ESXi {} ({}), host {}",
        profile.name,
        profile.release_level,
        host.hostname()
    );
    if let Some(why) = host.boot_halted() {
        println!("the boot stopped: {why}");
    }
    Ok(())
}

/// `500ms`, `90s`, `2m`, `1h`, `3d`, or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return esxi_sim::clock::parse_duration(&format!("{s}s"));
    }
    esxi_sim::clock::parse_duration(s)
}

fn init_logging(verbose: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => tracing_subscriber::EnvFilter::new(v),
        _ => tracing_subscriber::EnvFilter::new(match verbose {
            0 => "warn",
            1 => "esxi_sim=info",
            2 => "esxi_sim=debug",
            _ => "trace",
        }),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn url_style(s: &str) -> esxi_sim::server::UrlStyle {
    use esxi_sim::server::UrlStyle;
    match s {
        "esxi" => UrlStyle::Esxi,
        "explicit" => UrlStyle::Explicit,
        _ => UrlStyle::Auto,
    }
}

/// `serve` with fleet options: many hosts, a vCenter, the control API.
/// The reboot phases the serve flags ask for (`server::phases`).
fn reboot_phases(a: &ServeArgs) -> esxi_sim::server::RebootPhases {
    esxi_sim::server::RebootPhases {
        stopping: a.stopping_time,
        hostd_start: a.hostd_start_time,
        refuse_while_down: a.down_connections == "refuse",
    }
}

fn serve_fleet(a: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    use esxi_sim::fleet::{parse_profile_mix, Fleet, FleetBuilder, Layout, Mode};
    init_logging(a.verbose);
    if a.user != "root"
        || a.hostname.is_some()
        || a.uuid.is_some()
        || a.cert.is_some()
        || a.redirect_listen.is_some()
    {
        return Err("--user, --hostname, --uuid, --cert and --redirect-listen serve a single host; a fleet names its hosts esx-01, esx-02, ... with root".into());
    }
    let mode = if a.mode == "vcenter" {
        Mode::VCenter
    } else {
        Mode::Esxi
    };
    let mut b = FleetBuilder::default()
        .mode(mode)
        .seed(a.seed)
        .password(&a.password)
        .encryption(a.encryption);
    b = match &a.profiles {
        Some(mix) => {
            let mix = parse_profile_mix(mix)?;
            let refs: Vec<(&str, usize)> = mix.iter().map(|(p, n)| (p.as_str(), *n)).collect();
            b.profiles(&refs)
        }
        None => b.profile(&a.profile),
    };
    if let Some(n) = a.hosts {
        b = b.hosts(n);
    }
    let layout = match (a.addresses, a.ports) {
        (Some(first), _) => Layout::Addresses {
            first,
            port: a.host_port,
        },
        (None, Some(first)) => Layout::Ports {
            ip: a.listen.ip(),
            first,
        },
        (None, None) => Layout::Ports {
            ip: a.listen.ip(),
            first: match (mode, a.listen.port()) {
                (_, 0) => 0,
                (Mode::Esxi, p) => p,
                (Mode::VCenter, p) => p.checked_add(1).ok_or("--listen's port is the last one")?,
            },
        },
    };
    b = b
        .layout(layout)
        .vcenter_listen(a.listen)
        .vcenter_credentials(&a.vcenter_user, &a.vcenter_password)
        .clock_speed(a.clock_speed)
        .url_style(url_style(&a.url_style));
    if a.plain_http {
        b = b.plain_http();
    }
    if let Some(v) = &a.vcenter_version {
        if mode != Mode::VCenter {
            return Err("--vcenter-version needs --mode vcenter".into());
        }
        b = b.vcenter_version(v);
    }
    if let Some(bt) = a.boot_time {
        b = b.boot_time(bt);
    }
    b = b.reboot_phases(reboot_phases(&a));
    if let Some(s) = &a.schedule {
        b = b.schedule(Schedule::parse(s)?);
    }
    if let Some(c) = a.control {
        b = b.control(c);
    }
    if let Some(t) = &a.control_token {
        b = b.control_token(t);
    }
    if a.no_control_token {
        b = b.control_open();
    }
    let session_timeout = a.session_timeout;
    let max_upload = a.max_upload;
    let redirect_port = a.redirect_port;
    let trace = match &a.trace {
        Some(p) => Some(std::sync::Arc::new(esxi_sim::server::trace::Trace::new(
            Some(p),
        )?)),
        None => None,
    };
    let (control_remote, control_hosts) = (a.control_remote, a.control_host.clone());
    b = b.config(|c| {
        c.trace = trace;
        c.redirect_port = redirect_port;
        c.session_timeout = session_timeout;
        c.max_upload = max_upload;
        c.control_remote = control_remote;
        c.control_hosts = control_hosts;
    });
    let cfg = b.resolve()?;
    let hosts: usize = cfg.profiles.iter().map(|(_, n)| n).sum();
    ensure_file_limit(hosts)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let started = std::time::Instant::now();
        let fleet = Fleet::start(cfg).await?;
        if let (Some(path), Some(pem)) = (&a.ca_out, fleet.ca_pem()) {
            std::fs::write(path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        if let Some(path) = &a.hosts_file {
            let list: Vec<serde_json::Value> = fleet
                .hosts()
                .iter()
                .map(|h| serde_json::json!({"index": h.index, "id": h.vcenter_id(), "name": h.name, "url": h.url}))
                .collect();
            std::fs::write(path, serde_json::to_vec_pretty(&list)?)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        // The token goes where `esxi-sim ctl` looks for it; the file goes with the process.
        // Without a place to write it, the printed line is the only copy: say so, go on.
        let token_file = match (fleet.control_addr, fleet.control_token()) {
            (Some(addr), Some(t)) => {
                match esxi_sim::fleet::control::write_token_file(addr, t) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        eprintln!("esxi-sim: the control token is not saved for `esxi-sim ctl`: {e}");
                        None
                    }
                }
            }
            _ => None,
        };
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let first = fleet.hosts()[0].url.clone();
            let main = fleet.vcenter_url().unwrap_or(first);
            if let Some(c) = fleet.control_url() {
                writeln!(out, "control: {c}")?;
                if a.control_token.is_none() {
                    if let Some(t) = fleet.control_token() {
                        writeln!(out, "control-token: {t}")?;
                    }
                }
                if let Some(p) = &token_file {
                    writeln!(out, "control-token-file: {}", p.display())?;
                }
            }
            let hosts = fleet.hosts();
            if hosts.len() <= 16 {
                for h in hosts {
                    writeln!(out, "host {}: {}", h.index, h.url)?;
                    if let Some(r) = h.redirect_addr {
                        writeln!(out, "host {} redirect: http://{r}/ -> https", h.index)?;
                    }
                }
            } else {
                writeln!(out, "hosts: {} ({} .. {})", hosts.len(), hosts[0].url, hosts[hosts.len() - 1].url)?;
            }
            writeln!(out, "started in {:.2} s", started.elapsed().as_secs_f64())?;
            writeln!(out, "ready: {main}")?;
            out.flush()?;
        }
        wait_for_signal().await;
        fleet.shutdown().await;
        if let Some(p) = token_file {
            let _ = std::fs::remove_file(p);
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}

/// Every host is a listening socket, and each client connection another descriptor: raise the
/// soft open-file limit (as servers do), and say so plainly when even that is too low, instead
/// of failing at the 1,021st bind.
fn ensure_file_limit(hosts: usize) -> Result<(), String> {
    // Listeners, the vCenter and control listeners, and room for clients.
    let want = (hosts + 256) as u64;
    match esxi_sim::server::raise_file_limit(want) {
        Some(limit) if limit < want => Err(format!(
            "{hosts} hosts need about {want} open files, and the limit is {limit} (raise it \
             with `ulimit -n {want}` or in /etc/security/limits.conf)"
        )),
        _ => Ok(()),
    }
}

fn serve(a: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    use esxi_sim::server::{CertSource, Server, ServerConfig};
    if a.is_fleet() {
        return serve_fleet(a);
    }
    init_logging(a.verbose);
    let reboot = reboot_phases(&a);
    let profile = Profile::named(&a.profile)?;
    if a.encryption == esxi_sim::keystore::Mode::Tpm
        && profile.era != esxi_sim::profile::Era::Encrypted
    {
        return Err(format!(
            "--encryption tpm: ESXi {} does not encrypt its configuration (7.0 U2 and later do)",
            profile.name
        )
        .into());
    }
    let mut cfg = HostConfig::new(profile)
        .encryption(a.encryption)
        .seed(a.seed)
        .root_password(if a.user == "root" {
            a.password.clone()
        } else {
            esxi_sim::host::DEFAULT_ROOT_PASSWORD.to_string()
        });
    if let Some(h) = a.hostname {
        cfg = cfg.hostname(h);
    }
    if let Some(u) = a.uuid {
        cfg = cfg.uuid(u);
    }
    if let Some(b) = a.boot_time {
        cfg = cfg.boot_time(b);
    }
    if let Some(s) = a.schedule {
        cfg = cfg.schedule(Schedule::parse(&s)?);
    }
    let mut host = cfg.build()?;
    if a.user != "root" {
        host.create_user(&a.user, &a.password, "esxi-sim administrator")?;
    }
    let mut sc = ServerConfig::new(a.listen);
    sc.reboot = reboot;
    sc.tls = match (a.plain_http, a.cert, a.key) {
        (true, _, _) => None,
        (false, Some(cert), Some(key)) => Some(CertSource::Files { cert, key }),
        _ => Some(CertSource::SelfSigned),
    };
    if a.redirect_port.is_some() {
        return Err(
            "--redirect-port is for fleets (--hosts); a single host takes --redirect-listen ADDR"
                .into(),
        );
    }
    sc.redirect = a.redirect_listen;
    sc.url_style = url_style(&a.url_style);
    sc.clock_speed = a.clock_speed;
    sc.max_upload = a.max_upload;
    sc.vim.session_timeout = a.session_timeout;
    if let Some(p) = &a.trace {
        sc.trace = Some(std::sync::Arc::new(esxi_sim::server::trace::Trace::new(
            Some(p),
        )?));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = Server::bind(host, sc).await?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            let _ = tx.send(true);
        });
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "ready: {}", server.url())?;
            if let Some(r) = server.redirect_addr {
                writeln!(out, "redirect: http://{r}/ -> https")?;
            }
            out.flush()?;
        }
        server.run(rx).await;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        // A printing command piped into `head` ends quietly when the reader goes, as other
        // command-line tools do (Rust ignores SIGPIPE, so println! would panic). The server
        // keeps ignoring it: a client that hangs up is an error on that connection only.
        // SAFETY: called before any thread exists; SIG_DFL is a valid disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("esxi-sim: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cmd: Command) -> Result<(), Box<dyn std::error::Error>> {
    match cmd {
        Command::Serve(a) => serve(*a)?,
        Command::Ctl(a) => ctl::run(a)?,
        Command::Profiles => {
            println!(
                "{:<8} {:<8} {:<10} {:<10} {:<34} {:<17} persistence",
                "name", "version", "build", "api", "release level", "schedule"
            );
            for p in Profile::all() {
                println!(
                    "{:<8} {:<8} {:<10} {:<10} {:<34} {:<17} {}",
                    p.name,
                    p.version,
                    p.build,
                    p.api_version,
                    p.release_level,
                    p.schedule.to_string(),
                    p.era.name()
                );
            }
        }
        Command::Bootbank(a) => bootbank(a)?,
        Command::Simulate {
            profile,
            seed,
            hours,
            schedule,
            edit_every,
        } => {
            let mut cfg = HostConfig::new(Profile::named(&profile)?).seed(seed);
            if let Some(s) = schedule {
                cfg = cfg.schedule(Schedule::parse(&s)?);
            }
            let mut host = cfg.build()?;
            let end = host.now().plus(Duration::from_secs(hours * 3600));
            let mut n = 0;
            while host.now() < end {
                let step = if edit_every == 0 {
                    hours * 60
                } else {
                    edit_every
                };
                host.advance(Duration::from_secs(step * 60));
                if edit_every > 0 && host.now() < end {
                    n += 1;
                    host.write_file("/etc/hosts", format!("10.0.0.{n} nas\n"))?;
                }
            }
            host.advance_to(end);
            for e in host.events().iter() {
                println!("{e}");
            }
            println!("boot bank: {}", host.bootbank_writes());
        }
    }
    Ok(())
}
