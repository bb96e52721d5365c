//! The vSphere API objects of one standalone ESXi host, one file per managed object type (as
//! govmomi's vcsim does), over the host model.
//!
//! A call arrives as a decoded [`Call`]; [`Vim::call`] looks its type up once in the
//! [`registry`], checks the session, finds the object and hands the call to the file named after
//! the object's type:
//!
//! | type | file | methods |
//! |---|---|---|
//! | ServiceInstance | [`service_instance`] | RetrieveServiceContent, CurrentTime |
//! | SessionManager | [`session_manager`] | Login, Logout, SessionIsActive |
//! | PropertyCollector, PropertyFilter | [`property_collector`] | Fetch (every object), RetrieveProperties(Ex), CreateFilter, WaitForUpdates(Ex), ... |
//! | ViewManager, ContainerView | [`view_manager`] | CreateContainerView, DestroyView |
//! | Folder, Datacenter, ComputeResource | [`inventory`] | (properties only) |
//! | HostSystem | [`host_system`] | EnterMaintenanceMode_Task, ExitMaintenanceMode_Task, RebootHost_Task, ShutdownHost_Task, RetrieveManagedMethodExecuter, RetrieveDynamicTypeManager |
//! | HostFirmwareSystem | [`firmware_system`] | Backup/Restore/Reset, Sync, QueryFirmware* |
//! | TaskManager, Task | [`task`] | CancelTask |
//! | HostLocalAccountManager | [`local_account_manager`] | CreateUser, UpdateUser, RemoveUser |
//! | OptionManager | [`option_manager`] | QueryOptions, UpdateOptions |
//! | SearchIndex | [`search_index`] | FindByInventoryPath, FindChild, FindBy(Uuid, DnsName, Ip), FindAllBy... |
//! | ReflectManagedMethodExecuter | [`managed_method_executer`] | ExecuteSoap: esxcli commands ([`esxcli`]) |
//! | InternalDynamicTypeManager | [`dynamic_type_manager`] | DynamicTypeMgrQueryMoInstances, DynamicTypeMgrQueryTypeInfo |
//!
//! A wait with nothing to report is handed back to the server as [`Pending`], with the horizon
//! of what it read; [`changes`] says what wakes it (each `Vim` has a change signal, bumped by
//! every call its type's row does not list among the reads).
//!
//! A vCenter endpoint is a `Vim` with an [`vcenter::Estate`]: its own sessions, collector and
//! views, vCenter ids for the inventory, and calls on host objects forwarded to the hosts (which
//! objects those are, and their ids, is [`registry::HOST_OBJECTS`]).
//!
//! Nothing here reads the wall clock: the server moves time with [`Vim::sync_to`]. Nothing here
//! knows HTTP either: transfers are plain methods ([`Vim::download`], [`Vim::upload`]).

pub mod agent_settings;
pub mod authorization_manager;
pub mod changes;
pub mod diagnostic_manager;
pub mod dynamic_type_manager;
pub mod esxcli;
pub mod event_manager;
pub mod firmware_system;
pub mod history_collector;
pub mod host_date_time_system;
pub mod host_network;
pub mod host_system;
pub mod inventory;
pub mod license_manager;
pub mod limits;
pub mod local_account_manager;
pub mod lockout;
pub mod managed_method_executer;
pub mod option_manager;
pub mod password_quality;
pub mod perf_manager;
pub mod property_collector;
pub mod registry;
pub mod route;
pub mod search_index;
pub mod service_instance;
pub mod session_manager;
pub mod task;
pub mod task_history_collector;
pub mod user_directory;
pub mod vcenter;
pub mod vcenter_ids;
pub mod view_manager;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::api::{Call, Data, Fault, MoRef, Value};
use crate::clock::SimTime;
use crate::host::etc::Bytes;
use crate::host::{Host, HostError};
pub use route::{Answer, Route};

pub use changes::{Changes, Horizon};
pub use session_manager::{PasswordCheck, Session};

