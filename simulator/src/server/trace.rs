//! The request trace: every request an endpoint answers, one structured record each, like
//! vcsim's `-trace` but as data: which endpoint, what (a SOAP method on an object, a bundle
//! download or upload, a port-80 redirect), who (session user, client address), when (virtual
//! time), and how it ended (HTTP status, fault type and message, the fault rule that fired,
//! bytes moved). Written as JSON lines (`serve --trace FILE`) and kept in memory for the control
//! API (`GET /v1/trace`); `esxi-harness tool` judges a backup tool by it.
//!
//! Observational: it sits in the server layer and the model never reads it. Off unless asked
//! for; bounded in memory ([`CAPACITY`], the oldest dropped first, `seq` showing the gap).

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;

/// Records kept in memory for the control API.
pub const CAPACITY: usize = 100_000;

/// One request, as the trace tells it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Record {
    /// Position in the trace (ascending from 1; gaps: dropped at capacity).
    pub seq: u64,
    /// Virtual time, RFC 3339 with milliseconds.
    pub at: String,
    /// The endpoint: a fleet host's address, `vcenter`, or `host` (a single `serve` host).
    pub endpoint: String,
    /// The host the request concerns, by fleet index: the endpoint's own, or on a vCenter the
    /// host whose object was called (`firmwareSystem-12` → 0). None for the vCenter's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<usize>,
    /// `soap`, `download`, `upload`, `redirect` (port 80), or `http` (anything else).
    pub kind: &'static str,
    /// The SOAP method, or the HTTP method of the rest.
    pub method: String,
    /// The SOAP call's object, `Type:id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    pub path: String,
    /// The session's user (for Login, the name it tried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The client's address and port.
    pub client: String,
    /// The HTTP status; 0 when the connection was dropped without an answer.
    pub status: u16,
    /// `ok`, `fault` (a SOAP fault), `error` (an HTTP error status), `dropped`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The fault rule that fired for it (its id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<u64>,
    /// Body bytes sent (downloads) or received (uploads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Where a redirect sends the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Wall-clock milliseconds the request took (not part of the model; varies run to run).
    pub ms: u64,
}

/// What the call layer knows of a call (SOAP or VI/JSON), handed to the recorder on the response.
#[derive(Clone, Debug, Default)]
pub struct CallNote {
    pub method: String,
    pub object: Option<String>,
    pub host: Option<usize>,
    pub user: Option<String>,
    pub fault: Option<(String, String)>,
}

/// What an upload adds: its size, and the user of its Basic credentials.
#[derive(Clone, Debug, Default)]
pub struct TransferNote {
    pub bytes: Option<u64>,
    pub user: Option<String>,
}

/// The fault rule that fired for a request.
#[derive(Clone, Copy, Debug)]
pub struct RuleNote(pub u64);

/// Which records to list.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only records with a larger `seq`.
    pub after: Option<u64>,
    pub host: Option<usize>,
    pub endpoint: Option<String>,
    pub method: Option<String>,
    pub limit: Option<usize>,
}

impl Filter {
    pub fn accepts(&self, r: &Record) -> bool {
        self.after.is_none_or(|a| r.seq > a)
            && self.host.is_none_or(|h| r.host == Some(h))
            && self.endpoint.as_ref().is_none_or(|e| &r.endpoint == e)
            && self.method.as_ref().is_none_or(|m| &r.method == m)
    }
}

/// A fleet's (or a host's) trace: shared by all its endpoints.
pub struct Trace {
    inner: Mutex<Inner>,
}

struct Inner {
    records: VecDeque<Record>,
    capacity: usize,
    next_seq: u64,
    file: Option<std::io::BufWriter<std::fs::File>>,
    /// The file could not be written: said once, then memory only.
    file_failed: bool,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Trace")
    }
}

