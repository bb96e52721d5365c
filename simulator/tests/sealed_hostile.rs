//! Hostile 7.0 U2+ bundles (issue 11): a real 8.0U3 bundle, NONE or TPM mode, with its sealed
//! state altered the ways an attacker or a damaged medium would: a changed byte anywhere in
//! `local.tgz.ve` (its header, its lengths, the ciphertext, the tag), a cut, an 8-byte length
//! field overwritten, another host's `encryption.info` (its key hash does not match), a changed
//! byte in `encryption.info`, and, sealed properly with the right key, a ConfigStore that is not
//! SQLite or is cut short.
//!
//! Whatever the change, a restore either refuses the bundle as InvalidBundle and changes nothing
//! (boot bank, RAM `/etc`, power), or takes it and the boot either comes up with the bundle's
//! configuration or stops with a reason (facts 6.5). Never a panic, never other contents.

use std::io::{Read, Write};
use std::sync::OnceLock;
use std::time::Duration;

use esxi_sim::bundle::{read_tgz, ConfigBundle, Limits, Manifest};
use esxi_sim::envelope::{self, CONFIG_AAD};
use esxi_sim::fleet::shared_none_material;
use esxi_sim::host::{HostError, PowerState};
use esxi_sim::keystore::{KeyStore, Mode};
use esxi_sim::{Host, HostConfig, Profile};
use proptest::prelude::*;
use proptest::sample::Index;

const HOSTS: &str = "127.0.0.1 localhost\n10.9.8.7 sealed-fixture\n";
const STORE: &str = "var/lib/vmware/configstore/backup/current-store-1";

fn host(seed: u64, mode: Mode) -> Host {
    let mut h = HostConfig::new(Profile::named("8.0U3").unwrap())
        .seed(seed)
        .encryption(mode)
        .none_material(shared_none_material(seed))
        .boot_time(Duration::ZERO)
        .build()
        .unwrap();
    h.enter_maintenance_mode().unwrap();
    h
}

/// A sealed bundle taken apart: its manifest, `local.tgz.ve`, `encryption.info`, and the key.
struct Sealed {
    source: Host,
    manifest: Manifest,
    ve: Vec<u8>,
    info: Vec<u8>,
    key: [u8; 32],
}

fn take_apart(mut source: Host) -> Sealed {
    source.write_file("/etc/hosts", HOSTS).unwrap();
    let bundle = source.backup_bundle().unwrap().bytes.to_vec();
    let l = Limits::default();
    let parsed = ConfigBundle::parse(&bundle, &l).unwrap();
    let members = read_tgz(&parsed.state_tgz, &l, "state.tgz").unwrap();
    let get = |n: &str| members.iter().find(|m| m.path == n).unwrap().data.clone();
    let (ve, info) = (get("local.tgz.ve"), get("encryption.info"));
    let decoded = parsed
        .decode(
            &l,
            esxi_sim::state::KeyContext {
                tpm: source.tpm(),
                recovery: None,
            },
        )
        .unwrap();
    Sealed {
        manifest: parsed.manifest,
        key: decoded.key.unwrap(),
        source,
        ve,
        info,
    }
}

fn fixtures() -> &'static [Sealed; 2] {
    static F: OnceLock<[Sealed; 2]> = OnceLock::new();
    F.get_or_init(|| {
        [
            take_apart(host(11, Mode::None)),
            take_apart(host(12, Mode::Tpm)),
        ]
    })
}

/// Another host's key store (same mode, other material and key).
fn foreign_info(mode: Mode) -> &'static Vec<u8> {
    static F: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    &F.get_or_init(|| [Mode::None, Mode::Tpm].map(|m| take_apart(host(99, m)).info))[mode as usize]
}

fn tgz(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&b.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

fn bundle(s: &Sealed, ve: &[u8], info: &[u8]) -> Vec<u8> {
    let state = tgz(&[("local.tgz.ve", ve), ("encryption.info", info)]);
    ConfigBundle {
        manifest: s.manifest.clone(),
        state_tgz: state.into(),
    }
    .to_bytes(1_700_000_000)
}

/// local.tgz.ve made again with the right key around a local.tgz whose ConfigStore is `store`.
fn resealed_with_store(s: &Sealed, store: &[u8]) -> Vec<u8> {
    let plain = envelope::open(&s.ve, &s.key, CONFIG_AAD).unwrap();
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(&plain[..])
        .read_to_end(&mut tar_bytes)
        .unwrap();
    let mut a = tar::Archive::new(&tar_bytes[..]);
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        members.push((path, data));
    }
    let at = members.iter().position(|(p, _)| p == STORE).unwrap();
    members[at].1 = store.to_vec();
    let refs: Vec<(&str, &[u8])> = members
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let local = tgz(&refs);
    let h = envelope::read_header(&s.ve).unwrap();
    let id = uuid_bytes(&h.key_info);
    envelope::seal(
        &local,
        &s.key,
        &id,
        h.iv,
        &vec![0; envelope::filler_len(local.len())],
        CONFIG_AAD,
    )
}

fn uuid_bytes(text: &str) -> [u8; 16] {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let mut b = [0u8; 16];
    for (i, out) in b.iter_mut().enumerate() {
        *out = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap();
    }
    b
}