/// Settings of the API layer (the host model has its own).
#[derive(Clone, Debug)]
pub struct VimConfig {
    /// What replaces `http://*` in the URLs the firmware methods return: `http://*` on port 443
    /// (as a real host), `https://*:8443` elsewhere so unmodified clients still reach us.
    pub url_prefix: String,
    /// Sessions idle this long (virtual time) are gone; hostd's default is 30 minutes.
    pub session_timeout: Duration,
    /// Download bundles live this long (tmpwatch's ~3 days, facts section 1).
    pub download_ttl: Duration,
    /// The address clients reach this host at (its management address, vmk0's): what
    /// SearchIndex.FindByIp finds it by. Set by the server once it has bound.
    pub address: Option<std::net::IpAddr>,
    /// How much per-session and per-endpoint state is kept ([`limits`], docs/limits.md).
    pub limits: limits::Limits,
}

impl Default for VimConfig {
    fn default() -> Self {
        VimConfig {
            url_prefix: "http://*".into(),
            session_timeout: Duration::from_secs(30 * 60),
            download_ttl: Duration::from_secs(3 * 24 * 3600),
            address: None,
            limits: limits::Limits::default(),
        }
    }
}

/// Who is calling, and what the call produced besides its answer.
#[derive(Debug, Default)]
pub struct Ctx {
    /// The session key of a valid session cookie, if any.
    pub session: Option<String>,
    /// The token from the request's cookie.
    pub token: Option<String>,
    pub peer: String,
    pub user_agent: String,
    /// Set by Login: the new session's token, for the transport to hand to the client (SOAP:
    /// a `Set-Cookie`, `server::cookie`).
    pub new_session: Option<String>,
    /// Set by WaitForUpdates: nothing yet, ask again later (see [`Pending`]).
    pub pending: Option<Pending>,
    /// Set by the server when it asks again after a pending answer (the same wait goes on).
    pub retry: bool,
    /// A trusted in-process caller (vCenter forwarding to a host as `vpxuser`): no cookie, a
    /// session of this user is made or reused.
    pub system: Option<String>,
    /// Set by the server: a password hash is not checked under the host's lock but handed back
    /// in `verify`, for the server to check on its bounded pool and call again with the outcome
    /// in `verified` (a slow hash then delays that login only: issue 12).
    pub offload_hashing: bool,
    pub verify: Option<PasswordCheck>,
    pub verified: Option<(PasswordCheck, bool)>,
}

/// A wait with nothing to report yet: the server asks again when the API state changes
/// ([`Changes`]), at the horizon, or at the end of `max_wait` (None: no limit of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    pub max_wait: Option<Duration>,
    pub horizon: Horizon,
}

/// A bundle BackupFirmwareConfiguration made, served at `/downloads/<uuid>/<file>`.
#[derive(Clone, Debug)]
pub struct Download {
    pub file_name: String,
    pub bytes: Bytes,
    pub created: SimTime,
    /// Order of making (`Vim::seq`): the oldest go first at the caps.
    pub made: u64,
}

/// How an upload proved who sent it.
#[derive(Clone, Copy)]
pub enum UploadAuth<'a> {
    Basic { user: &'a str, password: &'a str },
    Cookie(&'a str),
    None,
}

#[derive(Debug, PartialEq, Eq)]
pub enum UploadError {
    TooLarge,
    Unavailable(String),
}

