//! DiagnosticManager (`ha-diagnosticmgr` on a host, `DiagMgr` on a vCenter): the log files a
//! client can page through, as `govc logs.ls` and `govc logs` do (issue 13: they failed on a
//! ServiceContent without one).
//!
//! A host offers `hostd`, `vmkernel` and `vpxa` (a vCenter adds `vpxd:vpxd.log`): the keys and
//! files of a real host [inferred from govc's documentation]. Their lines are told from the host
//! model, nothing stored twice: hostd logs each event as real hostd does (`Event N : message`,
//! `sub=Vimsvc.ha-eventmgr`), vmkernel the boots, vpxa nothing. Line formats per era
//! [inferred]: `In(166) Hostd[...]:` from 7.0, `info hostd[...]` before. Like hostd's in-memory
//! log they start at the last boot.
//!
//! BrowseDiagnosticLog's paging, as the API reference describes it: `start` is a line number
//! (1-based [inferred]; none: the top of the log; past the end: nothing, with `lineEnd` the
//! file's last line, which govc's `Seek` asks for with start = MaxInt32 and lines = 0), `lines`
//! how many (none: to the end), at most 1000 a call on a host and 500 on a vCenter (govmomi's
//! `DiagnosticLog.Copy`: "VC max == 500, ESX max == 1000").

use super::event_manager::{self, ApiEvent};
use super::{bad_param, method_not_found, not_found, required, vcenter, Ctx, Vim};
use crate::api::call::{parse_int, parse_moref};
use crate::api::{Call, Data, Fault, MoRef, Value};
use crate::clock::SimTime;

/// The most lines one call returns: a host's, a vCenter's.
const MAX_LINES: (i64, i64) = (1000, 500);

/// (key, file name, creator) of the logs a host offers.
const HOST_LOGS: &[(&str, &str, &str)] = &[
    ("hostd", "/var/log/hostd.log", "hostd"),
    ("vmkernel", "/var/log/vmkernel.log", "vmkernel"),
    ("vpxa", "/var/log/vpxa.log", "vpxa"),
];
const VPXD_LOG: (&str, &str, &str) = ("vpxd:vpxd.log", "/var/log/vmware/vpxd/vpxd.log", "vpxd");

fn descriptor(key: &str, file: &str, creator: &str) -> Value {
    Data::new("DiagnosticManagerLogDescriptor")
        .with("key", key)
        .with("fileName", file)
        .with("creator", creator)
        .with("format", "plain")
        .with("mimeType", "text/plain")
        .with(
            "info",
            Data::new("Description")
                .with("label", file)
                .with("summary", format!("{creator} log")),
        )
        .into()
}

fn stamp(t: SimTime) -> String {
    t.to_rfc3339_millis()
}

fn message(e: &ApiEvent) -> String {
    match e.data.get("fullFormattedMessage") {
        Some(Value::Str(s)) => s.clone(),
        _ => String::new(),
    }
}

/// A host's log `key`, line by line (None: no such log).
fn host_log(vim: &Vim, key: &str) -> Option<Vec<String>> {
    let modern = vim.host.profile().era != crate::profile::Era::Plain;
    let lines = match key {
        "hostd" => {
            let p = vim.host.profile();
            let line = |at: SimTime, origin: &str, text: &str| match modern {
                true => format!(
                    "{} In(166) Hostd[2099]: [Originator@6876 sub={origin}] {text}",
                    stamp(at)
                ),
                false => format!(
                    "{} info hostd[2099] [Originator@6876 sub={origin}] {text}",
                    stamp(at)
                ),
            };
            // Its first line: hostd starting after the boot [inferred wording].
            let started = vim.host.last_boot().map(|t| {
                line(
                    t,
                    "Default",
                    &format!("Hostd {} build-{} starting", p.version, p.build),
                )
            });
            started
                .into_iter()
                .chain(event_manager::all_events(vim).iter().map(|e| {
                    line(
                        e.at,
                        "Vimsvc.ha-eventmgr",
                        &format!("Event {} : {}", e.key, message(e)),
                    )
                }))
                .collect()
        }
        "vmkernel" => vim
            .host
            .last_boot()
            .map(|t| vec![format!("{} cpu0:2097152)Boot Successful", stamp(t))])
            .unwrap_or_default(),
        "vpxa" => Vec::new(),
        _ => return None,
    };
    Some(lines)
}

