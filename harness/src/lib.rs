//! esxi-harness: backup/restore scenarios against the embedded simulator or a real host.
//!
//! - [`scenario`]: scenario files (`scenarios/*.toml`), parsed and validated; errors name file
//!   and line.
//! - [`target`]: the embedded simulator (an in-process esxi-sim server per run) or a real host.
//! - [`runner`]: runs one scenario × profile, step by step, through the API (portable steps)
//!   or the model (simulator-only steps).
//! - [`report`]: terminal lines, JUnit XML, JSON.
//! - [`inspect`], [`diff`]: what is in a bundle, and how two bundles differ, in every era:
//!   [`layers`] reads a bundle layer by layer (decrypting 7.0 U2+ state when it can),
//!   [`store_diff`] compares two ConfigStores row by row.
//! - [`matrix`]: the cross-build restore matrix, with the encryption mode.
//! - [`client`]: a vSphere SOAP client over real TLS, shared by the runner and the tests.
//! - [`tool`]: `esxi-harness tool TOOL.toml`, a user's own backup tool judged on an estate by
//!   named contracts, from the request trace and the files it leaves.

pub mod client;
pub mod diff;
pub mod inspect;
pub mod layers;
pub mod matrix;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod sim;
pub mod store_diff;
pub mod target;
pub mod tool;