/// The API state of one host: the model plus sessions, tasks, filters, views and downloads.
pub struct Vim {
    pub host: Host,
    pub cfg: VimConfig,
    pub(crate) sessions: HashMap<String, Session>,
    pub(crate) tasks: BTreeMap<u64, task::Task>,
    pub(crate) task_seq: u64,
    pub(crate) filters: BTreeMap<String, property_collector::Filter>,
    /// The last UpdateSet version per (session, collector).
    pub(crate) collector_versions: HashMap<(String, String), u64>,
    /// PropertyCollectors sessions created (CreatePropertyCollector): id → session.
    pub(crate) collectors: BTreeMap<String, String>,
    pub(crate) pages: HashMap<String, property_collector::Page>,
    pub(crate) views: BTreeMap<String, view_manager::View>,
    /// EventHistoryCollectors sessions created: id → collector.
    pub(crate) event_collectors: BTreeMap<String, event_manager::Collector>,
    /// TaskHistoryCollectors sessions created: id → collector.
    pub(crate) task_collectors: BTreeMap<String, task_history_collector::Collector>,
    pub(crate) downloads: HashMap<String, Download>,
    pub(crate) seq: u64,
    seen_boots: u32,
    /// Set on a vCenter endpoint: the hosts it fronts. `host` is then the appliance's own
    /// (stateless) model, used only for its clock.
    pub(crate) estate: Option<Arc<vcenter::Estate>>,
    /// The host's network is cut until then (the control API's "unreachable"): it does not
    /// answer, although it runs.
    pub(crate) link_down_until: Option<SimTime>,
    /// Failed logins per account (hostd's memory: a reboot clears it).
    pub(crate) lockouts: lockout::Lockouts,
    /// Bumped when something may have changed what a filter sees ([`changes`]).
    changes: Changes,
    /// When what was read since the last [`Vim::take_horizon`] drifts by time alone (noted
    /// by the property builders, which only get `&Vim`).
    horizon: Cell<Horizon>,
}

impl Vim {
    pub fn new(host: Host, cfg: VimConfig) -> Vim {
        Vim {
            seen_boots: host.boots(),
            host,
            cfg,
            sessions: HashMap::new(),
            tasks: BTreeMap::new(),
            task_seq: 0,
            filters: BTreeMap::new(),
            collector_versions: HashMap::new(),
            collectors: BTreeMap::new(),
            pages: HashMap::new(),
            views: BTreeMap::new(),
            event_collectors: BTreeMap::new(),
            task_collectors: BTreeMap::new(),
            downloads: HashMap::new(),
            seq: 0,
            estate: None,
            link_down_until: None,
            lockouts: lockout::Lockouts::default(),
            changes: Changes::default(),
            horizon: Cell::new(Horizon::default()),
        }
    }

    /// A vCenter endpoint over an estate. `appliance` is a stateless host model that gives the
    /// vCenter its clock.
    pub fn vcenter(appliance: Host, cfg: VimConfig, estate: Arc<vcenter::Estate>) -> Vim {
        let mut v = Vim::new(appliance, cfg);
        v.estate = Some(estate);
        v
    }

    /// Live sessions, property filters, open paging tokens and kept download bundles: what
    /// [`limits`] bounds, for tests and the control API.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }
    pub fn filter_count(&self) -> usize {
        self.filters.len()
    }
    pub fn token_count(&self) -> usize {
        self.pages.len()
    }
    pub fn download_count(&self) -> usize {
        self.downloads.len()
    }

    pub fn estate(&self) -> Option<&Arc<vcenter::Estate>> {
        self.estate.as_ref()
    }

    /// This API state's change signal ([`changes`]).
    pub fn changes(&self) -> &Changes {
        &self.changes
    }
    /// Takes over another state's signal (a reinstalled host: its waiters and its vCenter
    /// keep watching the same one), and bumps it.
    pub fn keep_changes(&mut self, from: Changes) {
        self.changes = from;
        self.changes.bump();
    }

    /// The next event of the model: a task's work, a boot finishing, an auto-backup with
    /// something to save, a network cut ending. Anything may change then.
    pub fn next_due(&self) -> Option<SimTime> {
        let tasks = self.tasks.values().filter_map(task::Task::due).min();
        let mut h = Horizon::default();
        h.event(tasks);
        h.event(self.host.next_due());
        h.event(self.link_down_until());
        h.event
    }
    /// A value being built changes by time alone at `t` (a task's progress, an uptime).
    pub(crate) fn note_drift(&self, t: SimTime) {
        let mut h = self.horizon.get();
        h.drift(Some(t));
        self.horizon.set(h);
    }
    /// Passes on what another state's values (a vCenter's host) change at.
    pub(crate) fn note(&self, other: Horizon) {
        let mut h = self.horizon.get();
        h.merge(other);
        self.horizon.set(h);
    }
    /// What was noted since the last call, and starts afresh.
    pub fn take_horizon(&self) -> Horizon {
        self.horizon.take()
    }

