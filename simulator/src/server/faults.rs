//! Fault rules: what the control API injects into the wire, seeded so a failing run repeats.
//!
//! A rule matches requests by endpoint (a host's name or index, or `vcenter`), SOAP method (or
//! `Download` / `Upload` for the transfer endpoints; `A|B` for either), managed object type and
//! id. Of the matching requests it skips the first `skip_count`, then fires with `probability`
//! (drawn from the rule's own generator, seeded from the fleet seed and the rule id) at most
//! `max_count` times. Firing waits `delay` (wall time) and then does the rule's action:
//!
//! - `fault`: a SOAP fault of any type, with fields, as vcsim's fault injection;
//! - `delay`: nothing more (a slow host or slow flash);
//! - `reset`: the response starts and the connection drops halfway through it;
//! - `status`: a bare HTTP status (a 503 from the reverse proxy, a 500 from the transfer);
//! - `timeout`: no answer at all until the client gives up (held up to 10 minutes).
//!
//! The model never sees any of this: a rule acts before the request reaches the host or after
//! its answer is made.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::api::{Fault, Value};
use crate::rng::Rng;

/// What a rule does when it fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    Fault {
        /// The fault type: `HostCommunication`, `InvalidState`, `NotAuthenticated`, ...
        fault: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// The fault's own fields (`{"text": "..."}`, `{"hostBuildNumber": 123}`).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        fields: BTreeMap<String, serde_json::Value>,
    },
    Delay,
    Reset,
    Status {
        status: u16,
    },
    Timeout,
}

/// A rule as the control API takes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A host's index or vCenter id (the control API also takes its name and stores the index),
    /// or `vcenter` for the vCenter endpoint only; any endpoint if absent. A host rule matches
    /// calls on the host's own endpoint and calls about its objects through the vCenter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    #[serde(default = "one")]
    pub probability: f64,
    /// Wall-clock delay before the action (`250ms`, `3s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u64>,
    #[serde(default)]
    pub skip_count: u64,
    pub action: Action,
}

fn one() -> f64 {
    1.0
}

/// A rule with its counters.
#[derive(Clone, Debug, Serialize)]
pub struct Rule {
    pub id: u64,
    #[serde(flatten)]
    pub spec: RuleSpec,
    /// Requests that matched so far.
    pub matched: u64,
    /// Times it fired.
    pub fired: u64,
    #[serde(skip)]
    delay: Duration,
    #[serde(skip)]
    rng: Rng,
}

/// Where a request is going, as rules match it.
pub struct Target<'a> {
    /// `vcenter`, or a host's name (its address).
    pub endpoint: &'a str,
    /// The host's index in the fleet (None for the vCenter).
    pub index: Option<usize>,
    pub method: &'a str,
    pub object_type: &'a str,
    pub object_id: &'a str,
}

/// A rule that fired for a request: what to do.
#[derive(Clone, Debug)]
pub struct Hit {
    pub rule: u64,
    pub delay: Duration,
    pub action: Action,
}

/// One record of a rule firing, for the event log.
#[derive(Clone, Debug)]
pub struct Fired {
    pub rule: u64,
    pub endpoint: String,
    pub index: Option<usize>,
    pub method: String,
    pub action: String,
}

/// The rules of a fleet (or of a single host).
pub struct FaultSet {
    seed: u64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    rules: Vec<Rule>,
    fired: Vec<Fired>,
}

const MAX_RULES: usize = 1024;
const MAX_FIRED_BACKLOG: usize = 10_000;

