//! # esxi-fuzz: seeded fuzzing of what esxi-sim reads from strangers
//!
//! cargo-fuzz and AFL need a nightly compiler; CI has stable only. So this is the stable
//! substitute: structure-aware generation (each target builds inputs from the grammar of what
//! it reads: SOAP envelopes and VI/JSON bodies with vSphere calls, configuration bundles of real hosts, control API
//! requests) followed by byte-level mutation, all drawn from the simulator's own seeded
//! [`esxi_sim::rng::Rng`]. There is no coverage feedback; the outcome classes each target reports
//! (fault types, bundle error kinds, HTTP statuses) stand in for it when the regression corpus
//! is chosen.
//!
//! - [`soap`]: `soap::parse_with` (what `POST /sdk` decodes) and the real dispatch of a
//!   standalone host's and a vCenter's `Vim`, with hostile parameters.
//! - [`bundle`]: `ConfigBundle::parse`, `state::decode` and `Host::restore` on mutated real
//!   bundles of four persistence eras, and the harness's `inspect`.
//! - [`control`]: the control API's routes, in process, through `fleet::control::answer`.
//! - [`vijson`]: `vijson::params` (what VI/JSON's `POST` decodes) and the same dispatch as
//!   [`soap`], every answer written as VI/JSON writes it.
//!
//! [`driver`] runs a campaign: input `i` of seed `s` is made from `Rng::fork(s, "<target>/<i>")`
//! alone and runs against fresh state, so any failure reproduces from `(s, i)` or from the
//! input file the driver writes. Each input runs under `catch_unwind`; a panic, a broken
//! invariant, a slow input or one that allocates past its bound is a finding, recorded and
//! written out, never fatal. [`meter`] is the per-thread heap meter behind the bound.

pub mod bundle;
pub mod control;
pub mod driver;
pub mod meter;
pub mod mutate;
pub mod soap;
pub mod vijson;

pub use driver::{Campaign, Finding, Report, Target};