    /// Cuts the host off the network until `until` (None: reconnects now).
    pub fn set_link_down_until(&mut self, until: Option<SimTime>) {
        self.link_down_until = until;
    }
    pub fn link_down_until(&self) -> Option<SimTime> {
        self.link_down_until.filter(|t| *t > self.now())
    }

    /// Whether a user name and password open a session here: the host's `/etc/shadow`, or the
    /// vCenter's SSO administrator. Hashing runs here, inline; the server uses
    /// [`Vim::credentials_ok`] instead, which can hand it off. Counts towards the lockout.
    pub fn check_login(&mut self, user: &str, password: &str) -> bool {
        let mut ctx = Ctx::default();
        self.credentials_ok(&mut ctx, user, password) == Some(true)
    }

    /// Every object below a container, in inventory order (a container view's contents).
    pub fn descendants(&self, obj: &MoRef, recursive: bool, out: &mut Vec<MoRef>) {
        let children = match &self.estate {
            Some(e) => vcenter::children(e, obj),
            None => inventory::children(obj),
        };
        for c in children {
            out.push(c.clone());
            if recursive {
                self.descendants(&c, true, out);
            }
        }
    }

    pub fn now(&self) -> SimTime {
        self.host.now()
    }

    /// Whether the host answers at all (not booting, not off, not cut off).
    pub fn reachable(&self) -> bool {
        self.host.is_running() && self.link_down_until().is_none()
    }

    /// Moves virtual time to `t`: completes tasks that are due, in order, and the host's own
    /// schedule. A reboot on the way ends hostd's sessions, tasks, filters, views and downloads.
    pub fn sync_to(&mut self, t: SimTime) {
        // Anything due by `t` runs now, and may change what filters see.
        let changes = self.next_due().is_some_and(|d| d <= t);
        while let Some((&id, due)) = self
            .tasks
            .iter()
            .filter_map(|(id, tk)| tk.due().map(|d| (id, d)))
            .min_by_key(|(_, d)| *d)
        {
            if due > t {
                break;
            }
            self.host.advance_to(due);
            self.check_reboot();
            if let Some(tk) = self.tasks.get(&id) {
                if tk.due().is_some() {
                    task::run(self, id);
                }
            }
        }
        self.host.advance_to(t);
        self.check_reboot();
        if changes {
            self.changes.bump();
        }
    }

    fn check_reboot(&mut self) {
        if self.host.boots() != self.seen_boots {
            // hostd restarted: everything it held in memory is gone.
            self.sessions.clear();
            self.tasks.clear();
            self.filters.clear();
            self.collector_versions.clear();
            self.collectors.clear();
            self.pages.clear();
            self.views.clear();
            self.event_collectors.clear();
            self.task_collectors.clear();
            self.downloads.clear();
            self.lockouts.clear();
            self.seen_boots = self.host.boots();
        }
    }

    /// Answers one call, forwarding it at once if it is for one of a vCenter's hosts (an
    /// in-process caller's way; the server forwards [`Answer::Forward`] itself, off this
    /// lock). The session cookie's token is in `ctx.token`.
    pub fn call(&mut self, req: &Call, ctx: &mut Ctx) -> Result<Option<Value>, Fault> {
        match self.answer(req, ctx) {
            Answer::Done(r) => r,
            Answer::Forward(f) => f.call(req),
        }
    }

    /// Answers one call here, or says where it goes. A call that may change something (any
    /// but its type's `reads`) bumps the change signal once it is let in; one forwarded bumps
    /// the host it changes instead.
    pub fn answer(&mut self, req: &Call, ctx: &mut Ctx) -> Answer {
        // Refused at the door (no session, no such object): nothing changed, nobody wakes,
        // however many such calls a client sends.
        let route = match self.admit(req, ctx) {
            Ok(r) => r,
            Err(f) => return Answer::Done(Err(f)),
        };
        if let Route::Forward(f) = route {
            return Answer::Forward(f);
        }
        let r = self.dispatch(req, ctx);
        if !registry::reads(&req.this.ty, &req.method) {
            self.changes.bump();
        }
        Answer::Done(r)
    }

