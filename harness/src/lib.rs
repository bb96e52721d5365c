//! esxi-harness: backup/restore scenarios against the embedded simulator or a real host.
//!
//! - [`client`]: a vSphere SOAP client over real TLS, shared by the runner and the tests.
//!
//! The scenario runner, scenario files and reports arrive with issue 5.

pub mod client;
