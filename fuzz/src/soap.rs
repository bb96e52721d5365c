//! The SOAP reader and the dispatch behind it.
//!
//! An input is one to four request bodies as `POST /sdk` receives them, separated by
//! [`NEXT`]. Each body goes through [`soap::parse_with`] (what the server decodes with),
//! and each decoded call through [`Vim::call`] on three fresh endpoints: a standalone 6.7U3
//! host, a standalone 8.0U3 host (TPM mode: esxcli's encryption namespaces exist) and a vCenter
//! over one host of each, which forwards host calls as the server does. Every call is made
//! twice: without a session, then with the session a real `Login` opened (the cookie flow).
//! A later request may name what an earlier one returned: `@REF@` (the last managed object
//! reference: a filter, a view, a task), `@TOKEN@` (a RetrievePropertiesEx token) and
//! `@SESSION@` (the session key).
//!
//! Checked for every input:
//! - nothing panics (the driver's `catch_unwind`), nothing hangs or holds unbounded heap;
//! - a body that does not decode is an `InvalidRequest` fault;
//! - every answer, value or fault, is written into an envelope our own reader reads back (a
//!   hostile string echoed into a response must not break the client's parser);
//! - a read-only method (RetrieveProperties, Find*, Query*, WaitForUpdates, ...) changes
//!   nothing on any host model: `/etc`, boot bank, power, maintenance mode, boots;
//! - after the calls and 30 virtual minutes (queued tasks run), a host that is up still
//!   answers RetrieveServiceContent.
//!
//! Generation is structure-aware: a vSphere call from a table of the methods the simulator
//! serves, on a plausible or hostile `_this`, with parameters of the right shape or not (wrong
//! types, missing or repeated, huge numbers, deep nesting, traversal specs that loop, esxcli
//! arguments whose inner document is hostile), in an envelope that is sometimes malformed; then
//! byte-level havoc on a quarter of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use esxi_sim::api::{Call, Param};
use esxi_sim::api::{Fault, Value};
use esxi_sim::host::etc::EtcFs;
use esxi_sim::host::{BootBank, PowerState, DEFAULT_ROOT_PASSWORD};
use esxi_sim::keystore::Mode;
use esxi_sim::rng::Rng;
use esxi_sim::soap::{self, xml};
use esxi_sim::vim::vcenter::{Estate, EstateHost};
use esxi_sim::vim::{Ctx, PasswordCheck, Vim, VimConfig};
use esxi_sim::{Host, HostConfig, Profile};

use crate::driver::Target;
use crate::mutate::{between, chance, havoc, pick, skewed};

/// Separates the requests of one input.
pub const NEXT: &[u8] = b"\n<!-- esxi-fuzz: next request -->\n";
const MAX_REQUESTS: usize = 4;

const VC_USER: &str = "administrator@vsphere.local";
const VC_PASSWORD: &str = "VMware1!";

/// Methods that only read: a call of one must leave every host model as it was.
const READ_ONLY: &[&str] = &[
    "RetrieveServiceContent",
    "CurrentTime",
    "SessionIsActive",
    "RetrieveProperties",
    "RetrievePropertiesEx",
    "ContinueRetrievePropertiesEx",
    "CancelRetrievePropertiesEx",
    "Fetch",
    "CreateFilter",
    "DestroyPropertyFilter",
    "WaitForUpdates",
    "WaitForUpdatesEx",
    "CheckForUpdates",
    "CancelWaitForUpdates",
    "CreateContainerView",
    "DestroyView",
    "QueryOptions",
    "QueryFirmwareQuantumMinutes",
    "QueryFirmwareSyncsPerQuantum",
    "FindByInventoryPath",
    "FindChild",
    "FindByUuid",
    "FindByDnsName",
    "FindByIp",
    "FindAllByUuid",
    "FindAllByDnsName",
    "FindAllByIp",
    "FindByDatastorePath",
    "RetrieveManagedMethodExecuter",
    "RetrieveDynamicTypeManager",
    "DynamicTypeMgrQueryMoInstances",
    "DynamicTypeMgrQueryTypeInfo",
    "QueryEvents",
    "CreateCollectorForEvents",
    "CreateCollectorForTasks",
    "ReadNextTasks",
    "ReadPreviousTasks",
    "SetCollectorPageSize",
    "ReadNextEvents",
    "ReadPreviousEvents",
    "RewindCollector",
    "ResetCollector",
    "DestroyCollector",
    "QueryPerfCounter",
    "QueryPerfCounterByLevel",
    "QueryPerfProviderSummary",
    "QueryAvailablePerfMetric",
    "QueryPerf",
    "CreateListView",
    "ModifyListView",
    "ResetListView",
    "CreatePropertyCollector",
    "DestroyPropertyCollector",
    "QueryDateTime",
    "RetrieveHardwareUptime",
    "RetrieveUserGroups",
    "RetrieveAllPermissions",
    "RetrieveEntityPermissions",
    "RetrieveRolePermissions",
    "HasPrivilegeOnEntity",
    "HasPrivilegeOnEntities",
    "FetchUserPrivilegeOnEntities",
    "QueryDescriptions",
    "BrowseDiagnosticLog",
    "QueryNetConfig",
];

/// ExecuteSoap is read-only when the esxcli command only reads.
fn read_only(req: &Call) -> bool {
    if READ_ONLY.contains(&req.method.as_str()) {
        return true;
    }
    if req.method == "ExecuteSoap" {
        let m = req.param("method").map(|m| m.text.trim()).unwrap_or("");
        return m.ends_with(".get") || m.ends_with(".list") || m.ends_with("FetchCLIInfo");
    }
    false
}

