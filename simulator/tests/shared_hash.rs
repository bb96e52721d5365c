//! A fleet hashes each distinct root password once and shares the hash with every host
//! (`HostConfig::root_hash`). A shared hash must open the account with the right password only,
//! and a hash that does not verify the password must never be installed.

use std::sync::Arc;
use std::time::Duration;

use esxi_sim::host::accounts::{hash_with_salt, shadow_field};
use esxi_sim::host::{shared_root_hash, HostConfig, HostError};
use esxi_sim::{Host, Profile};

fn config(seed: u64) -> HostConfig {
    HostConfig::new(Profile::named("8.0U3").unwrap())
        .seed(seed)
        .boot_time(Duration::ZERO)
}

fn root_field(h: &Host) -> String {
    let shadow = h.read_text("/etc/shadow").unwrap().unwrap();
    shadow_field(&shadow, "root").unwrap().to_string()
}

#[test]
fn hosts_built_with_a_shared_hash_accept_the_right_password_only() {
    let hash = shared_root_hash("Fleet-pw.1", 77);
    assert!(hash.starts_with("$6$"), "{hash}");
    assert_eq!(
        hash,
        shared_root_hash("Fleet-pw.1", 77),
        "same seed, same hash"
    );
    assert_ne!(
        hash,
        shared_root_hash("Fleet-pw.1", 78),
        "another seed, another salt"
    );
    let hosts: Vec<Host> = (0..3)
        .map(|seed| {
            config(seed)
                .root_password("Fleet-pw.1")
                .root_hash(hash.clone())
                .build()
                .unwrap()
        })
        .collect();
    for h in &hosts {
        assert_eq!(
            root_field(h),
            *hash,
            "the shared hash is what /etc/shadow holds"
        );
        assert!(h.check_password("root", "Fleet-pw.1"));
        assert!(!h.check_password("root", "fleet-pw.1"));
        assert!(!h.check_password("root", ""));
        assert!(!h.check_password("root", "VMware1!"));
    }
    // And it was saved: a crash and a boot from state.tgz keep it.
    let mut h = hosts.into_iter().next().unwrap();
    h.crash().unwrap();
    h.power_on().unwrap();
    h.wait_until_running();
    assert_eq!(root_field(&h), *hash);
    assert!(h.check_password("root", "Fleet-pw.1"));
}

#[test]
fn a_hash_that_does_not_verify_the_password_is_refused_at_build() {
    let other = shared_root_hash("other-password", 5); // known to verify "other-password" only
    let unknown: Arc<str> = hash_with_salt("not-it", "abcdefghijklmnop").into();
    let right = shared_root_hash("VMware1!", 5);
    for (hash, why) in [
        (other.clone(), "a verified hash of another password"),
        (unknown, "a hash of another password never seen"),
        (Arc::from("$1$abc$defghijklmnop"), "MD5 crypt"),
        (Arc::from("*"), "a locked field"),
        (Arc::from(""), "the empty field for a non-empty password"),
        (
            Arc::from(format!("{right}:0:0").as_str()),
            "extra shadow fields",
        ),
        (
            Arc::from(format!("{right}\nevil::0:0:::").as_str()),
            "a second line",
        ),
    ] {
        let res = config(1).root_password("VMware1!").root_hash(hash).build();
        assert!(
            matches!(res, Err(HostError::InvalidArgument(_))),
            "{why}: {res:?}"
        );
    }
    // The right one is accepted, and a hash verified for one password does not carry over to
    // another password through the verification cache.
    config(1)
        .root_password("VMware1!")
        .root_hash(right.clone())
        .build()
        .unwrap();
    let res = config(2).root_password("VMware1?").root_hash(right).build();
    assert!(matches!(res, Err(HostError::InvalidArgument(_))), "{res:?}");
}

#[test]
fn a_hash_from_elsewhere_is_checked_then_installed() {
    // `openssl passwd -6 -salt abcdefghijklmnop 'Hello world!'`: not made by shared_root_hash.
    let hash = "$6$abcdefghijklmnop$QHIFY5kc1kz.IbvL93uE1dch/by2Y7vCuMbwuEBxMP1NEAB5NvpcgGSpdKQkNYQUZ54mM9gicC5bYr2OQXmkh.";
    let h = config(3)
        .root_password("Hello world!")
        .root_hash(hash)
        .build()
        .unwrap();
    assert_eq!(root_field(&h), hash);
    assert!(h.check_password("root", "Hello world!"));
    assert!(!h.check_password("root", "Hello world"));
}

#[test]
fn an_empty_password_shares_the_empty_field() {
    let hash = shared_root_hash("", 9);
    assert_eq!(&*hash, "");
    let h = config(4).root_password("").root_hash(hash).build().unwrap();
    assert_eq!(root_field(&h), "");
    assert!(h.check_password("root", ""));
    assert!(!h.check_password("root", "x"));
}

#[test]
fn a_stateless_host_reapplies_the_shared_hash_at_every_boot() {
    let hash = shared_root_hash("pxe-Boot1", 11);
    let mut h = config(6)
        .stateless(true)
        .root_password("pxe-Boot1")
        .root_hash(hash.clone())
        .build()
        .unwrap();
    assert_eq!(root_field(&h), *hash);
    h.set_password("root", "changed-1").unwrap();
    h.reboot(esxi_sim::host::RebootKind::Forced, "test")
        .unwrap();
    h.wait_until_running();
    assert_eq!(
        root_field(&h),
        *hash,
        "Auto Deploy re-applies the install identity"
    );
    assert!(h.check_password("root", "pxe-Boot1"));
    assert!(!h.check_password("root", "changed-1"));
}
