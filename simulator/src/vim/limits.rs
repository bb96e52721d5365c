//! What one API endpoint (a host's hostd, or the vCenter) keeps for its clients, and how much of
//! it (issue 12): without caps, 300 never-continued paging tokens held 757 MB and 20,000 filters
//! made one CheckForUpdates answer 95 MB. docs/limits.md lists every cap, its default and why.
//!
//! The policy per kind of state:
//! - sessions: idle ones past the timeout are swept at each Login; at the cap, the least recently
//!   used session ends (its filters, views and tokens with it) and the new one is made, so a
//!   client that leaks sessions hurts itself, not the next tool [inferred: hostd's session limit
//!   and what it does at it are not in the facts];
//! - paging tokens (RetrievePropertiesEx): the oldest of a session's tokens is dropped, and a
//!   later Continue of it gets the InvalidArgument the API reference names for a token that is
//!   not current; results held by all tokens are capped too;
//! - filters, views and created collectors: CreateFilter / CreateContainerView /
//!   CreatePropertyCollector beyond the cap fail with a
//!   SystemError naming the limit [inferred fault] (dropping one would silently stop a waiter);
//! - download bundles: kept until tmpwatch's 3 days (facts section 1), but at most so many and
//!   so many bytes per host, the oldest removed first (a real host's ramdisk is finite too).

use crate::api::Fault;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Live sessions per endpoint.
    pub sessions: usize,
    /// Open RetrievePropertiesEx tokens per session.
    pub tokens_per_session: usize,
    /// ObjectContents held for all open tokens of an endpoint.
    pub token_objects: usize,
    /// PropertyFilters per session.
    pub filters_per_session: usize,
    /// Views (ContainerView, ListView) per session.
    pub views_per_session: usize,
    /// PropertyCollectors a session created (CreatePropertyCollector).
    pub collectors_per_session: usize,
    /// Download bundles kept per host.
    pub downloads: usize,
    /// Bytes of download bundles kept per host.
    pub download_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            sessions: 500,
            tokens_per_session: 16,
            token_objects: 20_000,
            filters_per_session: 1_000,
            views_per_session: 1_000,
            collectors_per_session: 100,
            downloads: 16,
            download_bytes: 64 << 20,
        }
    }
}

/// The fault for a create beyond a per-session cap.
pub fn too_many(what: &str, limit: usize) -> Fault {
    let reason = format!("too many {what} in this session (limit {limit})");
    Fault::new(
        "SystemError",
        format!("A general system error occurred: {reason}"),
    )
    .with("reason", reason)
}