/// Splits an input into its request bodies.
pub fn split(input: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = input;
    while out.len() + 1 < MAX_REQUESTS {
        match rest.windows(NEXT.len()).position(|w| w == NEXT) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + NEXT.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

/// The state of a host model a read-only call must not change.
#[derive(Debug, PartialEq)]
struct Print {
    etc: EtcFs,
    bank: Option<BootBank>,
    power: PowerState,
    maintenance: bool,
    boots: u32,
    hostname: String,
    halted: Option<String>,
    store: Option<u64>,
}

fn print(h: &Host) -> Print {
    Print {
        etc: h.etc().clone(),
        bank: h.bootbank().cloned(),
        power: h.power_state(),
        maintenance: h.in_maintenance_mode(),
        boots: h.boots(),
        hostname: h.hostname(),
        halted: h.boot_halted().map(str::to_string),
        store: h.config_store().map(|s| s.generation()),
    }
}

/// One endpoint made fresh for an input.
struct Endpoint {
    label: &'static str,
    vim: Vim,
    /// A vCenter's hosts (locked only between calls).
    hosts: Vec<Arc<Mutex<Vim>>>,
    user: &'static str,
    password: &'static str,
    token: Option<String>,
    session: Option<String>,
}

impl Endpoint {
    fn prints(&self) -> Vec<Print> {
        let mut v = vec![print(&self.vim.host)];
        for h in &self.hosts {
            v.push(print(&h.lock().unwrap_or_else(|e| e.into_inner()).host));
        }
        v
    }
}

pub struct Soap {
    hosts: Vec<(&'static str, Host)>,
    appliance: Host,
    vc_hosts: Vec<Host>,
    newest: Arc<Profile>,
    /// Password checks already made: (hash field, password) → verdict. The hash is a pure
    /// function, so this changes no outcome; it spares a 5,000-round SHA-512 per login.
    memo: HashMap<(String, String), bool>,
}

impl Soap {
    pub fn new() -> Result<Soap, String> {
        let p67 = Profile::named("6.7U3").map_err(|e| e.to_string())?;
        let p80 = Profile::named("8.0U3").map_err(|e| e.to_string())?;
        let build = |p: &Arc<Profile>, seed: u64, name: &str, mode: Mode| {
            HostConfig::new(p.clone())
                .seed(seed)
                .hostname(name)
                .encryption(mode)
                .boot_time(Duration::from_secs(60))
                .build()
                .map_err(|e| e.to_string())
        };
        let h67 = build(&p67, 101, "esx-67", Mode::None)?;
        let h80 = build(&p80, 102, "esx-80", Mode::Tpm)?;
        let appliance = HostConfig::new(p80.clone())
            .seed(103)
            .hostname("vcenter")
            .stateless(true)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Soap {
            hosts: vec![("esx-6.7U3", h67.clone()), ("esx-8.0U3-tpm", h80.clone())],
            appliance,
            vc_hosts: vec![h67, h80],
            newest: p80,
            memo: HashMap::new(),
        })
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = self
            .hosts
            .iter()
            .map(|(label, h)| Endpoint {
                label,
                vim: Vim::new(h.clone(), VimConfig::default()),
                hosts: Vec::new(),
                user: "root",
                password: DEFAULT_ROOT_PASSWORD,
                token: None,
                session: None,
            })
            .collect();
        let hosts: Vec<Arc<Mutex<Vim>>> = self
            .vc_hosts
            .iter()
            .map(|h| Arc::new(Mutex::new(Vim::new(h.clone(), VimConfig::default()))))
            .collect();
        let estate = Estate::new(
            hosts
                .iter()
                .enumerate()
                .map(|(i, v)| EstateHost {
                    vim: v.clone(),
                    name: format!("127.1.0.{}", i + 1),
                })
                .collect(),
            VC_USER,
            VC_PASSWORD,
            &self.newest,
        );
        out.push(Endpoint {
            label: "vcenter",
            vim: Vim::vcenter(
                self.appliance.clone(),
                VimConfig::default(),
                Arc::new(estate),
            ),
            hosts,
            user: VC_USER,
            password: VC_PASSWORD,
            token: None,
            session: None,
        });
        out
    }

    fn check_password(&mut self, c: &PasswordCheck) -> bool {
        if self.memo.len() > 4096 {
            self.memo.clear();
        }
        *self
            .memo
            .entry((c.field.clone(), c.password.clone()))
            .or_insert_with(|| c.run())
    }

    /// One call as the server makes it: a password hash handed back is checked and the call
    /// made again with the verdict. Returns the answer and the `Set-Cookie` value, if any.
    fn call(
        &mut self,
        vim: &mut Vim,
        req: &Call,
        token: Option<&str>,
    ) -> (Result<Option<Value>, Fault>, Option<String>, Option<String>) {
        let mut verified = None;
        for _ in 0..3 {
            let mut ctx = Ctx {
                token: token.map(str::to_string),
                peer: "127.0.0.1".into(),
                user_agent: "esxi-fuzz".into(),
                offload_hashing: true,
                verified: verified.take(),
                ..Ctx::default()
            };
            let r = vim.call(req, &mut ctx);
            if let Some(check) = ctx.verify.take() {
                let ok = self.check_password(&check);
                verified = Some((check, ok));
                continue;
            }
            return (r, ctx.new_session, ctx.session);
        }
        (
            Err(Fault::new(
                "EsxiFuzzLoop",
                "the password check was asked for again and again",
            )),
            None,
            None,
        )
    }

    fn login(&mut self, ep: &mut Endpoint) -> Result<(), String> {
        let body = format!(
            "<Login xmlns=\"urn:vim25\"><_this type=\"SessionManager\">{}</_this><userName>{}</userName><password>{}</password></Login>",
            if ep.label == "vcenter" { "SessionManager" } else { "ha-sessionmgr" },
            ep.user,
            ep.password
        );
        let req = soap::parse(soap::envelope(&body).as_bytes()).map_err(|f| f.to_string())?;
        let (r, token, session) = self.call(&mut ep.vim, &req, None);
        r.map_err(|f| format!("{}: the fixture's own login failed: {f}", ep.label))?;
        ep.token = token;
        ep.session = session;
        if ep.token.is_none() {
            return Err(format!("{}: Login gave no session token", ep.label));
        }
        Ok(())
    }
}

/// `<Method>` names the table knows (others are classed as `?`, so random names do not make
/// a class each).
pub(crate) fn known_method(m: &str) -> bool {
    METHODS.iter().any(|s| s.name == m) || m == "Login" || m == "Logout"
}

/// An answer written as the server writes it must read back with our own reader.
fn check_written(method: &str, r: &Result<Option<Value>, Fault>) -> Result<(), String> {
    let doc = match r {
        Ok(v) => soap::response(method, v.as_ref()),
        Err(f) => {
            if f.ty.is_empty() || !f.ty.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!("fault type {:?} is not a type name", f.ty));
            }
            f.to_xml()
        }
    };
    xml::parse(doc.as_bytes()).map(|_| ()).map_err(|e| {
        format!(
            "{method}: the {} we write does not read back: {e}",
            if r.is_ok() { "response" } else { "fault" }
        )
    })
}

fn outcome(r: &Result<Option<Value>, Fault>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(f) => f.ty.to_string(),
    }
}

/// A parse error's message with its variable parts (offsets, names) blanked: a class.
pub(crate) fn shape(msg: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    let mut last_digit = false;
    for c in msg.chars() {
        if c == '\'' || c == '"' || c == '`' {
            quoted = !quoted;
            out.push('…');
            continue;
        }
        if quoted {
            continue;
        }
        if c.is_ascii_digit() {
            if !last_digit {
                out.push('N');
            }
            last_digit = true;
            continue;
        }
        last_digit = false;
        out.push(c);
    }
    // Element names after `<`, namespaces after "found", are variable too.
    let out: String = out
        .split_whitespace()
        .map(|w| if w.starts_with('<') { "<…>" } else { w })
        .collect::<Vec<_>>()
        .join(" ");
    out.chars().take(70).collect()
}

fn replace_all(el: &mut Param, subs: &[(&str, &str)]) {
    for (from, to) in subs {
        if el.text.contains(from) {
            el.text = el.text.replace(from, to);
        }
        for v in [&mut el.ref_type, &mut el.declared_type]
            .into_iter()
            .flatten()
        {
            if v.contains(from) {
                *v = v.replace(from, to);
            }
        }
    }
    for c in &mut el.children {
        replace_all(c, subs);
    }
}

/// The first managed object reference and retrieval token in an answer.
fn harvest(v: &Value, r: &mut Option<String>, token: &mut Option<String>) {
    match v {
        Value::Ref(m) if r.is_none() => *r = Some(m.id.clone()),
        Value::Data(d) => {
            for (k, f) in &d.fields {
                if *k == "token" {
                    if let Value::Str(s) = f {
                        token.get_or_insert_with(|| s.clone());
                    }
                }
                harvest(f, r, token);
            }
        }
        Value::Array(_, items) => items.iter().for_each(|i| harvest(i, r, token)),
        Value::Any(b) => harvest(b, r, token),
        _ => {}
    }
}

impl Target for Soap {
    fn name(&self) -> &'static str {
        "soap"
    }

    fn generate(&self, rng: &mut Rng) -> Vec<u8> {
        generate(rng)
    }

    fn heap_bound(&self, input: &[u8]) -> usize {
        // The tree of a request is a few hundred bytes per element; three endpoints with their
        // hosts and answers are a few MiB. Anything near 256 MiB is a runaway.
        (64 << 20) + input.len() * 64
    }

    fn run(&mut self, input: &[u8]) -> Result<String, String> {
        let bodies = split(input);
        let mut calls = Vec::new();
        let mut class = None;
        for b in &bodies {
            match soap::parse_with(b, esxi_sim::vim::registry::declaring_type) {
                Ok(r) => calls.push(r),
                Err(f) => {
                    if f.ty != "InvalidRequest" {
                        return Err(format!("a body that does not decode gave {f}"));
                    }
                    check_written("?", &Err(f.clone()))?;
                    class.get_or_insert_with(|| format!("parse: {}", shape(&f.message)));
                }
            }
        }
        self.dispatch(&calls, class, check_written)
    }
}

/// Checks that an answer is written as a wire writes it and reads back.
pub(crate) type Written = fn(&str, &Result<Option<Value>, Fault>) -> Result<(), String>;

