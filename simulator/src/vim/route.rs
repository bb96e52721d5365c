//! Where a call goes, decided once per call, where the session and the object are checked
//! ([`super::Vim::answer`]): answered here ([`Route::Local`]), or, on a vCenter, for one of its
//! hosts ([`Route::Forward`]: which host, and the object's id there), as vpxd hands a call on a
//! host's object to that host's hostd. The server forwards after releasing the vCenter's lock,
//! so calls for different hosts run side by side; in-process callers forward at once
//! ([`super::Vim::call`]).

use std::sync::Arc;

use super::vcenter::Estate;
use super::Ctx;
use crate::api::{Call, Fault, MoRef, Value};
use crate::clock::SimTime;

/// Where a call goes.
#[derive(Debug)]
pub enum Route {
    /// This endpoint's own object (a host's, or a vCenter's inventory and managers).
    Local,
    /// A vCenter's call on an object of one of its hosts.
    Forward(Forward),
}

/// A call a vCenter hands to one of its hosts: the host, the object's id on the host, and the
/// vCenter's time when it was let in.
#[derive(Debug)]
pub struct Forward {
    pub estate: Arc<Estate>,
    pub now: SimTime,
    pub host: usize,
    pub local: MoRef,
}

/// What a call came to: its answer, or a call to forward.
#[derive(Debug)]
pub enum Answer {
    Done(Result<Option<Value>, Fault>),
    Forward(Forward),
}

impl Forward {
    /// Makes the call on the host, as vpxd makes it to hostd (as `vpxuser`), and rewrites the
    /// references in the answer (or in its fault) into the vCenter's ids. A host that stopped answering is
    /// HostNotReachable; the object gone from the host since the call was let in (a task of a
    /// host reinstalled in between) is not found under the vCenter's id.
    pub fn call(self, req: &Call) -> Result<Option<Value>, Fault> {
        let Forward {
            estate,
            now,
            host,
            local,
        } = self;
        let mut h = estate.host(host, now);
        if !h.reachable() {
            return Err(super::vcenter::not_reachable(&estate, host));
        }
        let gone = super::not_found(&local).message;
        let mut forwarded = req.clone();
        forwarded.this = local;
        let mut ctx = Ctx {
            system: Some("vpxuser".into()),
            ..Ctx::default()
        };
        let mut result = h.call(&forwarded, &mut ctx);
        drop(h);
        match &mut result {
            Ok(Some(v)) => super::vcenter::to_vcenter_ids(host, v),
            Err(f) if f.ty == "ManagedObjectNotFound" && f.message == gone => {
                return Err(super::not_found(&req.this));
            }
            // A fault's references (MethodNotFound.receiver, ...) are the host's ids too.
            Err(f) => {
                for (_, v) in f.fields.iter_mut() {
                    super::vcenter::to_vcenter_ids(host, v);
                }
            }
            Ok(None) => {}
        }
        result
    }
}