/// The vCenter's own log: every event it has, as vpxd logs them [inferred].
fn vpxd_log(vim: &Vim) -> Vec<String> {
    event_manager::all_events(vim)
        .iter()
        .map(|e| {
            format!(
                "{} info vpxd[04242] [Originator@6876 sub=vpxLro] Event {} : {}",
                stamp(e.at),
                e.key,
                message(e)
            )
        })
        .collect()
}

/// The host a `host` parameter names: None for the endpoint itself (a host names itself too).
fn host_param(vim: &Vim, req: &Call, session: Option<&str>) -> Result<Option<MoRef>, Fault> {
    let Some(el) = req.param("host") else {
        return Ok(None);
    };
    let h = parse_moref(el).map_err(|e| bad_param(req, e))?;
    if h.ty != "HostSystem" || !vim.exists(&h, session) {
        return Err(not_found(&h));
    }
    Ok(if vim.estate.is_some() { Some(h) } else { None })
}

/// Runs `f` on the Vim that owns the host's logs (the host itself, through a vCenter).
fn on_host<R>(vim: &Vim, host: Option<&MoRef>, f: impl FnOnce(&Vim) -> R) -> R {
    match (host, &vim.estate) {
        (Some(h), Some(est)) => {
            let i = vcenter::host_index_of(&h.id).unwrap_or(0);
            est.read_host(vim, i, f)
        }
        _ => f(vim),
    }
}

pub fn call(vim: &mut Vim, ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    let session = ctx.session.clone();
    let session = session.as_deref();
    match req.method.as_str() {
        "QueryDescriptions" => {
            let host = host_param(vim, req, session)?;
            let mut out: Vec<Value> = Vec::new();
            if vim.estate.is_some() && host.is_none() {
                out.push(descriptor(VPXD_LOG.0, VPXD_LOG.1, VPXD_LOG.2));
            } else {
                out.extend(HOST_LOGS.iter().map(|(k, f, c)| descriptor(k, f, c)));
            }
            Ok(Some(Value::Array("DiagnosticManagerLogDescriptor", out)))
        }
        "BrowseDiagnosticLog" => {
            let host = host_param(vim, req, session)?;
            let key = required(req, "key")?.text.trim().to_string();
            let int = |name: &str| -> Result<Option<i64>, Fault> {
                req.param(name)
                    .map(|e| parse_int(e).map_err(|e| bad_param(req, e)))
                    .transpose()
            };
            let max = match vim.estate {
                Some(_) => MAX_LINES.1,
                None => MAX_LINES.0,
            };
            let (start, count) = (int("start")?, int("lines")?.unwrap_or(max).clamp(0, max));
            let lines = match (&vim.estate, &host) {
                (Some(_), None) if key == VPXD_LOG.0 => Some(vpxd_log(vim)),
                (Some(_), None) => None,
                _ => on_host(vim, host.as_ref(), |v| host_log(v, &key)),
            };
            let Some(lines) = lines else {
                return Err(Fault::invalid_argument(
                    format!("A specified parameter was not correct: key ({key})"),
                    Some("key"),
                ));
            };
            let total = lines.len() as i64;
            // Past the end: none. A start before
            // line 1 reads from line 1 but keeps its number, so lineEnd = start + lines read - 1:
            // govmomi's Copy loop (`start += len(lines); stop when start >= lineEnd`) then ends
            // after a Seek further back than the log is long [inferred: real logs are longer
            // than any tail a client asks for].
            let first = start.unwrap_or(1).min(total + 1);
            let text: Vec<String> = lines
                .into_iter()
                .skip((first.max(1) - 1) as usize)
                .take(count as usize)
                .collect();
            let last = first - 1 + text.len() as i64;
            let clamp = |n: i64| n.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
            Ok(Some(
                Data::new("DiagnosticManagerLogHeader")
                    .with("lineStart", clamp(first))
                    .with("lineEnd", clamp(last))
                    .with("lineText", Value::strings(text))
                    .into(),
            ))
        }
        _ => Err(method_not_found(req)),
    }
}