impl Soap {
    /// Makes decoded calls on fresh endpoints, with the checks above; `written` checks that an
    /// answer is written as the wire writes it and reads back. The class: `class` if decoding
    /// gave one, else the last call's method and outcomes.
    pub(crate) fn dispatch(
        &mut self,
        calls: &[Call],
        class: Option<String>,
        written: Written,
    ) -> Result<String, String> {
        // The last authenticated call's outcome on each endpoint.
        let mut outcomes: HashMap<&str, String> = HashMap::new();
        for mut ep in self.endpoints() {
            self.login(&mut ep)?;
            let (mut last_ref, mut last_token) = (None::<String>, None::<String>);
            for call in calls {
                let mut req = call.clone();
                let subs = [
                    ("@REF@", last_ref.as_deref().unwrap_or("none")),
                    ("@TOKEN@", last_token.as_deref().unwrap_or("none")),
                    ("@SESSION@", ep.session.as_deref().unwrap_or("none")),
                ];
                replace_all(&mut req.params, &subs);
                for (from, to) in subs {
                    if req.this.id.contains(from) {
                        req.this.id = req.this.id.replace(from, to);
                    }
                }
                let ro = read_only(&req);
                let token = ep.token.clone();
                for t in [None, token.as_deref()] {
                    let before = ro.then(|| ep.prints());
                    let (r, _, _) = self.call(&mut ep.vim, &req, t);
                    written(&req.method, &r).map_err(|e| format!("{}: {e}", ep.label))?;
                    if let Some(before) = before {
                        let after = ep.prints();
                        if before != after {
                            let which = (0..before.len())
                                .find(|&i| before[i] != after[i])
                                .unwrap_or(0);
                            return Err(format!(
                                "{}: read-only {} changed host model {which}: {}",
                                ep.label,
                                req.method,
                                diff(&before[which], &after[which])
                            ));
                        }
                    }
                    if let Ok(Some(v)) = &r {
                        harvest(v, &mut last_ref, &mut last_token);
                    }
                    if t.is_some() {
                        outcomes.insert(ep.label, outcome(&r));
                    }
                }
            }
            // Whatever was queued runs; a host that is up afterwards still answers.
            let later = ep.vim.now().plus(Duration::from_secs(30 * 60));
            ep.vim.sync_to(later);
            for h in &ep.hosts {
                h.lock().unwrap_or_else(|e| e.into_inner()).sync_to(later);
            }
            if ep.vim.reachable() {
                let probe = soap::parse(
                    soap::envelope("<RetrieveServiceContent xmlns=\"urn:vim25\"><_this type=\"ServiceInstance\">ServiceInstance</_this></RetrieveServiceContent>").as_bytes(),
                )
                .map_err(|f| f.to_string())?;
                let (r, _, _) = self.call(&mut ep.vim, &probe, None);
                if let Err(f) = r {
                    return Err(format!(
                        "{}: a running endpoint no longer answers RetrieveServiceContent: {f}",
                        ep.label
                    ));
                }
            }
        }
        if let Some(c) = class {
            return Ok(c);
        }
        let last = calls.last().map(|c| c.method.as_str()).unwrap_or("");
        let m = if known_method(last) { last } else { "?" };
        let get = |l: &str| outcomes.get(l).cloned().unwrap_or_default();
        Ok(format!("{m}: {} / vc {}", get("esx-6.7U3"), get("vcenter")))
    }
}

fn diff(a: &Print, b: &Print) -> String {
    let mut d = Vec::new();
    if a.etc != b.etc {
        d.push("/etc");
    }
    if a.bank != b.bank {
        d.push("boot bank");
    }
    if a.power != b.power {
        d.push("power");
    }
    if a.maintenance != b.maintenance {
        d.push("maintenance mode");
    }
    if a.boots != b.boots {
        d.push("boots");
    }
    if a.hostname != b.hostname {
        d.push("hostname");
    }
    if a.halted != b.halted {
        d.push("boot halt");
    }
    if a.store != b.store {
        d.push("ConfigStore");
    }
    d.join(", ")
}

// ---- generation ----------------------------------------------------------------------------

/// An element to write: name (with any prefix), attributes, text (escaped unless `raw`),
/// children.
#[derive(Clone, Debug, Default)]
struct El {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    raw: bool,
    kids: Vec<El>,
}

impl El {
    fn new(name: &str) -> El {
        El {
            name: name.into(),
            ..El::default()
        }
    }
    fn text(name: &str, t: impl Into<String>) -> El {
        El {
            name: name.into(),
            text: t.into(),
            ..El::default()
        }
    }
    fn moref(name: &str, ty: &str, id: &str) -> El {
        let mut e = El::text(name, id);
        e.attrs.push(("type".into(), ty.into()));
        e
    }
    fn attr(mut self, k: &str, v: &str) -> El {
        self.attrs.push((k.into(), v.into()));
        self
    }
    fn kid(mut self, k: El) -> El {
        self.kids.push(k);
        self
    }
    fn kids(mut self, ks: impl IntoIterator<Item = El>) -> El {
        self.kids.extend(ks);
        self
    }
    fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            xml::escape(v, out);
            out.push('"');
        }
        if self.text.is_empty() && self.kids.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        if self.raw {
            out.push_str(&self.text);
        } else {
            xml::escape(&self.text, out);
        }
        for k in &self.kids {
            k.write(out);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

/// One object a call may be made on: its type and its ids on a host and on a vCenter.
const OBJECTS: &[(&str, &str)] = &[
    ("ServiceInstance", "ServiceInstance"),
    ("Folder", "ha-folder-root"),
    ("Folder", "group-d1"),
    ("PropertyCollector", "ha-property-collector"),
    ("PropertyCollector", "propertyCollector"),
    ("ViewManager", "ViewManager"),
    ("SessionManager", "ha-sessionmgr"),
    ("SessionManager", "SessionManager"),
    ("TaskManager", "ha-taskmgr"),
    ("TaskManager", "TaskManager"),
    ("Datacenter", "ha-datacenter"),
    ("Datacenter", "datacenter-3"),
    ("Folder", "ha-folder-host"),
    ("Folder", "group-h5"),
    ("Folder", "ha-folder-vm"),
    ("Folder", "group-v4"),
    ("Folder", "ha-folder-datastore"),
    ("Folder", "ha-folder-network"),
    ("ComputeResource", "ha-compute-res"),
    ("ClusterComputeResource", "domain-c8"),
    ("HostSystem", "ha-host"),
    ("HostSystem", "host-12"),
    ("HostSystem", "host-13"),
    ("HostFirmwareSystem", "ha-firmwareSystem"),
    ("HostFirmwareSystem", "firmwareSystem-12"),
    ("HostFirmwareSystem", "firmwareSystem-13"),
    ("HostLocalAccountManager", "ha-localacctmgr"),
    ("OptionManager", "ha-adv-options"),
    ("OptionManager", "EsxHostAdvSettings-13"),
    ("SearchIndex", "ha-searchindex"),
    ("SearchIndex", "SearchIndex"),
    ("ReflectManagedMethodExecuter", "ha-managed-method-executer"),
    ("ReflectManagedMethodExecuter", "ManagedMethodExecuter-13"),
    ("InternalDynamicTypeManager", "ha-dynamic-type-manager"),
    ("InternalDynamicTypeManager", "DynamicTypeManager-13"),
    ("EventManager", "ha-eventmgr"),
    ("EventManager", "EventManager"),
    ("PerformanceManager", "ha-perfmgr"),
    ("PerformanceManager", "PerfMgr"),
    ("OptionManager", "HostAgentSettings"),
    ("OptionManager", "VpxSettings"),
    ("CustomFieldsManager", "CustomFieldsManager"),
    ("HostDateTimeSystem", "dateTimeSystem"),
    ("HostDateTimeSystem", "dateTimeSystem-13"),
    ("AuthorizationManager", "ha-authmgr"),
    ("AuthorizationManager", "AuthorizationManager"),
    ("UserDirectory", "ha-user-directory"),
    ("UserDirectory", "UserDirectory"),
    ("DiagnosticManager", "ha-diagnosticmgr"),
    ("DiagnosticManager", "DiagMgr"),
    ("LicenseManager", "ha-license-manager"),
    ("HostVirtualNicManager", "ha-vnic-mgr"),
    ("HostVirtualNicManager", "virtualNicManager-13"),
    ("PropertyFilter", "@REF@"),
    ("ContainerView", "@REF@"),
    ("ListView", "@REF@"),
    ("EventHistoryCollector", "@REF@"),
    ("TaskHistoryCollector", "@REF@"),
    ("PropertyCollector", "@REF@"),
    ("Task", "@REF@"),
];

const TYPES: &[&str] = &[
    "ServiceInstance",
    "Folder",
    "Datacenter",
    "ComputeResource",
    "ClusterComputeResource",
    "HostSystem",
    "HostFirmwareSystem",
    "PropertyCollector",
    "PropertyFilter",
    "ViewManager",
    "ContainerView",
    "SessionManager",
    "TaskManager",
    "Task",
    "OptionManager",
    "SearchIndex",
    "HostLocalAccountManager",
    "ManagedEntity",
    "ManagedObject",
    "ExtensibleManagedObject",
    "View",
    "ManagedObjectView",
    "VirtualMachine",
    "Datastore",
    "Network",
    "ReflectManagedMethodExecuter",
    "InternalDynamicTypeManager",
    "EventManager",
    "EventHistoryCollector",
    "TaskHistoryCollector",
    "ListView",
    "PerformanceManager",
    "HostDateTimeSystem",
    "AuthorizationManager",
    "UserDirectory",
    "DiagnosticManager",
    "LicenseManager",
    "HostVirtualNicManager",
];

const PATHS: &[&str] = &[
    "name",
    "parent",
    "childEntity",
    "hostFolder",
    "vmFolder",
    "datastoreFolder",
    "networkFolder",
    "host",
    "resourcePool",
    "datastore",
    "network",
    "runtime",
    "runtime.inMaintenanceMode",
    "runtime.connectionState",
    "runtime.powerState",
    "summary",
    "summary.config.product",
    "config",
    "config.product",
    "config.product.apiVersion",
    "configManager",
    "configManager.firmwareSystem",
    "configManager.advancedOption",
    "hardware.systemInfo.uuid",
    "overallStatus",
    "capability",
    "content",
    "about",
    "currentSession",
    "sessionList",
    "info",
    "info.state",
    "info.result",
    "info.error",
    "recentTask",
    "setting",
    "supportedOption",
    "view",
    "filter",
    "triggeredAlarmState",
    "",
    ".",
    "name.",
    ".name",
    "config..product",
    "childEntity[0]",
    "summary.config.product.fullName.x",
    "ÿ",
];

const METHOD_NAMES_EXTRA: &[&str] = &[
    "",
    "retrieveServiceContent",
    "RETRIEVEPROPERTIES",
    "Fetch2",
    "RetrievePropertiesExx",
    "Destroy_Task",
    "PowerOffVM_Task",
    "QueryConnectionInfo",
    "_this",
    "Envelope",
];

/// Hostile strings for any text position.
const HOSTILE: &[&str] = &[
    "",
    " ",
    "\t\n",
    "-1",
    "0",
    "-0",
    "+5",
    " 7 ",
    "2147483647",
    "2147483648",
    "-2147483649",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "99999999999999999999999999999999999999",
    "1e309",
    "-1e309",
    "NaN",
    "inf",
    "0x10",
    "1.5",
    "true",
    "TRUE",
    "yes",
    "null",
    "../../../etc/shadow",
    "/etc/passwd",
    "%00",
    "\u{0}",
    "\u{1}",
    "\u{7f}",
    "\u{feff}",
    "\u{202e}gnp.exe",
    "ü中文",
    "\u{10ffff}",
    "ha-host\u{0}",
    "session[",
    "session[]",
    "]]>",
    "<![CDATA[x]]>",
    "&amp;",
    "&lt;x&gt;",
    "${jndi:ldap://x}",
    "' OR 1=1 --",
    "ha-folder-root/ha-datacenter",
    "ha-datacenter/host/x/y",
    "%2F",
];

/// A method's parameters.
type Params = fn(&mut Gen) -> Vec<El>;

struct MethodSpec {
    name: &'static str,
    /// Types `_this` plausibly has.
    on: &'static [&'static str],
    params: Params,
}

