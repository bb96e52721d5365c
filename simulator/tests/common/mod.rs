//! Helpers shared by the integration tests of this crate.

use std::time::Duration;

use esxi_sim::{Host, HostConfig, Profile};

/// A host of `profile` from `seed` that boots instantly, so tests need not advance past boots.
pub fn host(profile: &str, seed: u64) -> Host {
    HostConfig::new(Profile::named(profile).unwrap())
        .seed(seed)
        .boot_time(Duration::ZERO)
        .build()
        .unwrap()
}
