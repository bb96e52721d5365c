//! Runs one scenario on one target and profile: each step in order, each expectation checked,
//! the first failure reported with the step, its line, what was expected and what was seen.
//!
//! Portable steps go through the vSphere API with [`crate::client`] on every target, so a
//! scenario that passes on the simulator exercises the same calls a real host gets. Simulator-only
//! steps reach into the embedded model. A scenario that needs what its target cannot do is
//! skipped as a whole, with the reason (its later expectations would mean nothing).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use esxi_sim::api::MoRef;
use esxi_sim::bundle::{read_tgz, ConfigBundle, Limits};
use esxi_sim::configstore::{Column, Key};
use esxi_sim::host::RebootKind;
use esxi_sim::keystore::{KeyStore, Mode, RecoveryKey};
use esxi_sim::state::{KeyContext, StateError};

use crate::sim::Mark;
use hyper::StatusCode;

use crate::client::{as_moref, esc, returnval, Client, ClientError};
use crate::scenario::{
    Action, BundleCheck, FileCheck, Layout, OptValue, Scenario, StateCheck, Step, StoreCheck,
    UploadSource, ValueCheck,
};
use crate::target::{Target, TargetSpec, EMBEDDED_BOOT};

/// How one scenario × profile ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Passed,
    Failed(Failure),
    Skipped(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// 1-based step number, its line in the file and its action.
    pub step: usize,
    pub line: usize,
    pub action: String,
    pub expected: String,
    pub seen: String,
}

#[derive(Clone, Debug)]
pub struct CaseResult {
    pub scenario: String,
    pub file: String,
    pub checks: String,
    pub fact: String,
    pub profile: String,
    pub seed: u64,
    pub outcome: Outcome,
    pub duration: Duration,
    pub steps_run: usize,
    /// The host's last events (embedded targets), for failure reports.
    pub events: Vec<String>,
    /// Bundles the run made or used, by name (kept on failure with --keep-artifacts).
    pub bundles: Vec<(String, Vec<u8>)>,
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub target: TargetSpec,
    pub seed: u64,
    pub allow_destructive: bool,
    /// Where `run` steps get their work directories.
    pub work_root: PathBuf,
}

fn host_ref() -> MoRef {
    MoRef::new("HostSystem", "ha-host")
}

/// The state a run carries from step to step. `host` is the host the current step runs on;
/// other hosts (`host = "..."` steps) wait in `parked` and are swapped in by [`Run::select`].
struct Run {
    /// The host the current step runs on (its `name` None: the scenario's own host).
    host: HostSlot,
    parked: Vec<HostSlot>,
    /// For installing another host: the run's build and seed.
    profile: String,
    seed: u64,
    bundles: HashMap<String, (Vec<u8>, String)>,
    order: Vec<String>,
    /// Recovery keys read by `read_recovery_key`, by name (as esxcli prints them).
    recovery_keys: HashMap<String, String>,
    workdir: PathBuf,
    /// The scenario file's directory (`run` steps find their tools relative to it).
    scenario_dir: PathBuf,
}

/// One host of a run: the current one, or one parked until a step names it.
struct HostSlot {
    name: Option<String>,
    target: Arc<Target>,
    client: Client,
    password: String,
    initial_password: String,
    uploaded_password: Option<String>,
    firmware: MoRef,
    mark: Mark,
}

/// Another host's seed: its own, so its UUID, keys and TPM differ from the scenario host's.
fn other_seed(seed: u64, name: &str) -> u64 {
    // FNV-1a of the name, mixed into the run's seed.
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    seed ^ h ^ 0x9e37_79b9_7f4a_7c15
}

type StepResult = Result<(), (String, String)>;

fn fail(expected: impl Into<String>, seen: impl Into<String>) -> (String, String) {
    (expected.into(), seen.into())
}