    /// The caller's session, whether it may call this object at all, and where the call goes:
    /// the one place a call is routed.
    fn admit(&mut self, req: &Call, ctx: &mut Ctx) -> Result<Route, Fault> {
        ctx.session = match (&ctx.system, ctx.token.as_deref()) {
            (Some(user), _) => Some(session_manager::system_session(self, &user.clone())),
            // In-process sessions cannot be borrowed by a client that guesses their token.
            (None, Some(t)) if !t.starts_with("system:") => session_manager::touch(self, t),
            (None, _) => None,
        };
        // The type's row says who answers, and what needs no session.
        let anonymous = registry::lookup(&req.this.ty)
            .is_some_and(|t| t.anonymous.contains(&req.method.as_str()));
        if ctx.session.is_none() && !anonymous {
            return Err(Fault::not_authenticated()
                .with("object", req.this.clone())
                .with("privilegeId", "System.View"));
        }
        // A vCenter's call on a host's object goes to that host, but for Fetch, a property
        // read the vCenter answers from what it shows of its hosts.
        if let Some(est) = self.estate.as_ref().filter(|_| req.method != "Fetch") {
            if let Some((host, local)) = vcenter::route(est, &req.this) {
                return Ok(Route::Forward(route::Forward {
                    estate: est.clone(),
                    now: self.now(),
                    host,
                    local,
                }));
            }
        }
        if !self.exists(&req.this, ctx.session.as_deref()) {
            return Err(not_found(&req.this));
        }
        Ok(Route::Local)
    }

    /// A call let in for this endpoint's own object, to its type's handler.
    fn dispatch(&mut self, req: &Call, ctx: &mut Ctx) -> Result<Option<Value>, Fault> {
        if req.method == "Fetch" {
            return property_collector::fetch(self, ctx, req);
        }
        match registry::lookup(&req.this.ty) {
            Some(t) => (t.call)(self, ctx, req),
            None => Err(method_not_found(req)),
        }
    }

    /// The user of the session a cookie token names (the request trace names who called).
    pub fn token_user(&self, token: &str) -> Option<String> {
        self.sessions.get(token).map(|s| s.user.clone())
    }

    /// Whether an object exists (per-session objects only for their owner).
    pub fn exists(&self, obj: &MoRef, session: Option<&str>) -> bool {
        match (obj.ty.as_str(), &self.estate) {
            ("PropertyFilter", _) => self
                .filters
                .get(&obj.id)
                .is_some_and(|f| Some(f.session.as_str()) == session),
            ("PropertyCollector", _) if self.collectors.contains_key(&obj.id) => self
                .collectors
                .get(&obj.id)
                .is_some_and(|s| Some(s.as_str()) == session),
            ("EventHistoryCollector", _) => self
                .event_collectors
                .get(&obj.id)
                .is_some_and(|c| Some(c.session.as_str()) == session),
            ("TaskHistoryCollector", _) => self
                .task_collectors
                .get(&obj.id)
                .is_some_and(|c| Some(c.session.as_str()) == session),
            ("ContainerView" | "ListView", _) => self
                .views
                .get(&obj.id)
                .is_some_and(|v| Some(v.session.as_str()) == session && v.type_name() == obj.ty),
            // A vCenter's inventory, managers and (its hosts') tasks.
            (_, Some(e)) => vcenter::exists(e, obj),
            ("Task", None) => self.tasks.values().any(|t| t.id == obj.id),
            (_, None) => {
                ids::STATIC
                    .iter()
                    .any(|(t, id)| *t == obj.ty && *id == obj.id)
                    || registry::host_object(obj).is_some()
            }
        }
    }

    /// Every property of an object, as a data object of the object's type.
    pub fn properties(&self, obj: &MoRef, session: Option<&str>) -> Option<Data> {
        self.properties_only(obj, session, None)
    }

    /// The properties of an object a collector asked for: `wanted` names top-level properties
    /// (None: all). Objects that are cheap to build may return more than asked.
    pub fn properties_only(
        &self,
        obj: &MoRef,
        session: Option<&str>,
        wanted: Option<&[&str]>,
    ) -> Option<Data> {
        if !self.exists(obj, session) {
            return None;
        }
        if let Some(est) = &self.estate {
            if vcenter::answers_properties(obj) {
                return vcenter::properties(self, est, obj, wanted);
            }
        }
        (registry::lookup(&obj.ty)?.properties)(self, obj, session, wanted)
    }
}

