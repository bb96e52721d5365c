//! Real third-party test vectors, fetched at test time by `ci/vectors` (never committed: the
//! ESXi 7.0.2 sample holds a test host's private keys).
//!
//! - Our envelope reader decrypts the real `local.tgz.ve` with the real `encryption.info`
//!   (facts section 6.4), to the plaintext dissect.hypervisor's own tests pin (94,293 bytes,
//!   SHA-256 fe131620...), and that plaintext is the real 7.0.2 `local.tgz` of facts 6.2.
//! - Our writer, fed the sample's key material, IV and filler, reproduces its bytes exactly.
//!
//! Without the vectors the tests say so and pass, unless `ESXI_SIM_REQUIRE_VECTORS` is set (as
//! `ci/test` sets it): then a missing vector is a failure.

use std::path::PathBuf;

use esxi_sim::bundle::{read_tgz, Limits};
use esxi_sim::envelope::{self, CONFIG_AAD};
use esxi_sim::keystore::{KeyStore, Mode};

fn vector(name: &str) -> Option<Vec<u8>> {
    let dir = std::env::var_os("ESXI_SIM_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/vectors"));
    let path = dir.join("dissect.hypervisor-3.7/tests/data").join(name);
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) if std::env::var_os("ESXI_SIM_REQUIRE_VECTORS").is_some() => {
            panic!("{}: {e} (run ci/vectors)", path.display())
        }
        Err(_) => {
            eprintln!("skipped: {} is missing; run ci/vectors", path.display());
            None
        }
    }
}

fn sha256_hex(b: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[test]
fn the_real_702_envelope_opens_and_our_writer_reproduces_it() {
    let (Some(info), Some(ve)) = (vector("encryption.info"), vector("local.tgz.ve")) else {
        return;
    };
    let ks = KeyStore::parse(&info).expect("the real encryption.info parses");
    assert_eq!(ks.mode(), Mode::None);
    assert_eq!(
        ks.render().as_bytes(),
        &info[..],
        "rendered back byte for byte"
    );
    let key = ks.none_key().unwrap();
    let header = envelope::read_header(&ve).unwrap();
    assert_eq!(header.iv, *b"WMV_\0\0\0\0\0\0\0\0");
    assert_eq!(header.cipher, "AES-256-GCM");
    assert_eq!(
        header.key_info,
        esxi_sim::host::format_uuid(&ks.key_id).to_ascii_lowercase()
    );

    let (plain, random) = envelope::open_with_filler(&ve, &key, CONFIG_AAD).unwrap();
    assert_eq!(plain.len(), 94_293);
    assert_eq!(
        sha256_hex(&plain),
        "fe131620351b9fd5fc4aef219bf3211340f3742464c038e1695e7b6667f86952",
        "the plaintext dissect.hypervisor's tests pin"
    );
    assert_eq!(random.len(), envelope::filler_len(plain.len()));
    assert!(envelope::open(&ve, &[0u8; 32], CONFIG_AAD).is_err());
    assert!(envelope::open(&ve, &key, b"ESXConfiguratioN").is_err());

    let again = envelope::seal(&plain, &key, &ks.key_id, header.iv, &random, CONFIG_AAD);
    assert_eq!(again.len(), ve.len());
    assert!(
        again == ve,
        "our writer reproduces the real envelope byte for byte"
    );

    // The plaintext is facts 6.2's local.tgz: gzip with MTIME 0, XFL 2, OS 3; 36 members,
    // no etc/passwd, the ConfigStore inside.
    assert_eq!(&plain[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
    let members = read_tgz(&plain, &Limits::default(), "local.tgz").unwrap();
    let names: Vec<&str> = members.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(names.len(), 36, "{names:?}");
    assert!(!names.contains(&"etc/passwd"));
    assert!(names.contains(&"var/lib/vmware/configstore/backup/current-store-1"));
    assert!(names.contains(&"etc/vmware/encryption.info"));
    let seed = members
        .iter()
        .find(|m| m.path == "etc/random-seed")
        .unwrap();
    assert_eq!(seed.mode, 0o1600, "sticky, as facts 6.2 say");
}