/// Runs one scenario on one profile.
pub async fn run_case(sc: &Scenario, profile: &str, opts: &RunOptions) -> CaseResult {
    let started = Instant::now();
    let mut result = CaseResult {
        scenario: sc.name.clone(),
        file: sc.file.clone(),
        checks: sc.checks.clone(),
        fact: sc.fact.clone(),
        profile: profile.to_string(),
        seed: opts.seed,
        outcome: Outcome::Passed,
        duration: Duration::ZERO,
        steps_run: 0,
        events: Vec::new(),
        bundles: Vec::new(),
    };
    let skip = match &opts.target {
        TargetSpec::Embedded => None,
        TargetSpec::Remote { .. } => sc
            .needs_simulator()
            .filter(|_| !opts.target.has_simulator())
            .map(|s| {
                format!(
                    "needs the simulator: step '{}' (line {}) cannot run on a real host \
                     (an esxi-sim target runs it with --control-url)",
                    s.action.name(),
                    s.line
                )
            })
            .or_else(|| {
                (!opts.allow_destructive)
                    .then(|| sc.destructive())
                    .flatten()
                    .map(|s| {
                        format!(
                            "destructive step '{}' (line {}) needs --allow-destructive",
                            s.action.name(),
                            s.line
                        )
                    })
            }),
    };
    if let Some(reason) = skip {
        result.outcome = Outcome::Skipped(reason);
        return result;
    }
    let (target, password) = match &opts.target {
        TargetSpec::Embedded => match Target::embedded(profile, opts.seed).await {
            Ok(t) => t,
            Err(e) => {
                result.outcome = Outcome::Failed(Failure {
                    step: 0,
                    line: 0,
                    action: "start".into(),
                    expected: "an embedded host".into(),
                    seen: e,
                });
                return result;
            }
        },
        TargetSpec::Remote {
            url,
            user,
            password,
            trust,
            control,
        } => match Target::remote(url, user, trust.clone(), control.as_ref()).await {
            Ok(t) => (t, password.clone()),
            Err(e) => {
                result.outcome = Outcome::Failed(Failure {
                    step: 0,
                    line: 0,
                    action: "control".into(),
                    expected: "the host in the control API's list".into(),
                    seen: e,
                });
                return result;
            }
        },
    };
    // A scenario written for some builds runs on a served host of one of them only (embedded
    // runs are made per profile already).
    if !target.embedded && !sc.profiles.is_empty() {
        match target.profile_name().await {
            Ok(p) if sc.profiles.contains(&p) => {}
            Ok(p) => {
                result.outcome = Outcome::Skipped(format!(
                    "written for {}: the target runs {p}",
                    sc.profiles.join(", ")
                ));
                return result;
            }
            Err(e) => {
                result.outcome = Outcome::Failed(Failure {
                    step: 0,
                    line: 0,
                    action: "about".into(),
                    expected: "the target's build (RetrieveServiceContent)".into(),
                    seen: e.to_string(),
                });
                return result;
            }
        }
    }
    let workdir = opts
        .work_root
        .join(format!("{}-{}-{}", sc.name, profile, opts.seed));
    let _ = std::fs::create_dir_all(&workdir);
    let scenario_dir = std::path::Path::new(&sc.file)
        .parent()
        .map(|d| d.canonicalize().unwrap_or_else(|_| d.to_path_buf()))
        .unwrap_or_default();
    let target = Arc::new(target);
    let outcome = match start(
        target.clone(),
        password,
        (profile, opts.seed),
        workdir,
        scenario_dir,
    )
    .await
    {
        Err(e) => Outcome::Failed(Failure {
            step: 0,
            line: 0,
            action: "login".into(),
            expected: "a session".into(),
            seen: e.to_string(),
        }),
        Ok(mut run) => {
            let initial_mm = run
                .host
                .client
                .fetch_text(&host_ref(), "runtime.inMaintenanceMode")
                .await
                .map(|t| t == "true")
                .unwrap_or(false);
            let mut outcome = Outcome::Passed;
            for (i, step) in sc.steps.iter().enumerate() {
                result.steps_run = i + 1;
                if let Err((expected, seen)) = run.step(step).await {
                    outcome = Outcome::Failed(Failure {
                        step: i + 1,
                        line: step.line,
                        action: step.action.name().to_string(),
                        expected,
                        seen,
                    });
                    break;
                }
            }
            if !target.embedded && run.select(None).await.is_ok() {
                run.leave_as_found(initial_mm).await;
            }
            result.bundles = run
                .order
                .iter()
                .filter_map(|n| run.bundles.get(n).map(|(b, _)| (n.clone(), b.clone())))
                .collect();
            outcome
        }
    };
    result.events = match &target.sim {
        Some(sim) => sim.recent_events(15).await,
        None => Vec::new(),
    };
    result.outcome = outcome;
    result.duration = started.elapsed();
    result
}

async fn start(
    target: Arc<Target>,
    password: String,
    (profile, seed): (&str, u64),
    workdir: PathBuf,
    scenario_dir: PathBuf,
) -> Result<Run, ClientError> {
    let slot = connect(None, target, password).await?;
    Ok(Run {
        host: slot,
        parked: Vec::new(),
        profile: profile.to_string(),
        seed,
        bundles: HashMap::new(),
        order: Vec::new(),
        recovery_keys: HashMap::new(),
        workdir,
        scenario_dir,
    })
}

/// Logs in to a host and finds its firmware system.
async fn connect(
    name: Option<String>,
    target: Arc<Target>,
    password: String,
) -> Result<HostSlot, ClientError> {
    let mut client = target.client()?;
    client.login(&target.user, &password).await?;
    let fw = client
        .fetch(&host_ref(), "configManager.firmwareSystem")
        .await?
        .ok_or_else(|| ClientError::Protocol("the host has no firmware system".into()))?;
    let mark = match &target.sim {
        Some(sim) => sim.mark().await.map_err(ClientError::Io)?,
        None => Mark::default(),
    };
    Ok(HostSlot {
        name,
        target,
        client,
        initial_password: password.clone(),
        password,
        uploaded_password: None,
        firmware: as_moref(&fw)?,
        mark,
    })
}

fn describe(r: &Result<(), ClientError>) -> String {
    match r {
        Ok(()) => "success".into(),
        Err(e) => e.to_string(),
    }
}

impl Run {
    /// Makes `want` (None: the scenario's host) the host steps run on, installing it at its
    /// first use.
    async fn select(&mut self, want: Option<&str>) -> StepResult {
        if self.host.name.as_deref() == want {
            return Ok(());
        }
        let i = match self.parked.iter().position(|p| p.name.as_deref() == want) {
            Some(i) => i,
            None => {
                // Only other hosts are ever missing: the scenario's own is current or parked.
                let name = want.unwrap_or_default().to_string();
                let mut taken: Vec<String> = self.host.target.control_path().into_iter().collect();
                taken.extend(self.parked.iter().filter_map(|p| p.target.control_path()));
                let what = format!("another {} host named '{name}'", self.profile);
                let t = self
                    .host
                    .target
                    .another(&self.profile, other_seed(self.seed, &name), &taken)
                    .await
                    .map_err(|e| fail(what.clone(), e))?;
                // Every host of a run is installed with the same root password.
                let slot = connect(Some(name), Arc::new(t), self.host.initial_password.clone())
                    .await
                    .map_err(|e| fail(format!("{what} to take a login"), e.to_string()))?;
                self.parked.push(slot);
                self.parked.len() - 1
            }
        };
        let mut slot = self.parked.swap_remove(i);
        std::mem::swap(&mut self.host, &mut slot);
        self.parked.push(slot);
        Ok(())
    }