/// The fixed ids of a standalone host (facts section 3, captured from a real host).
pub mod ids {
    pub const SERVICE_INSTANCE: &str = "ServiceInstance";
    pub const ROOT_FOLDER: &str = "ha-folder-root";
    pub const PROPERTY_COLLECTOR: &str = "ha-property-collector";
    pub const VIEW_MANAGER: &str = "ViewManager";
    pub const SESSION_MANAGER: &str = "ha-sessionmgr";
    pub const TASK_MANAGER: &str = "ha-taskmgr";
    pub const DATACENTER: &str = "ha-datacenter";
    pub const HOST_FOLDER: &str = "ha-folder-host";
    pub const VM_FOLDER: &str = "ha-folder-vm";
    pub const DATASTORE_FOLDER: &str = "ha-folder-datastore";
    pub const NETWORK_FOLDER: &str = "ha-folder-network";
    pub const COMPUTE_RESOURCE: &str = "ha-compute-res";
    pub const HOST: &str = "ha-host";
    pub const FIRMWARE_SYSTEM: &str = "ha-firmwareSystem";
    pub const ACCOUNT_MANAGER: &str = "ha-localacctmgr";
    pub const ADV_OPTIONS: &str = "ha-adv-options";
    pub const SEARCH_INDEX: &str = "ha-searchindex";
    pub const EVENT_MANAGER: &str = "ha-eventmgr";
    pub const PERF_MANAGER: &str = "ha-perfmgr";
    pub const AUTHORIZATION_MANAGER: &str = "ha-authmgr";
    pub const USER_DIRECTORY: &str = "ha-user-directory";
    pub const DIAGNOSTIC_MANAGER: &str = "ha-diagnosticmgr";
    pub const LICENSE_MANAGER: &str = "ha-license-manager";
    /// ServiceContent.setting: hostd's own settings (not the advanced options).
    pub const SETTING: &str = "HostAgentSettings";
    /// [inferred]: not captured from a real host.
    pub const DATE_TIME_SYSTEM: &str = "dateTimeSystem";
    /// [inferred]: vcsim's capture of a host names it so.
    pub const VIRTUAL_NIC_MANAGER: &str = "ha-vnic-mgr";
    /// Inferred from ESXi's Python twins (`ha-managed-method-executer-python`); clients echo
    /// whatever id RetrieveManagedMethodExecuter returns (docs/esxcli.md).
    pub const MANAGED_METHOD_EXECUTER: &str = "ha-managed-method-executer";
    /// RVC hard-codes it; pyVmomi's DynamicTypeManagerHelper falls back to it.
    pub const DYNAMIC_TYPE_MANAGER: &str = "ha-dynamic-type-manager";

    /// The host's other objects; those a vCenter forwards (the host system, its firmware
    /// system, ...) are [`super::registry::HOST_OBJECTS`].
    pub const STATIC: &[(&str, &str)] = &[
        ("ServiceInstance", SERVICE_INSTANCE),
        ("Folder", ROOT_FOLDER),
        ("PropertyCollector", PROPERTY_COLLECTOR),
        ("ViewManager", VIEW_MANAGER),
        ("SessionManager", SESSION_MANAGER),
        ("TaskManager", TASK_MANAGER),
        ("Datacenter", DATACENTER),
        ("Folder", HOST_FOLDER),
        ("Folder", VM_FOLDER),
        ("Folder", DATASTORE_FOLDER),
        ("Folder", NETWORK_FOLDER),
        ("ComputeResource", COMPUTE_RESOURCE),
        ("HostLocalAccountManager", ACCOUNT_MANAGER),
        ("SearchIndex", SEARCH_INDEX),
        ("EventManager", EVENT_MANAGER),
        ("PerformanceManager", PERF_MANAGER),
        ("OptionManager", SETTING),
        ("AuthorizationManager", AUTHORIZATION_MANAGER),
        ("UserDirectory", USER_DIRECTORY),
        ("DiagnosticManager", DIAGNOSTIC_MANAGER),
        ("LicenseManager", LICENSE_MANAGER),
    ];
}