/// An EventFilterSpec: entity and recursion, time, types, categories, a count; each part
/// present or not, plausible or hostile.
fn event_filter(g: &mut Gen) -> El {
    let mut f = El::new("filter");
    if g.rng.below(2) == 0 {
        let (ty, id) = g.object();
        let rec = g.word(&["self", "children", "all"]);
        f = f.kid(
            El::new("entity")
                .kid(El::moref("entity", ty, id))
                .kid(El::text("recursion", rec)),
        );
    }
    if g.rng.below(3) == 0 {
        let begin = g.word(&[
            "2024-01-01T00:00:00Z",
            "2023-12-31T23:00:00.5-01:00",
            "2024-01-01T00:00:00",
        ]);
        let end = g.word(&["2030-01-01T00:00:00Z", "2024-01-01T00:00:01.999999Z"]);
        f = f.kid(
            El::new("time")
                .kid(El::text("beginTime", begin))
                .kid(El::text("endTime", end)),
        );
    }
    for _ in 0..between(&mut g.rng, 0, 2) {
        let t = g.word(&[
            "EnteredMaintenanceModeEvent",
            "ExitMaintenanceModeEvent",
            "esx.audit.host.boot",
            "EventEx",
        ]);
        f = f.kid(El::text("eventTypeId", t));
    }
    for _ in 0..between(&mut g.rng, 0, 2) {
        let c = g.word(&["info", "warning", "error", "user"]);
        f = f.kid(El::text("category", c));
    }
    if g.rng.below(3) == 0 {
        f = f.kid(El::text("maxCount", g.int()));
    }
    f
}