    /// One step: do it, then compare the outcome with the step's `expect_fault`.
    async fn step(&mut self, step: &Step) -> StepResult {
        self.select(step.host.as_deref()).await?;
        if step.action.is_simulator_step() {
            return self.sim_step(&step.action).await;
        }
        let r = self.api_step(&step.action).await;
        let r = match r {
            Ok(r) => r,
            Err(mismatch) => return Err(mismatch),
        };
        match (&step.expect_fault, &r) {
            (None, Ok(())) => Ok(()),
            (None, Err(e)) => Err(fail("success", e.to_string())),
            (Some(want), Ok(())) => Err(fail(format!("fault {want}"), "success")),
            (Some(want), Err(e)) => {
                if e.fault_type() != Some(want.as_str()) {
                    return Err(fail(format!("fault {want}"), describe(&r)));
                }
                for (k, v) in &step.fields {
                    let got = e.field(k);
                    if got.as_deref() != Some(v.as_str()) {
                        return Err(fail(
                            format!("{want}.{k} = {v}"),
                            format!("{want}.{k} = {}", got.unwrap_or_else(|| "(absent)".into())),
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// An API step. Ok(result of the call) for the fault check; Err for a failed expectation.
    async fn api_step(&mut self, a: &Action) -> Result<Result<(), ClientError>, (String, String)> {
        Ok(match a {
            Action::Login { user, password } => {
                let password = &self.resolve(password);
                let mut c = self
                    .host
                    .target
                    .client()
                    .map_err(|e| fail("a client", e.to_string()))?;
                match c.login(user, password).await {
                    Ok(_) => {
                        if user == &self.host.target.user {
                            self.host.password = password.clone();
                        }
                        self.host.client = c;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Action::SetPassword { user, password } => {
                let password = &self.resolve(password);
                let r = self.account("UpdateUser", user, Some(password)).await;
                if r.is_ok() && user == &self.host.target.user {
                    self.host.password = password.clone();
                }
                r
            }
            Action::CreateUser { user, password } => {
                self.account("CreateUser", user, Some(password)).await
            }
            Action::RemoveUser { user } => {
                let p = format!("<userName>{}</userName>", esc(user));
                self.host
                    .client
                    .call(
                        &MoRef::new("HostLocalAccountManager", "ha-localacctmgr"),
                        "RemoveUser",
                        &p,
                    )
                    .await
                    .map(|_| ())
            }
            Action::SetOption { key, value } => {
                let v = match value {
                    OptValue::Int(i) => format!("<value xsi:type=\"xsd:long\">{i}</value>"),
                    OptValue::Str(s) => {
                        format!("<value xsi:type=\"xsd:string\">{}</value>", esc(s))
                    }
                };
                let p = format!("<changedValue><key>{}</key>{v}</changedValue>", esc(key));
                let om = self
                    .options()
                    .await
                    .map_err(|e| fail("the option manager", e.to_string()))?;
                self.host
                    .client
                    .call(&om, "UpdateOptions", &p)
                    .await
                    .map(|_| ())
            }
            Action::ExpectOption { key, value } => {
                let om = self
                    .options()
                    .await
                    .map_err(|e| fail("the option manager", e.to_string()))?;
                let r = self
                    .host
                    .client
                    .call(&om, "QueryOptions", &format!("<name>{}</name>", esc(key)))
                    .await
                    .map_err(|e| fail(format!("{key} = {value}"), e.to_string()))?;
                let got = r
                    .all("returnval")
                    .find(|o| o.child_text("key") == Some(key.as_str()))
                    .and_then(|o| o.child_text("value").map(str::to_string))
                    .unwrap_or_else(|| "(unset)".into());
                let want = match value {
                    OptValue::Int(i) => i.to_string(),
                    OptValue::Str(s) => s.clone(),
                };
                if got != want {
                    return Err(fail(format!("{key} = {want}"), format!("{key} = {got}")));
                }
                Ok(())
            }
            Action::Backup { name } => match self.backup().await {
                Ok(bytes) => {
                    if !self.bundles.contains_key(name) {
                        self.order.push(name.clone());
                    }
                    self.bundles
                        .insert(name.clone(), (bytes, self.host.password.clone()));
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Action::Upload { source, rewrite } => {
                let (bytes, pw) = self.upload_bytes(source)?;
                let bytes = if rewrite.is_empty() {
                    bytes
                } else {
                    rewrite_manifest(&bytes, rewrite)?
                };
                self.host.uploaded_password = pw;
                self.upload(bytes).await
            }
            Action::Restore { force, halts } => {
                let p = format!("<force>{force}</force>");
                let fw = self.host.firmware.clone();
                let r = self
                    .host
                    .client
                    .call(&fw, "RestoreFirmwareConfiguration", &p)
                    .await;
                match rebooting(r.map(|_| ())) {
                    // The host may drop the connection as it reboots, or its proxy answer 503
                    // while hostd stops: that is success too.
                    Ok(_) => {
                        if let Some(pw) = self.host.uploaded_password.clone() {
                            self.host.password = pw;
                        }
                        if let Some(text) = halts {
                            self.expect_boot_halt(text).await?;
                            return Ok(Ok(()));
                        }
                        self.wait_reboot()
                            .await
                            .map_err(|e| fail("the host back after the restore", e.to_string()))?;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Action::Reset => {
                let fw = self.host.firmware.clone();
                match rebooting(
                    self.host
                        .client
                        .call(&fw, "ResetFirmwareToFactoryDefaults", "")
                        .await
                        .map(|_| ()),
                ) {
                    Ok(_) => {
                        self.host.password = String::new();
                        self.wait_reboot()
                            .await
                            .map_err(|e| fail("the host back after the reset", e.to_string()))?;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Action::Sync => {
                let fw = self.host.firmware.clone();
                self.host
                    .client
                    .call(&fw, "SyncFirmwareConfiguration", "")
                    .await
                    .map(|_| ())
            }
            Action::EnterMaintenance => {
                self.task("EnterMaintenanceMode_Task", "<timeout>0</timeout>")
                    .await
            }
            Action::ExitMaintenance => {
                self.task("ExitMaintenanceMode_Task", "<timeout>0</timeout>")
                    .await
            }
            Action::Reboot { force } => {
                match rebooting(
                    self.task("RebootHost_Task", &format!("<force>{force}</force>"))
                        .await,
                ) {
                    Ok(()) => {
                        self.wait_reboot()
                            .await
                            .map_err(|e| fail("the host back after the reboot", e.to_string()))?;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Action::WaitUntilUp => {
                self.wait_up()
                    .await
                    .map_err(|e| fail("the host answering", e.to_string()))?;
                Ok(())
            }
            Action::ExpectBundle(check) => {
                self.check_bundle(check).await?;
                Ok(())
            }
            Action::Run {
                command,
                timeout,
                bundle_out,
            } => {
                self.run_command(command, *timeout).await?;
                if let Some((path, name)) = bundle_out {
                    let p = self.workdir.join(path);
                    let bytes = std::fs::read(&p).map_err(|e| {
                        fail(
                            format!("the command to write {}", p.display()),
                            e.to_string(),
                        )
                    })?;
                    if !self.bundles.contains_key(name) {
                        self.order.push(name.clone());
                    }
                    self.bundles
                        .insert(name.clone(), (bytes, self.host.password.clone()));
                }
                Ok(())
            }
            other => {
                return Err(fail(
                    "a portable step",
                    format!("'{}' is simulator-only", other.name()),
                ))
            }
        })
    }

    /// On a real host, scenarios run one after another on the same machine: put back the root
    /// password and the maintenance mode the run found (best effort; a reset's other changes stay).
    async fn leave_as_found(&mut self, initial_mm: bool) {
        if self.host.password != self.host.initial_password {
            let pw = self.host.initial_password.clone();
            let user = self.host.target.user.clone();
            if self.wait_up_once().await.is_ok()
                && self.account("UpdateUser", &user, Some(&pw)).await.is_ok()
            {
                self.host.password = pw;
                // Persist it now, or the next reboot would bring back the scenario's password.
                let fw = self.host.firmware.clone();
                let _ = self
                    .host
                    .client
                    .call(&fw, "SyncFirmwareConfiguration", "")
                    .await;
            }
        }
        let mm = self
            .host
            .client
            .fetch_text(&host_ref(), "runtime.inMaintenanceMode")
            .await
            .map(|t| t == "true");
        if matches!(mm, Ok(true)) && !initial_mm {
            let _ = self
                .task("ExitMaintenanceMode_Task", "<timeout>0</timeout>")
                .await;
        }
    }

    /// `$initial` and `$current` in passwords.
    fn resolve(&self, password: &str) -> String {
        match password {
            crate::scenario::INITIAL => self.host.initial_password.clone(),
            crate::scenario::CURRENT => self.host.password.clone(),
            p => p.to_string(),
        }
    }

    async fn account(
        &mut self,
        method: &str,
        user: &str,
        password: Option<&str>,
    ) -> Result<(), ClientError> {
        let pw = password
            .map(|p| format!("<password>{}</password>", esc(p)))
            .unwrap_or_default();
        let p = format!(
            "<user xsi:type=\"HostPosixAccountSpec\"><id>{}</id>{pw}</user>",
            esc(user)
        );
        self.host
            .client
            .call(
                &MoRef::new("HostLocalAccountManager", "ha-localacctmgr"),
                method,
                &p,
            )
            .await
            .map(|_| ())
    }

    async fn options(&mut self) -> Result<MoRef, ClientError> {
        let el = self
            .host
            .client
            .fetch(&host_ref(), "configManager.advancedOption")
            .await?
            .ok_or_else(|| ClientError::Protocol("no advanced option manager".into()))?;
        as_moref(&el)
    }

    async fn task(&mut self, method: &str, params: &str) -> Result<(), ClientError> {
        let r = self.host.client.call(&host_ref(), method, params).await?;
        let task = as_moref(&returnval(&r)?)?;
        self.host.client.wait_task(&task).await.map(|_| ())
    }

    async fn backup(&mut self) -> Result<Vec<u8>, ClientError> {
        let fw = self.host.firmware.clone();
        let r = self
            .host
            .client
            .call(&fw, "BackupFirmwareConfiguration", "")
            .await?;
        let url = returnval(&r)?.text.trim().to_string();
        let path = Client::path_of(&url);
        let resp = self.host.client.get(&path).await?;
        if resp.status != StatusCode::OK {
            return Err(ClientError::Http(resp.status, format!("GET {path}")));
        }
        Ok(resp.body.to_vec())
    }

    fn upload_bytes(
        &self,
        src: &UploadSource,
    ) -> Result<(Vec<u8>, Option<String>), (String, String)> {
        Ok(match src {
            UploadSource::Bundle(n) => {
                let (b, pw) = self.bundles.get(n).ok_or_else(|| {
                    fail(format!("a bundle named '{n}' from an earlier step"), "none")
                })?;
                (b.clone(), Some(pw.clone()))
            }
            UploadSource::File(f) => {
                let p = self.workdir.join(f);
                (
                    std::fs::read(&p)
                        .map_err(|e| fail(format!("file {}", p.display()), e.to_string()))?,
                    None,
                )
            }
            UploadSource::Hostile(kind) => (
                hostile(
                    kind,
                    self.bundles.values().next().map(|(b, _)| b.as_slice()),
                ),
                None,
            ),
        })
    }

    async fn upload(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        let fw = self.host.firmware.clone();
        let r = self
            .host
            .client
            .call(&fw, "QueryFirmwareConfigUploadURL", "")
            .await?;
        let path = Client::path_of(returnval(&r)?.text.trim());
        let user = self.host.target.user.clone();
        let pw = self.host.password.clone();
        let resp = self
            .host
            .client
            .put(&path, bytes, Some((&user, &pw)))
            .await?;
        if !resp.status.is_success() {
            return Err(ClientError::Http(resp.status, format!("PUT {path}")));
        }
        Ok(())
    }

    /// After a restore, reset or reboot: the host goes away, comes back, and needs a new login.
    async fn wait_reboot(&mut self) -> Result<(), ClientError> {
        if let Some(sim) = &self.host.target.sim {
            // A simulated host boots in virtual time: move the clock past the boot.
            sim.finish_boot(EMBEDDED_BOOT)
                .await
                .map_err(ClientError::Io)?;
            // A boot that stopped will not take a login: say why rather than time out.
            if let Some(why) = sim.encryption().await.map_err(ClientError::Io)?.boot_halted {
                return Err(ClientError::Io(format!("the boot stopped: {why}")));
            }
        } else {
            // The old session dies with the reboot (hostd restarts): poll it until it fails,
            // then wait for the host to take a new login. Works for slow real hosts and for a
            // fast simulator alike, without racing the moment the host goes down.
            let deadline = Instant::now() + Duration::from_secs(600);
            loop {
                self.host.client.timeout = Duration::from_secs(10);
                match self.host.client.fetch_text(&host_ref(), "name").await {
                    Ok(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(300)).await
                    }
                    Ok(_) => {
                        return Err(ClientError::Io(
                            "the host did not reboot within 10 minutes".into(),
                        ))
                    }
                    Err(_) => break,
                }
            }
        }
        self.wait_up().await
    }

    async fn wait_up(&mut self) -> Result<(), ClientError> {
        let limit = if self.host.target.sim.is_some() {
            20
        } else {
            1200
        };
        let deadline = Instant::now() + Duration::from_secs(limit);
        loop {
            let mut c = self.host.target.client()?;
            c.timeout = Duration::from_secs(10);
            match c.login(&self.host.target.user, &self.host.password).await {
                Ok(_) => {
                    self.host.client = c;
                    return Ok(());
                }
                // The host answers but refuses the password: waiting will not help.
                Err(e) if e.fault_type() == Some("InvalidLogin") => return Err(e),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(if self.host.target.sim.is_some() {
                        20
                    } else {
                        500
                    }))
                    .await
                }
            }
        }
    }

    /// One login on a host that should be up (embedded: it is, after the clock skip). A served
    /// host reopens its port a moment after its clock moves past the boot (esxi-sim's
    /// `server/phases.rs`): a refused or dropped connection, or the proxy's 503, is tried again
    /// for a few seconds; an answer (a wrong password included) is final.
    async fn wait_up_once(&mut self) -> Result<(), ClientError> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut c = self.host.target.client()?;
            match c.login(&self.host.target.user, &self.host.password).await {
                Ok(_) => {
                    self.host.client = c;
                    return Ok(());
                }
                Err(e) if Instant::now() < deadline && not_answering(&e) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn check_bundle(&self, c: &BundleCheck) -> Result<(), (String, String)> {
        let (bytes, _) = self
            .bundles
            .get(&c.bundle)
            .ok_or_else(|| fail(format!("a bundle named '{}'", c.bundle), "none"))?;
        let limits = Limits::default();
        let b = ConfigBundle::parse(bytes, &limits)
            .map_err(|e| fail(format!("bundle '{}' to parse", c.bundle), e.to_string()))?;
        for (k, v) in &c.manifest {
            let m = &b.manifest;
            let got = match k.as_str() {
                "RELEASELEVEL" => Some(m.release_level.clone()),
                "UUID" => Some(m.uuid.clone()),
                "KERNELOPTS" => Some(m.kernelopts.clone()),
                "USEROPTS" => Some(m.useropts.clone()),
                other => m
                    .extra
                    .iter()
                    .find(|(ek, _)| ek == other)
                    .map(|(_, ev)| ev.clone()),
            };
            if got.as_deref() != Some(v.as_str()) {
                return Err(fail(
                    format!("Manifest {k}={v}"),
                    format!("{k}={}", got.unwrap_or_else(|| "(absent)".into())),
                ));
            }
        }
        let keys = self.known_recovery_keys().await;
        check_state(
            &format!("bundle '{}'", c.bundle),
            &b.state_tgz,
            &c.state,
            &keys,
        )
    }

    /// The recovery keys a sealed state may be opened with: those the run recorded, and the
    /// current host's own (read from the simulator), as a tool that exported it would.
    async fn known_recovery_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.recovery_keys.values().cloned().collect();
        if let Some(sim) = &self.host.target.sim {
            if let Ok(Some(k)) = sim.encryption().await.map(|e| e.recovery_key) {
                keys.push(k.key);
            }
        }
        keys
    }

    /// A recovery key as a step gives it: a recorded key's name, or the key typed out.
    fn recovery_key(&self, given: &str) -> Result<String, (String, String)> {
        if RecoveryKey::parse_key(given).is_ok() {
            return Ok(given.to_string());
        }
        self.recovery_keys.get(given).cloned().ok_or_else(|| {
            fail(
                format!("a recovery key named '{given}' (from an earlier read_recovery_key)"),
                format!(
                    "recorded: [{}]",
                    self.recovery_keys
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    /// After a power-on or a restore whose boot must stop: moves past the boot and checks that
    /// the host is down with `text` in the reason.
    async fn expect_boot_halt(&mut self, text: &str) -> StepResult {
        let Some(sim) = &self.host.target.sim else {
            return Err(fail(
                "the simulator, to see why a boot stopped",
                "a real host",
            ));
        };
        sim.finish_boot(EMBEDDED_BOOT)
            .await
            .map_err(|e| fail("the boot to finish", e))?;
        check_halted(sim, text).await
    }

    async fn run_command(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<(), (String, String)> {
        let c = &self.host.client;
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(&self.workdir)
            .env("ESXI_URL", &self.host.target.url)
            .env("ESXI_HOST", c.host())
            .env("ESXI_PORT", c.port().to_string())
            .env("ESXI_USER", &self.host.target.user)
            .env("ESXI_PASSWORD", &self.host.password)
            .env("ESXI_INSECURE", "1")
            .env("ESXI_WORKDIR", &self.workdir)
            .env("ESXI_SCENARIO_DIR", &self.scenario_dir)
            .kill_on_drop(true);
        let out = tokio::time::timeout(timeout, cmd.output())
            .await
            .map_err(|_| {
                fail(
                    format!("`{command}` to finish within {timeout:?}"),
                    "timed out",
                )
            })?
            .map_err(|e| fail(format!("`{command}` to start"), e.to_string()))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(fail(
                format!("`{command}` to exit 0"),
                format!("{}; stderr: {}", out.status, truncate(err.trim())),
            ));
        }
        Ok(())
    }

    async fn sim_step(&mut self, a: &Action) -> StepResult {
        let Some(sim) = &self.host.target.sim else {
            return Err(fail(
                "the simulator (embedded, or --control-url)",
                "a real host",
            ));
        };
        let mut reboots = false;
        let r: StepResult = match a {
            Action::WriteFile { path, content } => sim
                .write_file(path, content.as_bytes())
                .await
                .map_err(|e| fail(format!("to write {path}"), e)),
            Action::DeleteFile { path } => sim
                .delete_file(path)
                .await
                .map_err(|e| fail(format!("to delete {path}"), e)),
            Action::ExpectFile { path, check } => {
                let got = sim
                    .read_text(path)
                    .await
                    .map_err(|e| fail(format!("to read {path}"), e))?;
                match (check, got) {
                    (FileCheck::Absent, None) => Ok(()),
                    (FileCheck::Absent, Some(g)) => Err(fail(
                        format!("no {path}"),
                        format!("{path}: {:?}", truncate(&g)),
                    )),
                    (_, None) => Err(fail(format!("{path} to exist"), "no such file")),
                    (FileCheck::Contains(s), Some(g)) if g.contains(s.as_str()) => Ok(()),
                    (FileCheck::NotContains(s), Some(g)) if !g.contains(s.as_str()) => Ok(()),
                    (FileCheck::Equals(s), Some(g)) if &g == s => Ok(()),
                    (c, Some(g)) => Err(fail(
                        format!("{path} {c:?}"),
                        format!("{path}: {:?}", truncate(&g)),
                    )),
                }
            }
            Action::Advance { by } => sim
                .advance(*by)
                .await
                .map_err(|e| fail("the clock to move", e)),
            Action::Crash => sim.crash().await.map_err(|e| fail("a crash", e)),
            Action::PowerCut => sim
                .power_cut(false)
                .await
                .map_err(|e| fail("a power cut", e)),
            Action::PowerCutDuringNextSave => sim
                .power_cut(true)
                .await
                .map_err(|e| fail("a power cut armed", e)),
            Action::PowerOn {
                recovery_key,
                halts,
            } => {
                let key = match recovery_key {
                    Some(k) => Some(self.recovery_key(k)?),
                    None => None,
                };
                sim.power_on(key.as_deref())
                    .await
                    .map_err(|e| fail("power on", e))?;
                match halts {
                    Some(text) => {
                        sim.finish_boot(EMBEDDED_BOOT)
                            .await
                            .map_err(|e| fail("the boot to finish", e))?;
                        check_halted(sim, text).await
                    }
                    None => {
                        reboots = true;
                        Ok(())
                    }
                }
            }
            Action::CorruptBootbank => sim
                .corrupt_state_tgz()
                .await
                .map_err(|e| fail("to corrupt state.tgz", e)),
            Action::ModelReboot { graceful } => {
                reboots = true;
                let kind = if *graceful {
                    RebootKind::Graceful
                } else {
                    RebootKind::Forced
                };
                sim.reboot(kind).await.map_err(|e| fail("a reboot", e))
            }
            Action::Stateless { on } => sim
                .set_stateless(*on)
                .await
                .map_err(|e| fail("stateless mode", e)),
            Action::Mark => {
                self.host.mark = sim.mark().await.map_err(|e| fail("a mark", e))?;
                Ok(())
            }
            Action::ExpectBootbank { written } => {
                let saves = sim
                    .mark()
                    .await
                    .map_err(|e| fail("the save count", e))?
                    .saves;
                let did = saves > self.host.mark.saves;
                if did == *written {
                    Ok(())
                } else {
                    Err(fail(
                        format!(
                            "state.tgz {} since the mark",
                            if *written { "written" } else { "not written" }
                        ),
                        format!(
                            "{} state.tgz save(s) since the mark",
                            saves.saturating_sub(self.host.mark.saves)
                        ),
                    ))
                }
            }
            Action::ExpectEvent { kind, present } => {
                let kinds = sim
                    .events_since(self.host.mark)
                    .await
                    .map_err(|e| fail("the event log", e))?;
                let found = kinds.iter().any(|k| k == kind);
                if found == *present {
                    Ok(())
                } else {
                    Err(fail(
                        format!(
                            "{} '{kind}' event since the mark",
                            if *present { "an" } else { "no" }
                        ),
                        format!("events since the mark: [{}]", kinds.join(", ")),
                    ))
                }
            }
            Action::ExpectUnsaved { unsaved } => {
                let u = sim
                    .has_unsaved_changes()
                    .await
                    .map_err(|e| fail("the unsaved state", e))?;
                if u == *unsaved {
                    Ok(())
                } else {
                    Err(fail(
                        format!("unsaved changes: {unsaved}"),
                        format!("unsaved changes: {u}"),
                    ))
                }
            }
            Action::SetEncryption {
                mode,
                require_secure_boot,
                refused,
            } => {
                let mode = match mode {
                    Some(m) => Some(m.parse::<Mode>().map_err(|e| fail("a mode", e))?),
                    None => None,
                };
                let r = sim.set_encryption(mode, *require_secure_boot).await;
                match (refused, r) {
                    (None, r) => r.map_err(|e| fail("the encryption settings", e)),
                    (Some(text), Err(e)) if e.contains(text.as_str()) => Ok(()),
                    (Some(text), Err(e)) => Err(fail(format!("refused with {text:?}"), e)),
                    (Some(text), Ok(())) => Err(fail(
                        format!("refused with {text:?}"),
                        "the change was made",
                    )),
                }
            }
            Action::ReadRecoveryKey { name } => {
                let e = sim
                    .encryption()
                    .await
                    .map_err(|e| fail("the encryption state", e))?;
                match e.recovery_key {
                    Some(k) => {
                        self.recovery_keys.insert(name.clone(), k.key);
                        Ok(())
                    }
                    None => Err(fail(
                        "a recovery key (a running host in TPM mode)",
                        format!(
                            "none: mode {}, boot halted: {}",
                            e.mode.as_deref().unwrap_or("(none)"),
                            e.boot_halted.as_deref().unwrap_or("no")
                        ),
                    )),
                }
            }
            Action::RotateRecoveryKey => sim
                .rotate_recovery_key()
                .await
                .map_err(|e| fail("a new recovery key", e)),
            Action::ReplaceBoard { new_uuid } => sim
                .replace_board(*new_uuid)
                .await
                .map_err(|e| fail("a new board", e)),
            Action::ExpectHalted { message } => check_halted(sim, message).await,
            Action::ExpectEncryption {
                era,
                mode,
                require_secure_boot,
            } => {
                let e = sim
                    .encryption()
                    .await
                    .map_err(|e| fail("the encryption state", e))?;
                let show = |m: &Option<String>| m.clone().unwrap_or_else(|| "(none)".into());
                if let Some(want) = era.as_ref().filter(|w| **w != e.era) {
                    return Err(fail(format!("era {want}"), format!("era {}", e.era)));
                }
                if let Some(want) = mode.as_ref().filter(|w| e.mode.as_ref() != Some(*w)) {
                    return Err(fail(
                        format!("mode {want}"),
                        format!("mode {}", show(&e.mode)),
                    ));
                }
                match require_secure_boot {
                    Some(want) if e.require_secure_boot != Some(*want) => Err(fail(
                        format!("require secure boot: {want}"),
                        format!(
                            "require secure boot: {}",
                            e.require_secure_boot
                                .map(|b| b.to_string())
                                .unwrap_or_else(|| "(unknown: the host is not running)".into())
                        ),
                    )),
                    _ => Ok(()),
                }
            }
            Action::ExpectSaved(check) => {
                let bytes = sim
                    .saved_state_tgz()
                    .await
                    .map_err(|e| fail("the boot bank", e))?
                    .ok_or_else(|| fail("a state.tgz on /bootbank", "none"))?;
                let keys = self.known_recovery_keys().await;
                check_state("the boot bank", &bytes, check, &keys)
            }
            other => Err(fail(
                "a simulator step",
                format!("'{}' is portable", other.name()),
            )),
        };
        r?;
        if reboots {
            // A boot may fall back to the image defaults (corrupt or missing state.tgz, a
            // stateless host), whose root password is empty: try that before giving up.
            sim.finish_boot(EMBEDDED_BOOT)
                .await
                .map_err(|e| fail("the boot to finish", e))?;
            if let Ok(Some(why)) = sim.encryption().await.map(|e| e.boot_halted) {
                return Err(fail(
                    "the host back after the boot",
                    format!("the boot stopped: {why}"),
                ));
            }
            let known = self.host.password.clone();
            let mut last = None;
            for pw in [known.as_str(), ""] {
                self.host.password = pw.to_string();
                match self.wait_up_once().await {
                    Ok(()) => return Ok(()),
                    Err(e) => last = Some(e),
                }
            }
            self.host.password = known;
            return Err(fail(
                "the host back after the boot",
                last.map(|e| e.to_string()).unwrap_or_default(),
            ));
        }
        Ok(())
    }
}

/// The host is down because its boot stopped, with `text` in the reason.
async fn check_halted(sim: &crate::sim::Sim, text: &str) -> StepResult {
    let e = sim
        .encryption()
        .await
        .map_err(|e| fail("the host's state", e))?;
    match e.boot_halted {
        Some(why) if why.contains(text) => Ok(()),
        Some(why) => Err(fail(
            format!("the boot stopped with {text:?}"),
            format!("it stopped with {why:?}"),
        )),
        None => Err(fail(
            format!("the boot stopped with {text:?}"),
            "no stopped boot: the host came up (or was never powered on)",
        )),
    }
}

/// Checks a saved configuration (state.tgz bytes, from the boot bank or a bundle) against `c`.
/// The layout and the key store's mode are read without a key (facts 6.4: encryption.info is
/// plain text); the contents need the state opened: NONE with its own key, TPM with one of
/// `keys` (recovery keys, as esxcli prints them).
fn check_state(
    what: &str,
    state_tgz: &[u8],
    c: &StateCheck,
    keys: &[String],
) -> Result<(), (String, String)> {
    let limits = Limits::default();
    let members = read_tgz(state_tgz, &limits, "state.tgz")
        .map_err(|e| fail(format!("{what}'s state.tgz to read"), e.to_string()))?;
    let names: Vec<&str> = members.iter().map(|m| m.path.as_str()).collect();
    if let Some(layout) = c.layout {
        let mut sorted = names.clone();
        sorted.sort_unstable();
        let ok = match layout {
            Layout::Encrypted => sorted == ["encryption.info", "local.tgz.ve"],
            Layout::Plain => sorted == ["local.tgz"],
        };
        if !ok {
            return Err(fail(
                format!(
                    "{what}: a {layout} state.tgz ({})",
                    match layout {
                        Layout::Encrypted => "local.tgz.ve + encryption.info",
                        Layout::Plain => "local.tgz",
                    }
                ),
                format!("state.tgz holds: {}", names.join(", ")),
            ));
        }
    }
    if let Some(want) = &c.mode {
        let info = members.iter().find(|m| m.path == "encryption.info");
        let got = match info.map(|m| KeyStore::parse(&m.data)) {
            None => "no encryption.info (not encrypted)".to_string(),
            Some(Err(e)) => e.to_string(),
            Some(Ok(ks)) => ks.mode().to_string(),
        };
        if &got != want {
            return Err(fail(format!("{what}: encryption mode {want}"), got));
        }
    }
    if !c.needs_contents() {
        return Ok(());
    }
    let digits: Vec<String> = keys
        .iter()
        .filter_map(|k| RecoveryKey::parse_key(k).ok())
        .collect();
    let mut decoded = esxi_sim::state::decode(state_tgz, &limits, KeyContext::default());
    for d in &digits {
        if !matches!(decoded, Err(StateError::Locked(_))) {
            break;
        }
        let ctx = KeyContext {
            tpm: None,
            recovery: Some(d),
        };
        decoded = esxi_sim::state::decode(state_tgz, &limits, ctx);
    }
    let d = decoded.map_err(|e| {
        let hint = match e {
            StateError::Locked(_) => {
                " (a TPM-sealed state opens with its recovery key: read_recovery_key first)"
            }
            StateError::Corrupt(_) => "",
        };
        fail(
            format!("{what}'s configuration to open{hint}"),
            e.to_string(),
        )
    })?;
    let listing = || {
        format!(
            "files: {}",
            d.files.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    };
    for f in &c.has_files {
        if !d.files.contains_key(f) {
            return Err(fail(format!("{f} in {what}"), listing()));
        }
    }
    for f in &c.lacks_files {
        if d.files.contains_key(f) {
            return Err(fail(format!("no {f} in {what}"), format!("{f} is there")));
        }
    }
    for (f, text) in &c.file_contains {
        match d.files.get(f).map(|n| String::from_utf8_lossy(&n.data)) {
            Some(g) if g.contains(text.as_str()) => {}
            Some(g) => {
                return Err(fail(
                    format!("{f} containing {text:?}"),
                    format!("{f}: {:?}", truncate(&g)),
                ))
            }
            None => {
                return Err(fail(
                    format!("{f} containing {text:?}"),
                    format!("no {f} in {what}"),
                ))
            }
        }
    }
    for sc in &c.store {
        check_store_row(what, d.store.as_ref(), sc)?;
    }
    Ok(())
}

/// One ConfigStore expectation against a saved store.
fn check_store_row(
    what: &str,
    store: Option<&esxi_sim::configstore::ConfigStore>,
    sc: &StoreCheck,
) -> Result<(), (String, String)> {
    let label = sc.label();
    let expected = match &sc.expect {
        ValueCheck::Equals(v) => format!("{label} = {v}"),
        ValueCheck::Contains(v) => format!("{label} containing {v:?}"),
        ValueCheck::Absent => format!("no {label}"),
    };
    let Some(store) = store else {
        return match sc.expect {
            ValueCheck::Absent => Ok(()),
            _ => Err(fail(expected, format!("{what} has no ConfigStore"))),
        };
    };
    let key = Key::new(&sc.component, &sc.group, &sc.name, &sc.identifier);
    let row = store.get(&key);
    // What the check sees: None when the row, the column (NULL) or the field is absent.
    let got: Option<String> = match (&sc.column, row) {
        (_, None) => None,
        (None, Some(_)) => Some("(the row)".into()),
        (Some(col), Some(r)) => {
            let column = Column::ALL
                .into_iter()
                .find(|c| c.name() == col.as_str())
                .expect("columns are checked at parse time");
            match (r.value(column), &sc.field) {
                (None, _) => None,
                (Some(v), None) => Some(v.to_string()),
                (Some(v), Some(field)) => serde_json::from_str::<serde_json::Value>(v)
                    .ok()
                    .and_then(|j| j.get(field).cloned())
                    .map(|f| match f {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    }),
            }
        }
    };
    let ok = match (&sc.expect, &got) {
        (ValueCheck::Absent, g) => g.is_none(),
        (ValueCheck::Equals(v), Some(g)) => g == v,
        (ValueCheck::Contains(v), Some(g)) => g.contains(v.as_str()),
        (_, None) => false,
    };
    if ok {
        return Ok(());
    }
    let seen = match got {
        Some(g) => format!("{label} = {}", truncate(&g)),
        None if row.is_none() => format!("no row {key} in {what}"),
        None => format!("{label} is absent"),
    };
    Err(fail(expected, seen))
}

fn truncate(s: &str) -> String {
    if s.len() <= 300 {
        s.to_string()
    } else {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

/// Hostile uploads, made deterministically.
pub fn hostile(kind: &str, sample: Option<&[u8]>) -> Vec<u8> {
    use esxi_sim::bundle::{gzip_bytes, write_tgz};
    match kind {
        "random" => (0..4096u32)
            .map(|i| (i.wrapping_mul(7919).wrapping_add(13) % 256) as u8)
            .collect(),
        "empty" => Vec::new(),
        "not-gzip-tar" => gzip_bytes(&b"this is not a tar archive\n".repeat(20)),
        "no-manifest" => write_tgz([("state.tgz", &b"junk"[..], 0o644, 0)], 0),
        // tar's writer refuses `..` paths, so this member is written by hand below.
        "traversal" => traversal_tgz(),
        _ => {
            // "truncated": the first half of a real bundle, or of a gzip stream.
            let b = sample
                .map(<[u8]>::to_vec)
                .unwrap_or_else(|| gzip_bytes(&[0u8; 4096]));
            b[..b.len() / 2].to_vec()
        }
    }
}

/// A bundle with Manifest.txt keys replaced (another host's UUID, another release level), as a
/// bundle from another machine would be. The state.tgz is kept byte for byte.
fn rewrite_manifest(
    bytes: &[u8],
    rewrite: &[(String, String)],
) -> Result<Vec<u8>, (String, String)> {
    let mut b = ConfigBundle::parse(bytes, &Limits::default())
        .map_err(|e| fail("a bundle to rewrite", e.to_string()))?;
    for (k, v) in rewrite {
        match k.as_str() {
            "RELEASELEVEL" => b.manifest.release_level = v.clone(),
            "UUID" => b.manifest.uuid = v.clone(),
            "KERNELOPTS" => b.manifest.kernelopts = v.clone(),
            "USEROPTS" => b.manifest.useropts = v.clone(),
            other => {
                return Err(fail(
                    "a Manifest key (RELEASELEVEL, UUID, KERNELOPTS, USEROPTS)",
                    other.to_string(),
                ))
            }
        }
    }
    Ok(b.to_bytes(0))
}

/// A gzip tar whose first member is `../../etc/passwd` (header written by hand: the tar crate
/// refuses to write such a path).
fn traversal_tgz() -> Vec<u8> {
    let data = b"root::0:0::/:/bin/sh\n";
    let mut h = [0u8; 512];
    let name = b"../../etc/passwd";
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut tar = h.to_vec();
    tar.extend_from_slice(data);
    tar.resize(512 * 2, 0);
    tar.extend_from_slice(&[0u8; 1024]);
    esxi_sim::bundle::gzip_bytes(&tar)
}

/// A call that reboots the host may lose its answer (the connection drops as the host goes) or
/// meet the reverse proxy's 503 while hostd stops (a real host's reboot phases; esxi-sim's
/// `server/phases.rs`): either way the reboot is under way.
fn rebooting(r: Result<(), ClientError>) -> Result<(), ClientError> {
    match r {
        Err(e) if not_answering(&e) => Ok(()),
        other => other,
    }
}

/// hostd is not there: no connection, a dropped one, or the reverse proxy's 503.
fn not_answering(e: &ClientError) -> bool {
    match e {
        ClientError::Io(_) => true,
        ClientError::Http(s, _) => s.as_u16() == 503,
        _ => false,
    }
}