pub fn moref(ty: &str, id: &str) -> MoRef {
    MoRef::new(ty, id)
}

/// Whether objects of type `actual` are a `wanted` (PropertySpec.type, container view types).
pub fn is_a(actual: &str, wanted: &str) -> bool {
    if actual == wanted {
        return true;
    }
    let managed_entity = matches!(
        actual,
        "Folder" | "Datacenter" | "ComputeResource" | "ClusterComputeResource" | "HostSystem"
    );
    match wanted {
        "ManagedEntity" => managed_entity,
        "ExtensibleManagedObject" => managed_entity,
        "ComputeResource" => actual == "ClusterComputeResource",
        "ManagedObject" => true,
        "View" | "ManagedObjectView" => matches!(actual, "ContainerView" | "ListView"),
        _ => false,
    }
}

pub fn not_found(obj: &MoRef) -> Fault {
    Fault::new(
        "ManagedObjectNotFound",
        format!(
            "The object 'vim.{}:{}' has already been deleted or has not been completely created",
            obj.ty, obj.id
        ),
    )
    .with("obj", obj.clone())
}

pub fn method_not_found(req: &Call) -> Fault {
    Fault::new(
        "MethodNotFound",
        format!("Method {} not found on {}", req.method, req.this.ty),
    )
    .with("receiver", req.this.clone())
    .with("method", req.method.as_str())
}

/// A required parameter, or InvalidRequest naming it.
pub(crate) fn required<'a>(req: &'a Call, name: &str) -> Result<&'a crate::api::Param, Fault> {
    req.param(name).ok_or_else(|| {
        Fault::invalid_request(format!(
            "{}: missing required parameter '{name}'",
            req.method
        ))
    })
}

/// A required `xsd:boolean` parameter (`force`, `recursive`).
pub(crate) fn required_bool(req: &Call, name: &str) -> Result<bool, Fault> {
    crate::api::call::parse_bool(required(req, name)?).map_err(|e| bad_param(req, e))
}

pub(crate) fn bad_param(req: &Call, msg: String) -> Fault {
    Fault::invalid_request(format!("{}: {msg}", req.method))
}

/// Each host error as the vSphere fault a real host sends for it.
pub fn host_fault(e: HostError) -> Fault {
    use crate::host::accounts::AccountError;
    let msg = e.to_string();
    match e {
        HostError::NotRunning(_) => Fault::new("HostCommunication", msg),
        HostError::InvalidState(_) => Fault::new("InvalidState", msg),
        HostError::FileNotFound(p) => Fault::new("FileNotFound", msg).with("file", p),
        HostError::MismatchedBundle {
            bundle_uuid,
            host_uuid,
            bundle_build,
            host_build,
        } => Fault::new("MismatchedBundle", msg)
            .with("bundleUuid", bundle_uuid)
            .with("hostUuid", host_uuid)
            .with("bundleBuildNumber", bundle_build as i32)
            .with("hostBuildNumber", host_build as i32),
        HostError::InvalidBundle(b) => Fault::new("InvalidBundle", msg).with("text", b.to_string()),
        HostError::TooManyWrites => Fault::new("TooManyWrites", msg),
        HostError::SaveFailed(s) => {
            Fault::new("PlatformConfigFault", msg).with("text", s.to_string())
        }
        HostError::InvalidPath(_) | HostError::InvalidArgument(_) => {
            Fault::invalid_argument(msg, None)
        }
        HostError::Account(a) => match a {
            AccountError::UserNotFound(u) => Fault::new("UserNotFound", msg)
                .with("principal", u)
                .with("unresolved", false),
            AccountError::AlreadyExists(u) => Fault::new("AlreadyExists", msg).with("name", u),
            AccountError::InvalidName(_) => Fault::invalid_argument(msg, Some("id")),
            AccountError::InvalidPassword(_) => Fault::invalid_argument(msg, Some("password")),
        },
    }
}