impl Trace {
    /// A trace kept in memory, and written to `file` (created or truncated) as JSON lines.
    pub fn new(file: Option<&std::path::Path>) -> Result<Trace, String> {
        let file = match file {
            Some(p) => Some(std::io::BufWriter::new(
                std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
            )),
            None => None,
        };
        Ok(Trace::with_capacity(file, CAPACITY))
    }

    fn with_capacity(file: Option<std::io::BufWriter<std::fs::File>>, capacity: usize) -> Trace {
        Trace {
            inner: Mutex::new(Inner {
                records: VecDeque::new(),
                capacity: capacity.max(1),
                next_seq: 1,
                file,
                file_failed: false,
            }),
        }
    }

    /// Numbers and keeps a record, and writes it out (each line flushed: a reader of the file
    /// sees a request as soon as it is answered).
    pub fn record(&self, mut r: Record) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        r.seq = g.next_seq;
        g.next_seq += 1;
        if let Some(f) = g.file.as_mut() {
            let line = serde_json::to_string(&r).unwrap_or_default();
            if writeln!(f, "{line}").and_then(|_| f.flush()).is_err() {
                g.file = None;
                g.file_failed = true;
                tracing::warn!("the request trace file cannot be written; keeping it in memory");
            }
        }
        if g.records.len() == g.capacity {
            g.records.pop_front();
        }
        g.records.push_back(r);
    }

    /// The records the filter accepts, oldest first, at most `limit`.
    pub fn list(&self, f: &Filter) -> Vec<Record> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.records
            .iter()
            .filter(|r| f.accepts(r))
            .take(f.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }

    /// The `seq` of the newest record (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_seq
            - 1
    }
}

/// `kind` of a request by its path.
pub fn kind_of(method: &str, path: &str) -> &'static str {
    match (method, path) {
        ("POST", p) if super::sdk::is_soap_path(p) => "soap",
        (_, p) if p.starts_with("/sdk/vim25/") => "vi-json",
        (_, p) if p.starts_with("/downloads/") => "download",
        (_, "/tmp/configBundle.tgz") => "upload",
        _ => "http",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(method: &str, host: Option<usize>) -> Record {
        Record {
            endpoint: "vcenter".into(),
            method: method.into(),
            host,
            kind: "soap",
            outcome: "ok",
            ..Record::default()
        }
    }

    #[test]
    fn numbers_filters_and_drops_the_oldest_at_capacity() {
        let t = Trace::with_capacity(None, 3);
        for (m, h) in [
            ("Login", None),
            ("A", Some(0)),
            ("B", Some(1)),
            ("C", Some(0)),
        ] {
            t.record(rec(m, h));
        }
        let all = t.list(&Filter::default());
        assert_eq!(
            all.iter()
                .map(|r| (r.seq, r.method.as_str()))
                .collect::<Vec<_>>(),
            [(2, "A"), (3, "B"), (4, "C")],
            "Login was dropped; seq shows the gap"
        );
        assert_eq!(t.last_seq(), 4);
        let f = Filter {
            host: Some(0),
            ..Filter::default()
        };
        assert_eq!(t.list(&f).len(), 2);
        let f = Filter {
            after: Some(3),
            ..Filter::default()
        };
        assert_eq!(t.list(&f)[0].method, "C");
        let f = Filter {
            limit: Some(1),
            method: Some("B".into()),
            ..Filter::default()
        };
        assert_eq!(t.list(&f)[0].seq, 3);
    }

    #[test]
    fn writes_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.jsonl");
        let t = Trace::new(Some(&path)).unwrap();
        t.record(Record {
            fault: Some("InvalidLogin".into()),
            outcome: "fault",
            ..rec("Login", None)
        });
        t.record(rec("Logout", None));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["fault"], "InvalidLogin");
        assert_eq!(lines[1]["seq"], 2);
        assert!(
            lines[1].get("fault").is_none(),
            "absent fields are left out"
        );
        assert!(Trace::new(Some(std::path::Path::new("/no/such/dir/t.jsonl"))).is_err());
    }
}