impl FaultSet {
    pub fn new(seed: u64) -> FaultSet {
        FaultSet {
            seed,
            inner: Mutex::new(Inner {
                next_id: 1,
                ..Inner::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a rule after checking it; returns it with its id.
    pub fn add(&self, spec: RuleSpec) -> Result<Rule, String> {
        let delay = validate(&spec)?;
        let mut g = self.lock();
        if g.rules.len() >= MAX_RULES {
            return Err(format!("at most {MAX_RULES} rules at once"));
        }
        let id = g.next_id;
        g.next_id += 1;
        let rule = Rule {
            id,
            spec,
            matched: 0,
            fired: 0,
            delay,
            rng: Rng::fork(
                self.seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                "fault-rule",
            ),
        };
        g.rules.push(rule.clone());
        Ok(rule)
    }

    pub fn list(&self) -> Vec<Rule> {
        self.lock().rules.clone()
    }

    pub fn remove(&self, id: u64) -> bool {
        let mut g = self.lock();
        let before = g.rules.len();
        g.rules.retain(|r| r.id != id);
        g.rules.len() != before
    }

    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Whether no rule is set.
    pub fn is_empty(&self) -> bool {
        self.lock().rules.is_empty()
    }

    /// The first rule that fires for this request, counting matches on the way.
    pub fn check(&self, t: &Target<'_>) -> Option<Hit> {
        let mut g = self.lock();
        if g.rules.is_empty() {
            return None;
        }
        let mut hit = None;
        for r in g.rules.iter_mut() {
            if !matches(&r.spec, t) {
                continue;
            }
            r.matched += 1;
            if r.matched <= r.spec.skip_count {
                continue;
            }
            if r.spec.max_count.is_some_and(|m| r.fired >= m) {
                continue;
            }
            // One draw per eligible match, so the sequence depends only on the seed and the
            // order of requests.
            let draw = (r.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            if draw >= r.spec.probability {
                continue;
            }
            r.fired += 1;
            hit = Some(Hit {
                rule: r.id,
                delay: r.delay,
                action: r.spec.action.clone(),
            });
            break;
        }
        if let Some(h) = &hit {
            if g.fired.len() < MAX_FIRED_BACKLOG {
                g.fired.push(Fired {
                    rule: h.rule,
                    endpoint: t.endpoint.to_string(),
                    index: t.index,
                    method: t.method.to_string(),
                    action: action_name(&h.action).to_string(),
                });
            }
        }
        hit
    }

    /// The firings since the last call (for the fleet's event log).
    pub fn drain_fired(&self) -> Vec<Fired> {
        std::mem::take(&mut self.lock().fired)
    }
}

pub fn action_name(a: &Action) -> &'static str {
    match a {
        Action::Fault { .. } => "fault",
        Action::Delay => "delay",
        Action::Reset => "reset",
        Action::Status { .. } => "status",
        Action::Timeout => "timeout",
    }
}

fn matches(s: &RuleSpec, t: &Target<'_>) -> bool {
    let host_ok = match s.host.as_deref() {
        None => true,
        Some(h) => {
            h == t.endpoint
                || t.index.is_some_and(|i| {
                    h.parse::<usize>().ok() == Some(i)
                        || crate::vim::vcenter::ids::host_index(h, "host-") == Some(i)
                })
        }
    };
    let method_ok = s
        .method
        .as_deref()
        .is_none_or(|m| m.split('|').any(|m| m.trim() == t.method));
    host_ok
        && method_ok
        && s.object_type.as_deref().is_none_or(|o| o == t.object_type)
        && s.object_id.as_deref().is_none_or(|o| o == t.object_id)
}

fn validate(s: &RuleSpec) -> Result<Duration, String> {
    if !(0.0..=1.0).contains(&s.probability) {
        return Err(format!(
            "probability must be between 0 and 1, not {}",
            s.probability
        ));
    }
    let delay = match &s.delay {
        Some(d) => crate::clock::parse_duration(d)?,
        None => Duration::ZERO,
    };
    if delay > Duration::from_secs(600) {
        return Err("delay must be at most 10m".into());
    }
    match &s.action {
        Action::Fault {
            fault,
            message,
            fields,
        } => {
            if !is_name(fault) {
                return Err(format!("fault type {fault:?} is not a vSphere type name"));
            }
            if message.as_ref().is_some_and(|m| m.len() > 4096) {
                return Err("message longer than 4096 bytes".into());
            }
            if fields.len() > 32 {
                return Err("at most 32 fault fields".into());
            }
            for (k, v) in fields {
                if !is_name(k) {
                    return Err(format!("fault field {k:?} is not a property name"));
                }
                to_value(v).map_err(|e| format!("fault field {k}: {e}"))?;
            }
        }
        Action::Status { status } => {
            if !(400..=599).contains(status) {
                return Err(format!("status must be 4xx or 5xx, not {status}"));
            }
        }
        Action::Delay | Action::Reset | Action::Timeout => {}
    }
    Ok(delay)
}

/// A vSphere type or property name: an ASCII identifier of at most 64 characters.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn to_value(v: &serde_json::Value) -> Result<Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        J::String(s) => Value::Str(s.clone()),
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => match i32::try_from(i) {
                Ok(small) => Value::Int(small),
                Err(_) => Value::Long(i),
            },
            None => return Err("numbers must be integers".into()),
        },
        J::Array(items) => {
            let strings = items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or("arrays must hold strings")?;
            Value::strings(strings)
        }
        _ => return Err("must be a string, integer, boolean or array of strings".into()),
    })
}