const METHODS: &[MethodSpec] = &[
    MethodSpec {
        name: "CreateCollectorForTasks",
        on: &["TaskManager"],
        params: |g| {
            let mut f = event_filter(g);
            if g.rng.below(2) == 0 {
                let s = g.word(&["queued", "running", "success", "error"]);
                f = f.kid(El::text("state", s));
            }
            if g.rng.below(3) == 0 {
                let u = g.word(&["root", "administrator@vsphere.local", "dcui"]);
                f = f.kid(
                    El::new("userName")
                        .kid(El::text("systemUser", g.boolean()))
                        .kid(El::text("userList", u)),
                );
            }
            vec![f]
        },
    },
    MethodSpec {
        name: "ReadNextTasks",
        on: &["TaskHistoryCollector"],
        params: |g| vec![El::text("maxCount", g.int())],
    },
    MethodSpec {
        name: "ReadPreviousTasks",
        on: &["TaskHistoryCollector"],
        params: |g| vec![El::text("maxCount", g.int())],
    },
    MethodSpec {
        name: "QueryEvents",
        on: &["EventManager"],
        params: |g| vec![event_filter(g)],
    },
    MethodSpec {
        name: "CreateCollectorForEvents",
        on: &["EventManager"],
        params: |g| vec![event_filter(g)],
    },
    MethodSpec {
        name: "SetCollectorPageSize",
        on: &["EventHistoryCollector"],
        params: |g| vec![El::text("maxCount", g.int())],
    },
    MethodSpec {
        name: "ReadNextEvents",
        on: &["EventHistoryCollector"],
        params: |g| vec![El::text("maxCount", g.int())],
    },
    MethodSpec {
        name: "ReadPreviousEvents",
        on: &["EventHistoryCollector"],
        params: |g| vec![El::text("maxCount", g.int())],
    },
    MethodSpec {
        name: "RewindCollector",
        on: &["EventHistoryCollector"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "ResetCollector",
        on: &["EventHistoryCollector"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "DestroyCollector",
        on: &["EventHistoryCollector"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "QueryPerfProviderSummary",
        on: &["PerformanceManager"],
        params: |g| {
            let (ty, id) = g.object();
            vec![El::moref("entity", ty, id)]
        },
    },
    MethodSpec {
        name: "QueryAvailablePerfMetric",
        on: &["PerformanceManager"],
        params: |g| {
            let (ty, id) = g.object();
            vec![El::moref("entity", ty, id), El::text("intervalId", g.int())]
        },
    },
    MethodSpec {
        name: "QueryPerfCounterByLevel",
        on: &["PerformanceManager"],
        params: |g| vec![El::text("level", g.int())],
    },
    MethodSpec {
        name: "CreateListView",
        on: &["ViewManager"],
        params: |g| {
            let mut v = Vec::new();
            for _ in 0..between(&mut g.rng, 0, 3) {
                let (ty, id) = g.object();
                v.push(El::moref("obj", ty, id));
            }
            v
        },
    },
    MethodSpec {
        name: "ModifyListView",
        on: &["ListView"],
        params: |g| {
            let (ty, id) = g.object();
            let (ty2, id2) = g.object();
            vec![El::moref("add", ty, id), El::moref("remove", ty2, id2)]
        },
    },
    MethodSpec {
        name: "ResetListView",
        on: &["ListView"],
        params: |g| {
            let (ty, id) = g.object();
            vec![El::moref("obj", ty, id)]
        },
    },
    MethodSpec {
        name: "CreatePropertyCollector",
        on: &["PropertyCollector"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "DestroyPropertyCollector",
        on: &["PropertyCollector"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "QueryDateTime",
        on: &["HostDateTimeSystem"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "RetrieveHardwareUptime",
        on: &["HostSystem"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "RetrieveServiceContent",
        on: &["ServiceInstance"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "CurrentTime",
        on: &["ServiceInstance"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "Login",
        on: &["SessionManager"],
        params: |g| {
            vec![
                El::text(
                    "userName",
                    g.word(&[
                        "root",
                        "administrator@vsphere.local",
                        "dcui",
                        "nobody",
                        "ROOT",
                        "root ",
                    ]),
                ),
                El::text(
                    "password",
                    g.word(&[DEFAULT_ROOT_PASSWORD, VC_PASSWORD, "wrong", "", "VMware1!x"]),
                ),
                El::text("locale", g.word(&["en", "de", "zz_ZZ"])),
            ]
        },
    },
    MethodSpec {
        name: "Logout",
        on: &["SessionManager"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "SessionIsActive",
        on: &["SessionManager"],
        params: |g| {
            vec![
                El::text("sessionID", g.word(&["@SESSION@", "52abc", ""])),
                El::text("userName", g.word(&["root", VC_USER, "x"])),
            ]
        },
    },
    MethodSpec {
        name: "RetrieveProperties",
        on: &["PropertyCollector"],
        params: |g| {
            (0..between(&mut g.rng, 0, 2))
                .map(|_| g.filter_spec("specSet"))
                .collect()
        },
    },
    MethodSpec {
        name: "RetrievePropertiesEx",
        on: &["PropertyCollector"],
        params: |g| {
            let mut v: Vec<El> = (0..between(&mut g.rng, 0, 2))
                .map(|_| g.filter_spec("specSet"))
                .collect();
            v.push(El::new("options").kid(El::text("maxObjects", g.int())));
            v
        },
    },
    MethodSpec {
        name: "ContinueRetrievePropertiesEx",
        on: &["PropertyCollector"],
        params: |g| vec![El::text("token", g.word(&["@TOKEN@", "0", ""]))],
    },
    MethodSpec {
        name: "CancelRetrievePropertiesEx",
        on: &["PropertyCollector"],
        params: |g| vec![El::text("token", g.word(&["@TOKEN@", "1"]))],
    },
    MethodSpec {
        name: "CreateFilter",
        on: &["PropertyCollector"],
        params: |g| {
            vec![
                g.filter_spec("spec"),
                El::text("partialUpdates", g.boolean()),
            ]
        },
    },
    MethodSpec {
        name: "DestroyPropertyFilter",
        on: &["PropertyFilter"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "WaitForUpdates",
        on: &["PropertyCollector"],
        params: |g| vec![El::text("version", g.word(&["", "1", "2", "@TOKEN@"]))],
    },
    MethodSpec {
        name: "WaitForUpdatesEx",
        on: &["PropertyCollector"],
        params: |g| {
            vec![
                El::text("version", g.word(&["", "1", "3"])),
                El::new("options")
                    .kid(El::text("maxWaitSeconds", g.int()))
                    .kid(El::text("maxObjectUpdates", g.int())),
            ]
        },
    },
    MethodSpec {
        name: "CheckForUpdates",
        on: &["PropertyCollector"],
        params: |g| vec![El::text("version", g.word(&["", "1"]))],
    },
    MethodSpec {
        name: "CancelWaitForUpdates",
        on: &["PropertyCollector"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "Fetch",
        on: &[
            "HostSystem",
            "Folder",
            "Datacenter",
            "ServiceInstance",
            "HostFirmwareSystem",
            "Task",
            "PropertyCollector",
            "ContainerView",
            "OptionManager",
            "SessionManager",
        ],
        params: |g| vec![El::text("prop", g.path())],
    },
    MethodSpec {
        name: "CreateContainerView",
        on: &["ViewManager"],
        params: |g| {
            let (ty, id) = g.object();
            let mut v = vec![El::moref("container", ty, id)];
            for _ in 0..between(&mut g.rng, 0, 3) {
                v.push(El::text("type", g.type_name()));
            }
            v.push(El::text("recursive", g.boolean()));
            v
        },
    },
    MethodSpec {
        name: "DestroyView",
        on: &["ContainerView"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "EnterMaintenanceMode_Task",
        on: &["HostSystem"],
        params: |g| {
            vec![
                El::text("timeout", g.int()),
                El::text("evacuatePoweredOffVms", g.boolean()),
            ]
        },
    },
    MethodSpec {
        name: "ExitMaintenanceMode_Task",
        on: &["HostSystem"],
        params: |g| vec![El::text("timeout", g.int())],
    },
    MethodSpec {
        name: "RebootHost_Task",
        on: &["HostSystem"],
        params: |g| vec![El::text("force", g.boolean())],
    },
    MethodSpec {
        name: "ShutdownHost_Task",
        on: &["HostSystem"],
        params: |g| vec![El::text("force", g.boolean())],
    },
    MethodSpec {
        name: "RetrieveManagedMethodExecuter",
        on: &["HostSystem"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "RetrieveDynamicTypeManager",
        on: &["HostSystem"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "BackupFirmwareConfiguration",
        on: &["HostFirmwareSystem"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "QueryFirmwareConfigUploadURL",
        on: &["HostFirmwareSystem"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "RestoreFirmwareConfiguration",
        on: &["HostFirmwareSystem"],
        params: |g| vec![El::text("force", g.boolean())],
    },
    MethodSpec {
        name: "ResetFirmwareToFactoryDefaults",
        on: &["HostFirmwareSystem"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "SyncFirmwareConfiguration",
        on: &["HostFirmwareSystem"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "QueryFirmwareQuantumMinutes",
        on: &["HostFirmwareSystem"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "QueryFirmwareSyncsPerQuantum",
        on: &["HostFirmwareSystem"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "CancelTask",
        on: &["Task"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "QueryNetConfig",
        on: &["HostVirtualNicManager"],
        params: |g| {
            vec![El::text(
                "nicType",
                g.word(&["management", "vmotion", "vsan", ""]),
            )]
        },
    },
    MethodSpec {
        name: "RetrieveUserGroups",
        on: &["UserDirectory"],
        params: |g| {
            let mut v = Vec::new();
            if g.hostile() {
                v.push(El::text("domain", g.word(&["", "vsphere.local", "corp"])));
            }
            v.push(El::text("searchStr", g.word(&["", "root", "dc", "x"])));
            if g.hostile() {
                v.push(El::text("belongsToGroup", g.word(&["root", "users", ""])));
            }
            v.push(El::text("exactMatch", g.boolean()));
            v.push(El::text("findUsers", g.boolean()));
            v.push(El::text("findGroups", g.boolean()));
            v
        },
    },
    MethodSpec {
        name: "RetrieveAllPermissions",
        on: &["AuthorizationManager"],
        params: |_| vec![],
    },
    MethodSpec {
        name: "RetrieveEntityPermissions",
        on: &["AuthorizationManager"],
        params: |g| {
            let (ty, id) = g.object();
            vec![
                El::moref("entity", ty, id),
                El::text("inherited", g.boolean()),
            ]
        },
    },
    MethodSpec {
        name: "RetrieveRolePermissions",
        on: &["AuthorizationManager"],
        params: |g| vec![El::text("roleId", g.int())],
    },
    MethodSpec {
        name: "SetEntityPermissions",
        on: &["AuthorizationManager"],
        params: |g| {
            let (ty, id) = g.object();
            let perm = El::new("permission")
                .kid(El::text("principal", g.word(&["root", "dcui", "fuzz", ""])))
                .kid(El::text("group", g.boolean()))
                .kid(El::text("roleId", g.int()))
                .kid(El::text("propagate", g.boolean()));
            vec![El::moref("entity", ty, id), perm]
        },
    },
    MethodSpec {
        name: "RemoveEntityPermission",
        on: &["AuthorizationManager"],
        params: |g| {
            let (ty, id) = g.object();
            vec![
                El::moref("entity", ty, id),
                El::text("user", g.word(&["root", "dcui", "fuzz"])),
                El::text("isGroup", g.boolean()),
            ]
        },
    },
    MethodSpec {
        name: "HasPrivilegeOnEntity",
        on: &["AuthorizationManager"],
        params: |g| {
            let (ty, id) = g.object();
            vec![
                El::moref("entity", ty, id),
                El::text("sessionId", g.word(&["", "52 00"])),
                El::text(
                    "privId",
                    g.word(&["System.Read", "Host.Config.Firmware", ""]),
                ),
            ]
        },
    },
    MethodSpec {
        name: "FetchUserPrivilegeOnEntities",
        on: &["AuthorizationManager"],
        params: |g| {
            let (ty, id) = g.object();
            vec![
                El::moref("entities", ty, id),
                El::text("userName", g.word(&["root", "fuzz"])),
            ]
        },
    },
    MethodSpec {
        name: "QueryDescriptions",
        on: &["DiagnosticManager"],
        params: |g| match g.hostile() {
            true => {
                let (ty, id) = g.object();
                vec![El::moref("host", ty, id)]
            }
            false => vec![],
        },
    },
    MethodSpec {
        name: "BrowseDiagnosticLog",
        on: &["DiagnosticManager"],
        params: |g| {
            let mut v = Vec::new();
            if g.hostile() {
                let (ty, id) = g.object();
                v.push(El::moref("host", ty, id));
            }
            v.push(El::text(
                "key",
                g.word(&["hostd", "vmkernel", "vpxa", "vpxd:vpxd.log"]),
            ));
            v.push(El::text("start", g.int()));
            v.push(El::text("lines", g.int()));
            v
        },
    },
    MethodSpec {
        name: "CreateUser",
        on: &["HostLocalAccountManager"],
        params: |g| vec![g.account_spec()],
    },
    MethodSpec {
        name: "UpdateUser",
        on: &["HostLocalAccountManager"],
        params: |g| vec![g.account_spec()],
    },
    MethodSpec {
        name: "RemoveUser",
        on: &["HostLocalAccountManager"],
        params: |g| {
            vec![El::text(
                "userName",
                g.word(&["root", "fuzz", "dcui", "vpxuser", ""]),
            )]
        },
    },
    MethodSpec {
        name: "QueryOptions",
        on: &["OptionManager"],
        params: |g| {
            if chance(&mut g.rng, 1, 4) {
                vec![]
            } else {
                vec![El::text("name", g.option_key())]
            }
        },
    },
    MethodSpec {
        name: "UpdateOptions",
        on: &["OptionManager"],
        params: |g| {
            (0..between(&mut g.rng, 0, 3))
                .map(|_| {
                    let ty = *pick(
                        &mut g.rng,
                        &[
                            "xsd:string",
                            "xsd:int",
                            "xsd:long",
                            "xsd:boolean",
                            "xsd:float",
                            "OptionValue",
                            "xsd:base64Binary",
                        ],
                    );
                    let mut value = El::text("value", g.value());
                    if !chance(&mut g.rng, 1, 8) {
                        value = value.attr("xsi:type", ty);
                    }
                    El::new("changedValue")
                        .kid(El::text("key", g.option_key()))
                        .kid(value)
                })
                .collect()
        },
    },
    MethodSpec {
        name: "FindByInventoryPath",
        on: &["SearchIndex"],
        params: |g| {
            vec![El::text(
                "inventoryPath",
                g.word(&[
                    "ha-datacenter",
                    "ha-datacenter/host",
                    "Datacenter/host/domain-c8",
                    "ha-datacenter/host/esx-67/esx-67",
                    "/",
                    "",
                    "//",
                    "a%2fb/c",
                    "ha-datacenter/vm",
                    "Datacenter/host/127.1.0.1",
                ]),
            )]
        },
    },
    MethodSpec {
        name: "FindChild",
        on: &["SearchIndex"],
        params: |g| {
            let (ty, id) = g.object();
            vec![
                El::moref("entity", ty, id),
                El::text(
                    "name",
                    g.word(&[
                        "host",
                        "vm",
                        "ha-datacenter",
                        "Datacenter",
                        "esx-67",
                        "127.1.0.1",
                        "",
                    ]),
                ),
            ]
        },
    },
    MethodSpec {
        name: "FindByUuid",
        on: &["SearchIndex"],
        params: |g| g.find_by("uuid"),
    },
    MethodSpec {
        name: "FindAllByUuid",
        on: &["SearchIndex"],
        params: |g| g.find_by("uuid"),
    },
    MethodSpec {
        name: "FindByDnsName",
        on: &["SearchIndex"],
        params: |g| g.find_by("dnsName"),
    },
    MethodSpec {
        name: "FindAllByDnsName",
        on: &["SearchIndex"],
        params: |g| g.find_by("dnsName"),
    },
    MethodSpec {
        name: "FindByIp",
        on: &["SearchIndex"],
        params: |g| g.find_by("ip"),
    },
    MethodSpec {
        name: "FindAllByIp",
        on: &["SearchIndex"],
        params: |g| g.find_by("ip"),
    },
    MethodSpec {
        name: "FindByDatastorePath",
        on: &["SearchIndex"],
        params: |g| {
            let (ty, id) = g.object();
            vec![
                El::moref("datacenter", ty, id),
                El::text("path", g.word(&["[datastore1] vm/vm.vmx", "", "[x]"])),
            ]
        },
    },
    MethodSpec {
        name: "ExecuteSoap",
        on: &["ReflectManagedMethodExecuter"],
        params: |g| g.execute_soap(),
    },
    MethodSpec {
        name: "DynamicTypeMgrQueryMoInstances",
        on: &["InternalDynamicTypeManager"],
        params: |g| g.dyn_filter(),
    },
    MethodSpec {
        name: "DynamicTypeMgrQueryTypeInfo",
        on: &["InternalDynamicTypeManager"],
        params: |g| g.dyn_filter(),
    },
];

/// The generator's state: the RNG and how hostile this input is.
struct Gen {
    rng: Rng,
    /// Out of 16: the chance a value is drawn from the hostile pool.
    hostility: u64,
}

impl Gen {
    fn hostile(&mut self) -> bool {
        chance(&mut self.rng, self.hostility, 16)
    }

    fn hostile_string(&mut self) -> String {
        match self.rng.below(10) {
            0 => "A".repeat(skewed(&mut self.rng, 70_000)),
            1 => {
                let n = skewed(&mut self.rng, 64);
                self.rng.string(b"abcXYZ019-_.:/[]<>&;'\" ", n)
            }
            _ => pick(&mut self.rng, HOSTILE).to_string(),
        }
    }

    fn word(&mut self, plausible: &[&str]) -> String {
        if self.hostile() {
            self.hostile_string()
        } else {
            pick(&mut self.rng, plausible).to_string()
        }
    }

    fn int(&mut self) -> String {
        if self.hostile() {
            return self.hostile_string();
        }
        match self.rng.below(5) {
            0 => "0".into(),
            1 => "1".into(),
            2 => "-1".into(),
            3 => (self.rng.below(1000) as i64).to_string(),
            _ => (self.rng.next_u64() as i64).to_string(),
        }
    }

    fn boolean(&mut self) -> String {
        self.word(&["true", "false", "1", "0"])
    }

    fn value(&mut self) -> String {
        match self.rng.below(3) {
            0 => self.int(),
            1 => self.boolean(),
            _ => self.word(&["info", "verbose", "syslog.lab:514", "5", "900"]),
        }
    }

    fn path(&mut self) -> String {
        if self.hostile() {
            return self.hostile_string();
        }
        pick(&mut self.rng, PATHS).to_string()
    }

    fn type_name(&mut self) -> String {
        if self.hostile() {
            return self.hostile_string();
        }
        pick(&mut self.rng, TYPES).to_string()
    }

    fn object(&mut self) -> (&'static str, &'static str) {
        *pick(&mut self.rng, OBJECTS)
    }

    fn option_key(&mut self) -> String {
        self.word(&[
            "Security.AccountLockFailures",
            "Security.AccountUnlockTime",
            "Config.HostAgent.log.level",
            "UserVars.SuppressShellWarning",
            "Syslog.global.logHost",
            "Misc.HostName",
            "Net.TcpipHeapSize",
            "Config.",
            "Security.",
            "",
        ])
    }

    fn account_spec(&mut self) -> El {
        let mut e = El::new("user");
        if !chance(&mut self.rng, 1, 4) {
            e = e.attr(
                "xsi:type",
                pick::<&str>(
                    &mut self.rng,
                    &["HostPosixAccountSpec", "HostAccountSpec", "xsd:string"],
                ),
            );
        }
        if !chance(&mut self.rng, 1, 8) {
            e = e.kid(El::text(
                "id",
                self.word(&["fuzz", "root", "a", "Fuzz_User-1", "x.y", "dcui"]),
            ));
        }
        if chance(&mut self.rng, 3, 4) {
            e = e.kid(El::text(
                "password",
                self.word(&["Passw0rd!x", "", "short", DEFAULT_ROOT_PASSWORD]),
            ));
        }
        if chance(&mut self.rng, 1, 2) {
            e = e.kid(El::text("description", self.word(&["a user", ""])));
        }
        if chance(&mut self.rng, 1, 4) {
            e = e.kid(El::text("posixId", self.int()));
        }
        if chance(&mut self.rng, 1, 4) {
            e = e.kid(El::text("shellAccess", self.boolean()));
        }
        e
    }

    fn find_by(&mut self, key: &str) -> Vec<El> {
        let mut v = Vec::new();
        if chance(&mut self.rng, 1, 2) {
            let (ty, id) = self.object();
            v.push(El::moref("datacenter", ty, id));
        }
        let value = match key {
            "uuid" => self.word(&[
                "4c4c4544-0000-0000-0000-000000000000",
                "",
                "00000000-0000-0000-0000-000000000000",
            ]),
            "dnsName" => self.word(&["esx-67", "esx-80", "esx-67.lab", "localhost", ""]),
            _ => self.word(&["127.0.0.1", "127.1.0.1", "::1", "10.0.0.1", "999.1.1.1", ""]),
        };
        v.push(El::text(key, value));
        v.push(El::text("vmSearch", self.boolean()));
        if key == "uuid" && chance(&mut self.rng, 1, 2) {
            v.push(El::text("instanceUuid", self.boolean()));
        }
        v
    }

    fn dyn_filter(&mut self) -> Vec<El> {
        if chance(&mut self.rng, 1, 4) {
            return vec![];
        }
        let mut f = El::new("filterSpec");
        if chance(&mut self.rng, 1, 2) {
            f = f.kid(El::text(
                "id",
                self.word(&[
                    "ha-cli-handler-system-version",
                    "ha-dynamic-type-manager-local-cli-cliinfo",
                    "",
                ]),
            ));
        }
        if chance(&mut self.rng, 1, 2) {
            f = f.kid(El::text(
                "typeSubstr",
                self.word(&["vim.EsxCLI", "system", "", "encryption.recovery"]),
            ));
        }
        vec![f]
    }

    /// A PropertyFilterSpec: propSets and objectSets, traversal specs that may name
    /// themselves (loops) or each other.
    fn filter_spec(&mut self, name: &str) -> El {
        let mut spec = El::new(name);
        for _ in 0..between(&mut self.rng, 0, 3) {
            let mut ps = El::new("propSet").kid(El::text("type", self.type_name()));
            if chance(&mut self.rng, 1, 3) {
                ps = ps.kid(El::text("all", self.boolean()));
            }
            for _ in 0..skewed(&mut self.rng, 6) {
                ps = ps.kid(El::text("pathSet", self.path()));
            }
            spec = spec.kid(ps);
        }
        for _ in 0..between(&mut self.rng, 0, 2) {
            let (ty, id) = self.object();
            let mut os = El::new("objectSet").kid(El::moref("obj", ty, id));
            if chance(&mut self.rng, 1, 3) {
                os = os.kid(El::text("skip", self.boolean()));
            }
            for _ in 0..skewed(&mut self.rng, 4) {
                os = os.kid(self.selection(0));
            }
            spec = spec.kid(os);
        }
        if chance(&mut self.rng, 1, 10) {
            spec = spec.kid(El::text("reportMissingObjectsInResults", self.boolean()));
        }
        spec
    }

    fn selection(&mut self, depth: usize) -> El {
        const NAMES: &[&str] = &[
            "visitFolders",
            "dcToHf",
            "dcToVmf",
            "crToH",
            "hToVm",
            "traverseEntities",
            "t",
            "",
        ];
        if depth > 3 || chance(&mut self.rng, 1, 3) {
            let mut s = El::new("selectSet").kid(El::text("name", self.word(NAMES)));
            if !chance(&mut self.rng, 1, 6) {
                s = s.attr("xsi:type", "SelectionSpec");
            }
            return s;
        }
        let paths = [
            "childEntity",
            "hostFolder",
            "vmFolder",
            "host",
            "view",
            "datastore",
            "network",
            "resourcePool",
            "parent",
            "x",
        ];
        let mut t = El::new("selectSet");
        if !chance(&mut self.rng, 1, 8) {
            t = t.attr("xsi:type", "TraversalSpec");
        }
        if chance(&mut self.rng, 3, 4) {
            t = t.kid(El::text("name", self.word(NAMES)));
        }
        t = t
            .kid(El::text("type", self.type_name()))
            .kid(El::text("path", self.word(&paths)));
        if chance(&mut self.rng, 1, 3) {
            t = t.kid(El::text("skip", self.boolean()));
        }
        for _ in 0..skewed(&mut self.rng, 3) {
            let s = self.selection(depth + 1);
            t = t.kid(s);
        }
        t
    }

    /// ExecuteSoap: an esxcli command, its arguments' values a document of their own.
    fn execute_soap(&mut self) -> Vec<El> {
        let moid = self.word(&[
            "ha-cli-handler-system-version",
            "ha-cli-handler-system-hostname",
            "ha-cli-handler-system-settings-encryption",
            "ha-cli-handler-system-settings-encryption-recovery",
            "ha-dynamic-type-manager-local-cli-cliinfo",
            "ha-cli-handler-",
            "ha-cli-handler-system-version-x",
        ]);
        let version = self.word(&[
            "urn:vim25/5.0",
            "urn:vim25/8.0.3.0",
            "urn:vim25/6.7.3",
            "urn:vim25/4.0",
            "urn:vim25/",
            "vim25/5.0",
        ]);
        let method = self.word(&[
            "vim.EsxCLI.system.version.get",
            "vim.EsxCLI.system.hostname.get",
            "vim.EsxCLI.system.hostname.set",
            "vim.EsxCLI.system.settings.encryption.get",
            "vim.EsxCLI.system.settings.encryption.set",
            "vim.EsxCLI.system.settings.encryption.recovery.list",
            "vim.EsxCLI.system.settings.encryption.recovery.rotate",
            "vim.CLIInfo.FetchCLIInfo",
            "fetchCLIInfo",
            "get",
            "vim.EsxCLI.system.version.get.x",
        ]);
        let mut v = vec![
            El::text("moid", moid),
            El::text("version", version),
            El::text("method", method),
        ];
        for _ in 0..skewed(&mut self.rng, 4) {
            let name = self.word(&[
                "host",
                "domain",
                "fqdn",
                "mode",
                "requiresecureboot",
                "requireexecinstalledonly",
                "keyid",
                "uuid",
                "typeName",
            ]);
            let inner = self.inner_value(&name);
            let mut a = El::new("argument").kid(El::text("name", name.clone()));
            if !chance(&mut self.rng, 1, 10) {
                a = a.kid(El::text("val", inner));
            }
            v.push(a);
        }
        v
    }

    /// The serialized argument `<name>value</name>` that hostd parses again.
    fn inner_value(&mut self, name: &str) -> String {
        let value = self.word(&[
            "esx-fuzz",
            "lab.local",
            "TPM",
            "NONE",
            "true",
            "false",
            "vim.EsxCLI.system.version",
            "{00000000-0000-0000-0000-000000000000}",
        ]);
        match self.rng.below(8) {
            0 => format!(
                "<{name}>{}</{name}>",
                "<a>".repeat(between(&mut self.rng, 60, 80))
            ),
            1 => format!(
                "<{name} xsi:type=\"xsd:{}\">{value}</{name}>",
                pick(&mut self.rng, &["string", "boolean", "int", "long", "x"])
            ),
            2 => format!("<{name}>{value}</{name}><{name}>{value}</{name}>"),
            3 => format!("<{name}><x>{value}</x></{name}>"),
            4 => format!("<{name}>{value}"),
            5 => value,
            _ => format!(
                "<{name}>{}</{name}>",
                value.replace('&', "&amp;").replace('<', "&lt;")
            ),
        }
    }
}

fn envelope_around(g: &mut Gen, call: &str) -> String {
    const NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
    let decls = format!(
        "xmlns:soapenc=\"http://schemas.xmlsoap.org/soap/encoding/\" xmlns:soapenv=\"{NS}\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
    );
    let decl = if chance(&mut g.rng, 3, 4) {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    } else {
        *pick(
            &mut g.rng,
            &[
                "",
                "\u{feff}",
                "<?xml version=\"1.1\"?>",
                "<?xml version=\"1.0\" encoding=\"UTF-16\"?>",
                "<!-- c -->",
                "<?pi x?>",
                "<!DOCTYPE Envelope [<!ENTITY x \"y\">]>",
            ],
        )
    };
    match g.rng.below(60) {
        // Malformed envelopes, one kind each.
        0 => format!("{decl}<soapenv:Envelope {decls}>{call}</soapenv:Envelope>"),
        1 => format!("{decl}<Envelope><Body>{call}</Body></Envelope>"),
        2 => format!("{decl}<soapenv:Envelope {decls}><soapenv:Body>{call}{call}</soapenv:Body></soapenv:Envelope>"),
        3 => format!("{decl}<soapenv:Envelope {decls}><soapenv:Body></soapenv:Body></soapenv:Envelope>"),
        4 => format!("{decl}<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\"><soap:Body>{call}</soap:Body></soap:Envelope>"),
        5 => format!("{decl}<soapenv:Envelope {decls}><soapenv:Header><x>&amp;</x></soapenv:Header><soapenv:Body>{call}</soapenv:Body></soapenv:Envelope>"),
        6 => format!("{decl}<e:Envelope xmlns:e=\"{NS}\"><e:Body>{call}</e:Body></e:Envelope>"),
        7 => format!("{decl}<soapenv:Envelope {decls}><soapenv:Body>{call}</soapenv:Body></soapenv:Envelope><x/>"),
        8 => format!("{decl}<soapenv:Envelope {decls}><soapenv:Body>{call}</soapenv:Body>"),
        _ => format!("{decl}<soapenv:Envelope {decls}>\n<soapenv:Body>{call}</soapenv:Body>\n</soapenv:Envelope>"),
    }
}

/// One call's element.
fn call_element(g: &mut Gen) -> El {
    let spec = pick(&mut g.rng, METHODS);
    let mut name = spec.name.to_string();
    if chance(&mut g.rng, 1, 30) {
        name = pick(&mut g.rng, METHOD_NAMES_EXTRA).to_string();
    }
    let mut m = El::new(&name);
    match g.rng.below(40) {
        0 => {}
        1 => m = m.attr("xmlns", "urn:vim26"),
        2 => {
            m.name = format!("vim:{name}");
            m = m.attr("xmlns:vim", "urn:vim25");
        }
        3 => m.name = format!("undeclared:{name}"),
        _ => m = m.attr("xmlns", "urn:vim25"),
    }
    // `_this`: a plausible object of a type the method is on, or anything.
    let plausible: Vec<&(&str, &str)> = OBJECTS
        .iter()
        .filter(|(t, _)| spec.on.contains(t))
        .collect();
    let (ty, id) = if !plausible.is_empty() && !chance(&mut g.rng, 1, 8) {
        **pick(&mut g.rng, &plausible)
    } else {
        g.object()
    };
    let (ty, id) = (ty.to_string(), id.to_string());
    let this = match g.rng.below(40) {
        0 => None,
        1 => Some(El::text("_this", id)),
        2 => Some(El::moref("_this", &ty, "")),
        3 => Some(El::moref("_this", &g.hostile_string(), &id)),
        4 => Some(El::moref("_this", &ty, &g.hostile_string())),
        5 => Some(El::moref("_this", &ty, &id).attr("xsi:type", "ManagedObjectReference")),
        _ => Some(El::moref("_this", &ty, &id)),
    };
    let mut params = (spec.params)(g);
    structural(g, &mut params);
    if let Some(t) = this {
        if chance(&mut g.rng, 1, 30) {
            m = m.kid(t.clone());
        }
        m = m.kid(t);
    }
    m.kids(params)
}

/// Drops, repeats, reorders, renames and nests parameters; adds ones nobody asked for.
fn structural(g: &mut Gen, params: &mut Vec<El>) {
    if !chance(&mut g.rng, g.hostility, 16) {
        return;
    }
    for _ in 0..between(&mut g.rng, 1, 3) {
        let n = params.len();
        match g.rng.below(8) {
            0 if n > 0 => {
                params.remove(g.rng.below(n as u64) as usize);
            }
            1 if n > 0 => {
                let e = params[g.rng.below(n as u64) as usize].clone();
                params.push(e);
            }
            2 if n > 1 => {
                let (a, b) = (
                    g.rng.below(n as u64) as usize,
                    g.rng.below(n as u64) as usize,
                );
                params.swap(a, b);
            }
            3 if n > 0 => {
                let i = g.rng.below(n as u64) as usize;
                params[i].attrs.push(("xsi:type".into(), g.type_name()));
            }
            4 => {
                // Deep nesting: over the reader's cap of 64 now and then.
                let depth = between(&mut g.rng, 10, 70);
                let mut e = El::text("x", "deep");
                for _ in 0..depth {
                    e = El::new(pick::<&str>(
                        &mut g.rng,
                        &["specSet", "objectSet", "selectSet", "x", "val"],
                    ))
                    .kid(e);
                }
                params.push(e);
            }
            5 => {
                // Many siblings.
                let k = skewed(&mut g.rng, 5000);
                let name = if n > 0 {
                    params[0].name.clone()
                } else {
                    "pathSet".into()
                };
                params.extend((0..k).map(|_| El::text(&name, "name")));
            }
            6 if n > 0 => {
                let i = g.rng.below(n as u64) as usize;
                let inner = params.remove(i);
                params.push(El::new("wrapper").kid(inner));
            }
            _ => {
                let mut e = El::text(
                    pick::<&str>(
                        &mut g.rng,
                        &["force", "specSet", "unknownParam", "_this", "returnval"],
                    ),
                    g.hostile_string(),
                );
                if chance(&mut g.rng, 1, 4) {
                    e.raw = true;
                    e.text = pick(
                        &mut g.rng,
                        &[
                            "<a><b/></a>",
                            "&#0;",
                            "&#x10FFFF;",
                            "&#xD800;",
                            "&#65;",
                            "&unknown;",
                            "<![CDATA[<x>]]>",
                            "<?pi?>",
                            "<!-- -->",
                        ],
                    )
                    .to_string();
                }
                params.push(e);
            }
        }
    }
}

const DICT: &[&[u8]] = &[
    b"<",
    b">",
    b"</",
    b"/>",
    b"&",
    b"&amp;",
    b"&#0;",
    b"&#x110000;",
    b"]]>",
    b"<![CDATA[",
    b"<!DOCTYPE a>",
    b"<?xml version=\"1.0\"?>",
    b"xmlns=\"\"",
    b"xmlns:x=\"urn:vim25\"",
    b"xsi:type=\"",
    b"\"",
    b"'",
    b"=",
    b"_this",
    b"type=\"HostSystem\"",
    b"\xff",
    b"\xc3\x28",
    b"\0",
];

/// One input: one to four request bodies.
pub fn generate(rng: &mut Rng) -> Vec<u8> {
    let mut g = Gen {
        hostility: *pick(rng, &[1u64, 2, 4, 8]),
        rng: Rng::new(rng.next_u64()),
    };
    let n = *pick(&mut g.rng, &[1usize, 1, 1, 2, 2, 3, 4]);
    let mut out = Vec::new();
    for i in 0..n {
        if i > 0 {
            out.extend_from_slice(NEXT);
        }
        let call = call_element(&mut g);
        let mut s = String::new();
        call.write(&mut s);
        let mut body = envelope_around(&mut g, &s).into_bytes();
        if chance(&mut g.rng, 1, 5) {
            havoc(&mut g.rng, &mut body, DICT, 8, 1 << 20);
            // Most bodies stay UTF-8, so the havoc reaches the XML reader, not its first check.
            if !chance(&mut g.rng, 1, 4) {
                body = String::from_utf8_lossy(&body).into_owned().into_bytes();
            }
        }
        out.extend_from_slice(&body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_takes_at_most_four_requests() {
        let mut input = Vec::new();
        for i in 0..6 {
            if i > 0 {
                input.extend_from_slice(NEXT);
            }
            input.extend_from_slice(format!("r{i}").as_bytes());
        }
        let parts = split(&input);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], b"r0");
        assert!(parts[3].starts_with(b"r3"));
    }

    #[test]
    fn generation_is_deterministic_and_mostly_decodes() {
        let a: Vec<Vec<u8>> = (0..200).map(|i| generate(&mut Rng::new(i))).collect();
        let b: Vec<Vec<u8>> = (0..200).map(|i| generate(&mut Rng::new(i))).collect();
        assert_eq!(a, b);
        let decoded = a
            .iter()
            .filter(|x| {
                split(x)
                    .iter()
                    .all(|b| soap::parse_with(b, esxi_sim::vim::registry::declaring_type).is_ok())
            })
            .count();
        assert!(decoded > 60, "only {decoded} of 200 decode");
    }

    #[test]
    fn shapes_blank_the_variable_parts() {
        assert_eq!(
            shape("malformed XML near byte 123: 'x' at 4"),
            "malformed XML near byte N: …… at N"
        );
    }
}
