//! # esxi-sim: a mock ESXi host for testing configuration backup and restore
//!
//! A real ESXi host runs from RAM. Its `/etc` is a RAM file system; the files that persist are
//! those marked "sticky", which a job saves into `state.tgz` on the boot bank every so often
//! (hourly on 5.x–6.7, about every 10 minutes elsewhere). A crash loses what changed since the last
//! save. The vSphere API's HostFirmwareSystem packs that state into a configuration bundle and
//! restores one (maintenance mode, force for another host, a forced reboot). This crate models all
//! of that, deterministically, so backup tooling can be tested without hardware.
//!
//! ## A map of the crate (read in this order)
//!
//! - [`clock`]: virtual time. The model never reads the wall clock; [`clock::SimTime`] moves only
//!   when a caller advances it. [`clock::RealTimeClock`] maps wall time onto it for interactive use.
//! - [`rng`]: the model's only randomness, a seeded SplitMix64. Same seed, same host, same
//!   failures.
//! - [`secret`]: what is *not* the model's: session cookies, download ids and the control token
//!   come from the OS's CSPRNG, so a seed reproduces behaviour but never a secret.
//! - [`profile`]: ESXi builds (`6.7U3`, `8.0U3`, ...) from the embedded `profiles.toml`: version,
//!   build, API versions, release level, auto-backup schedule, sync rate limit.
//! - [`host`]: one host as a pure state machine, one concept per file:
//!   - [`host::etc`]: RAM `/etc` over the shared [`host::image`], with the `.#` marker rule;
//!   - [`host::bootbank`]: `boot.cfg`, `state.tgz` bytes, `useropts.gz`, flash write counters;
//!   - [`host::persist`]: `backup.sh`, `auto-backup.sh`, SyncFirmwareConfiguration's rate limit;
//!   - [`host::power`]: boot, crash, power cut, graceful and forced reboot;
//!   - [`host::firmware`]: backup bundles, upload, restore and reset with firmwareConfig.sh's rules;
//!   - [`host::accounts`]: `/etc/passwd` and `/etc/shadow` with real SHA-512 crypt;
//!   - [`host::flash`]: a failing boot device (read-only, full, a torn write);
//!   - [`host::events`]: the event log a failure report shows;
//!   - [`host::image`] and `host::image_files`: the image's `/etc` and the files a first boot
//!     writes, per release (7.0+: the ConfigStore a fresh install starts from);
//!   - `host::placement`: where a setting lives in each release (`/etc`, esx.conf, the
//!     ConfigStore);
//!   - [`host::permissions`]: hostd's permissions, configuration like any other
//!     (authorization.xml before 7.0, the ConfigStore after);
//!   - [`host::encryption`] and [`host::tpm`]: 7.0 U2+'s key store in NONE or TPM mode, the
//!     recovery key, a replaced board, a boot that halts until the key is given.
//! - [`state`]: the one seam between a host and the formats of `state.tgz` in each persistence
//!   era: plain `local.tgz` (4.x–6.7), with the ConfigStore (7.0, 7.0 U1), encrypted (7.0 U2+).
//!   Below it, one format per file:
//!   - [`archive`] over [`deflate`]: `tar czf` from members deflated once and reused, so a save
//!     compresses only what changed and image files are compressed once per process;
//!   - [`configstore`]: the ConfigStore as real SQLite bytes;
//!   - [`envelope`] and [`keystore`]: `local.tgz.ve` (AES-256-GCM) and `encryption.info`;
//!   - [`bundle`]: `configBundle-<host>.tgz` (Manifest.txt + state.tgz) and a reader that is safe
//!     against hostile archives;
//!   - [`vmtar`]: the visor tar of a boot bank's `s.v00`, for `esxi-sim bootbank`.
//!
//! On the wire (the vSphere API, what pyVmomi, govc, Ansible and PowerCLI talk to):
//!
//! - [`api`]: what a call is made of whatever the wire: the decoded call and its parameters
//!   (`api::Call`, `api::Param`), managed-object references, the value tree (data objects,
//!   arrays, anyType positions marked), faults. Managed objects read and answer in these.
//! - [`soap`]: the envelope reader (quick-xml, bounded) into an `api::Call`; the writers of
//!   responses and faults, values with `xsi:type` where the schema says anyType.
//! - [`vijson`]: the second wire (VI/JSON, a vCenter of 8.0U1+): a call's JSON parameters read
//!   into the same `api::Param` tree (bounded like the XML reader), values with `_typeName` and
//!   anyType boxes, faults as their JSON object.
//! - [`vim`]: the managed objects of a standalone host, one file per type: `service_instance`,
//!   `session_manager`, `property_collector` (Fetch, RetrievePropertiesEx, filters,
//!   WaitForUpdates), `view_manager`, `inventory`, `host_system`, `task`, `firmware_system`,
//!   `local_account_manager`, `option_manager`, `search_index`, `event_manager` (the host
//!   model's event log as vSphere events), `task_history_collector` (both page through
//!   `history_collector`'s scroll), `perf_manager`,
//!   `agent_settings` (ServiceContent.setting), `host_network` (and the virtual NIC manager),
//!   `host_date_time_system`,
//!   `authorization_manager` (roles, and the host's permissions), `user_directory` (its local
//!   accounts), `diagnostic_manager` (hostd's log told from the event log), `license_manager`,
//!   and
//!   esxcli over the API:
//!   `managed_method_executer` (ExecuteSoap), `dynamic_type_manager`, with the commands in
//!   [`vim::esxcli`], one file per namespace. A SOAP method lives in the file of the type it is
//!   called on; [`vim::registry`] says which file that is, once for every call. Policies the
//!   objects share: [`vim::lockout`] (failed logins), [`vim::password_quality`] (passwdqc's
//!   rules for new passwords), [`vim::limits`] (what a session and an endpoint may keep,
//!   `docs/limits.md`).
//! - [`vim::changes`]: how a waiting WaitForUpdates learns there may be news without polling:
//!   each API state's change signal (bumped by any call but the reads, by time running
//!   something, by the control API) and the horizon at which what it read changes by time
//!   alone.
//! - [`server`]: hyper + tokio + rustls: `/sdk` ([`server::sdk`] reads and writes SOAP;
//!   [`server::call`] serves the decoded call, fault rules, trace note and answer loop the same
//!   for any wire; the session cookie is [`server::cookie`]'s), VI/JSON's `/sdk/vim25/...` and
//!   release negotiation ([`server::vijson`], the `vmware-api-session-id` header),
//!   `/sdk/vimServiceVersions.xml`, the WSDL
//!   generated from the registry's methods ([`server::wsdl`]), `/downloads`,
//!   `/tmp/configBundle.tgz`, the port-80 redirect. It maps the wall clock onto virtual time,
//!   and applies the fault rules of [`server::faults`] before a request reaches the host.
//!   CPU-heavy calls (password hashes, bundles, sealing) run on [`server::offload`]'s bounded
//!   pool, never on the async workers; accept loops back off at descriptor exhaustion
//!   ([`server::AcceptBackoff`]). A wait with nothing to report parks on its state's change
//!   signal and horizon ([`vim::changes`]): idle waits cost no CPU. A rebooting host's port
//!   goes through a real host's phases ([`server::phases`]: 503 while hostd stops, closed while
//!   down, 503 while hostd starts).
//! - [`vim::vcenter`]: a vCenter endpoint over many hosts (vCenter ids, calls forwarded to the
//!   host as vpxd does). Its ids have one grammar, [`vim::vcenter_ids`]; a call is routed once,
//!   where its session and object are checked ([`vim::route`]: answered here, or `Forward` to
//!   host i's object), and the server forwards after releasing the vCenter's lock.
//! - [`fleet`]: many hosts and a vCenter in one process, one clock, the event log, and the JSON
//!   control API tests drive them with (`docs/control-api.md`).
//!
//! Data flows one way: a request enters [`server`], is decoded by [`soap`] (or [`vijson`]) into
//! an [`api::Call`], answered by [`server::call`], dispatched by [`vim`]
//! to a managed object, which drives the [`host::Host`]; the host reads time only from its own
//! virtual `now`. Nothing in `host` knows about HTTP or XML; nothing in `server` knows about
//! sticky files.
//!
//! ```
//! use esxi_sim::{host::HostConfig, profile::Profile};
//! use std::time::Duration;
//!
//! let mut host = HostConfig::new(Profile::named("8.0U3").unwrap()).seed(7).build().unwrap();
//! host.write_file("/etc/hosts", "10.0.0.1 nas\n").unwrap();
//! host.crash().unwrap();          // inside the 10-minute window: the edit is lost
//! host.power_on().unwrap();
//! host.wait_until_running();
//! assert!(!host.read_text("/etc/hosts").unwrap().unwrap().contains("nas"));
//!
//! host.write_file("/etc/hosts", "10.0.0.1 nas\n").unwrap();
//! host.advance(Duration::from_secs(600)); // auto-backup runs and saves it
//! host.crash().unwrap();
//! host.power_on().unwrap();
//! host.wait_until_running();
//! assert!(host.read_text("/etc/hosts").unwrap().unwrap().contains("nas"));
//! ```

pub mod api;
pub mod archive;
pub mod bundle;
pub mod clock;
pub mod configstore;
pub mod deflate;
pub mod envelope;
pub mod fleet;
pub mod host;
pub mod keystore;
pub mod profile;
pub mod rng;
pub mod secret;
pub mod server;
pub mod soap;
pub mod state;
pub mod vijson;
pub mod vim;
pub mod vmtar;

pub use host::{Host, HostConfig, HostError};
pub use profile::Profile;