/// The fault a `fault` action answers with (each wire writes it its own way).
pub fn injected_fault(a: &Action) -> Option<Fault> {
    let Action::Fault {
        fault,
        message,
        fields,
    } = a
    else {
        return None;
    };
    let msg = message
        .clone()
        .unwrap_or_else(|| format!("Injected fault {fault}"));
    let mut f = Fault::new(intern(fault), msg);
    for (k, v) in fields {
        if let Ok(v) = to_value(v) {
            f = f.with(intern(k), v);
        }
    }
    Some(f)
}

/// Fault type and field names live as `&'static str` in [`Fault`]; names from rules are
/// interned once each (bounded by the distinct names validated above).
fn intern(s: &str) -> &'static str {
    use std::collections::HashSet;
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut g = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    let set = g.get_or_insert_with(HashSet::new);
    if let Some(n) = set.get(s) {
        return n;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    set.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> RuleSpec {
        serde_json::from_str(json).unwrap()
    }
    fn target(method: &str) -> Target<'static> {
        Target {
            endpoint: "127.1.0.1",
            index: Some(0),
            method: Box::leak(method.to_string().into_boxed_str()),
            object_type: "HostFirmwareSystem",
            object_id: "ha-firmwareSystem",
        }
    }

    #[test]
    fn skip_and_max_count_bound_the_firings() {
        let f = FaultSet::new(1);
        f.add(spec(
            r#"{"method":"SyncFirmwareConfiguration","skip_count":2,"max_count":3,
                "action":{"type":"fault","fault":"HostCommunication"}}"#,
        ))
        .unwrap();
        let fired: Vec<bool> = (0..8)
            .map(|_| f.check(&target("SyncFirmwareConfiguration")).is_some())
            .collect();
        assert_eq!(fired, [false, false, true, true, true, false, false, false]);
        assert!(f.check(&target("BackupFirmwareConfiguration")).is_none());
        let r = &f.list()[0];
        assert_eq!((r.matched, r.fired), (8, 3));
    }

    #[test]
    fn probability_is_seeded_and_roughly_right() {
        let run = |seed| {
            let f = FaultSet::new(seed);
            f.add(spec(r#"{"probability":0.25,"action":{"type":"reset"}}"#))
                .unwrap();
            (0..2000)
                .map(|_| f.check(&target("X")).is_some())
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7), "same seed, same firings");
        assert_ne!(a, run(8));
        let n = a.iter().filter(|x| **x).count();
        assert!((400..600).contains(&n), "{n} of 2000 at p=0.25");
    }

    #[test]
    fn hosts_match_by_name_index_or_vcenter_id() {
        for h in ["127.1.0.1", "0", "host-12"] {
            let f = FaultSet::new(0);
            f.add(spec(&format!(
                r#"{{"host":"{h}","action":{{"type":"delay"}}}}"#
            )))
            .unwrap();
            assert!(f.check(&target("X")).is_some(), "{h}");
        }
        // Another host, and ids vpxd never writes (the one id grammar: vcenter_ids).
        for h in ["host-13", "host-012", "host-+12"] {
            let f = FaultSet::new(0);
            f.add(spec(&format!(
                r#"{{"host":"{h}","action":{{"type":"delay"}}}}"#
            )))
            .unwrap();
            assert!(f.check(&target("X")).is_none(), "{h}");
        }
    }

    #[test]
    fn bad_rules_are_refused_with_reasons() {
        let f = FaultSet::new(0);
        for (json, why) in [
            (
                r#"{"probability":1.5,"action":{"type":"reset"}}"#,
                "probability",
            ),
            (r#"{"delay":"soon","action":{"type":"reset"}}"#, "soon"),
            (r#"{"delay":"1h","action":{"type":"reset"}}"#, "10m"),
            (r#"{"action":{"type":"status","status":200}}"#, "4xx"),
            (r#"{"action":{"type":"fault","fault":"<x/>"}}"#, "type name"),
            (
                r#"{"action":{"type":"fault","fault":"X","fields":{"a":{"b":1}}}}"#,
                "field a",
            ),
        ] {
            let e = f.add(spec(json)).unwrap_err();
            assert!(e.contains(why), "{json}: {e}");
        }
        assert!(f.is_empty());
    }

    #[test]
    fn injected_faults_carry_their_fields() {
        let a: Action = serde_json::from_str(
            r#"{"type":"fault","fault":"PlatformConfigFault","message":"disk","fields":{"text":"no space","n":5}}"#,
        )
        .unwrap();
        let f = injected_fault(&a).unwrap();
        let xml = f.to_xml();
        assert!(xml.contains("PlatformConfigFaultFault"), "{xml}");
        assert!(xml.contains("<text>no space</text>"), "{xml}");
        assert!(xml.contains("<faultstring>disk</faultstring>"), "{xml}");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        const METHODS: [&str; 3] = ["Login", "BackupFirmwareConfiguration", "Download"];

        fn rule() -> impl Strategy<Value = RuleSpec> {
            (
                proptest::option::of(0usize..3),
                proptest::option::of(0usize..3),
                0.0f64..=1.0,
                proptest::option::of(0u64..5),
                0u64..5,
            )
                .prop_map(|(host, method, probability, max_count, skip_count)| {
                    RuleSpec {
                        host: host.map(|h| h.to_string()),
                        method: method.map(|m| METHODS[m].to_string()),
                        object_type: None,
                        object_id: None,
                        probability,
                        delay: None,
                        max_count,
                        skip_count,
                        action: Action::Reset,
                    }
                })
        }

        proptest! {
            /// Whatever the rules and requests: a rule never fires more than max_count times or
            /// before skip_count matches, counts every match of its filter, and the same seed
            /// and requests give the same firings.
            #[test]
            fn counters_and_seeding_hold(
                rules in proptest::collection::vec(rule(), 1..5),
                requests in proptest::collection::vec((0usize..3, 0usize..3), 0..60),
                seed in any::<u64>(),
            ) {
                let run = || {
                    let f = FaultSet::new(seed);
                    for r in &rules {
                        f.add(r.clone()).unwrap();
                    }
                    let fired: Vec<Option<u64>> = requests
                        .iter()
                        .map(|(h, m)| {
                            let name = format!("127.1.0.{}", h + 1);
                            f.check(&Target {
                                endpoint: &name,
                                index: Some(*h),
                                method: METHODS[*m],
                                object_type: "",
                                object_id: "",
                            })
                            .map(|hit| hit.rule)
                        })
                        .collect();
                    (fired, f.list())
                };
                let (fired, list) = run();
                prop_assert_eq!(&fired, &run().0);
                for r in &list {
                    let n = fired.iter().filter(|f| **f == Some(r.id)).count() as u64;
                    prop_assert_eq!(n, r.fired);
                    prop_assert!(r.spec.max_count.is_none_or(|m| r.fired <= m));
                    prop_assert!(r.fired <= r.matched.saturating_sub(r.spec.skip_count));
                    if r.id == 1 {
                        // The first rule sees every request its filter matches.
                        let matching = requests
                            .iter()
                            .filter(|(h, m)| {
                                r.spec.host.as_deref().is_none_or(|x| x == h.to_string())
                                    && r.spec.method.as_deref().is_none_or(|x| x == METHODS[*m])
                            })
                            .count() as u64;
                        prop_assert_eq!(r.matched, matching);
                    }
                }
            }
        }
    }
}