/// Restores `bytes` on a copy of the source host: refused and unchanged, or taken and booted
/// to the bundle's configuration or to a stop with a reason. Returns what happened.
fn restore(s: &Sealed, bytes: Vec<u8>) -> Result<Outcome, TestCaseError> {
    let mut h = s.source.clone();
    let before = (h.bootbank().cloned(), h.etc().clone(), h.power_state());
    h.upload_bundle(bytes).unwrap();
    match h.restore(true) {
        Err(HostError::InvalidBundle(e)) => {
            let after = (h.bootbank().cloned(), h.etc().clone(), h.power_state());
            prop_assert!(before == after, "a refused restore changed the host ({e})");
            Ok(Outcome::Refused)
        }
        Err(other) => Err(TestCaseError::fail(format!("refused as {other:?}"))),
        Ok(()) => match h.boot_halted() {
            Some(why) => {
                prop_assert!(!why.is_empty());
                prop_assert_eq!(h.power_state(), PowerState::Off);
                Ok(Outcome::Halted)
            }
            None => {
                prop_assert_eq!(h.power_state(), PowerState::On);
                let got = h.read_file("etc/hosts").unwrap().map(|b| b.to_vec());
                prop_assert_eq!(
                    got,
                    Some(HOSTS.as_bytes().to_vec()),
                    "a bundle that was taken booted other contents"
                );
                Ok(Outcome::Booted)
            }
        },
    }
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Refused,
    Halted,
    Booted,
}

#[test]
fn the_unaltered_bundles_restore() {
    for s in fixtures() {
        let b = bundle(s, &s.ve, &s.info);
        assert_eq!(restore(s, b).unwrap(), Outcome::Booted);
    }
}

#[test]
fn a_store_that_is_not_sqlite_is_refused_even_sealed_with_the_right_key() {
    let s = &fixtures()[0];
    let db = esxi_sim::configstore::ConfigStore::new()
        .to_sqlite()
        .to_vec();
    for (what, store) in [
        ("random bytes", b"not a database at all".repeat(100)),
        ("a cut database", db[..db.len() / 2].to_vec()),
        ("an empty file", Vec::new()),
    ] {
        let ve = resealed_with_store(s, &store);
        let r = restore(s, bundle(s, &ve, &s.info)).unwrap();
        assert_eq!(r, Outcome::Refused, "{what}");
    }
    // A real (empty) store sealed the same way is taken: the refusals are the store's doing.
    let ve = resealed_with_store(s, &db);
    let r = restore(s, bundle(s, &ve, &s.info)).unwrap();
    assert_ne!(r, Outcome::Refused);
}

#[test]
fn another_host_s_key_store_is_refused_or_stops_the_boot() {
    for (s, mode) in fixtures().iter().zip([Mode::None, Mode::Tpm]) {
        let b = bundle(s, &s.ve, foreign_info(mode));
        let r = restore(s, b).unwrap();
        // NONE: the derived key is not the envelope's (its key hash says so): damaged. TPM: the
        // other host's seal does not open here: the boot stops.
        let want = match mode {
            Mode::None => Outcome::Refused,
            Mode::Tpm => Outcome::Halted,
        };
        assert_eq!(r, want, "{mode}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_changed_envelope_byte_is_refused_stops_the_boot_or_changes_nothing(
        tpm in any::<bool>(),
        at in any::<Index>(),
        flip in 1u8..=255,
    ) {
        let s = &fixtures()[tpm as usize];
        let mut ve = s.ve.clone();
        let i = at.index(ve.len());
        ve[i] ^= flip;
        restore(s, bundle(s, &ve, &s.info))?;
    }

    #[test]
    fn a_cut_envelope_is_refused(tpm in any::<bool>(), at in any::<Index>()) {
        let s = &fixtures()[tpm as usize];
        let cut = at.index(s.ve.len());
        let r = restore(s, bundle(s, &s.ve[..cut], &s.info))?;
        prop_assert_eq!(r, Outcome::Refused);
    }

    #[test]
    fn an_overwritten_length_or_header_field_never_panics(
        tpm in any::<bool>(),
        at in 0usize..4096 - 8,
        value in prop_oneof![Just(u64::MAX), Just(0u64), any::<u64>(), 1u64..1_000_000],
    ) {
        let s = &fixtures()[tpm as usize];
        let mut ve = s.ve.clone();
        ve[at..at + 8].copy_from_slice(&value.to_le_bytes());
        restore(s, bundle(s, &ve, &s.info))?;
    }

    #[test]
    fn a_changed_key_store_byte_is_refused_stops_the_boot_or_changes_nothing(
        tpm in any::<bool>(),
        at in any::<Index>(),
        byte in any::<u8>(),
    ) {
        let s = &fixtures()[tpm as usize];
        let mut info = s.info.clone();
        let i = at.index(info.len());
        info[i] = byte;
        restore(s, bundle(s, &s.ve, &info))?;
    }
}

#[test]
fn key_stores_parse_for_the_fixtures() {
    for (s, mode) in fixtures().iter().zip([Mode::None, Mode::Tpm]) {
        assert_eq!(KeyStore::parse(&s.info).unwrap().mode(), mode);
    }
}
