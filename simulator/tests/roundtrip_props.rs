//! Round trips of the 7.0+ persistence formats over random contents (issue 11):
//! - the DataTransformEnvelope (facts 6.4): what is sealed opens to the same bytes, with the real
//!   sizes; a changed byte anywhere never opens to different bytes; a cut never opens;
//! - the key store (`encryption.info`) of both modes renders and parses back;
//! - the ConfigStore (facts 6.3): rows written as SQLite read back as the same rows, through
//!   keys and JSON values with quotes, slashes, NULs and non-ASCII text.

use esxi_sim::clock::SimTime;
use esxi_sim::configstore::{Column, ConfigStore, Key};
use esxi_sim::envelope::{filler_len, open, read_header, seal, sealed_len, CONFIG_AAD};
use esxi_sim::keystore::{KeyStore, Material, RecoveryKey};
use proptest::prelude::*;

fn sealed(plain: &[u8], key: [u8; 32], id: [u8; 16], iv: [u8; 12], fill: u8) -> Vec<u8> {
    seal(
        plain,
        &key,
        &id,
        iv,
        &vec![fill; filler_len(plain.len())],
        CONFIG_AAD,
    )
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{1,12}",
        "[a-zA-Z0-9 ./:'\"{}\\\\-]{0,24}",
        "\\PC{0,8}",
        Just(String::new()),
    ]
}

fn json_value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        4 => (text(), any::<i64>(), any::<bool>()).prop_map(|(s, n, b)| Some(
            serde_json::json!({ "name": s, "n": n, "on": b, "list": [s, n] }).to_string()
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn an_envelope_opens_to_what_was_sealed(
        plain in prop::collection::vec(any::<u8>(), 0..20_000),
        key in any::<[u8; 32]>(),
        id in any::<[u8; 16]>(),
        iv in any::<[u8; 12]>(),
        fill in any::<u8>(),
    ) {
        let env = sealed(&plain, key, id, iv, fill);
        prop_assert_eq!(env.len(), sealed_len(plain.len()));
        let h = read_header(&env).unwrap();
        prop_assert_eq!(h.iv, iv);
        prop_assert_eq!(open(&env, &key, CONFIG_AAD).unwrap(), plain);
        let mut other = key;
        other[0] ^= 1;
        prop_assert!(open(&env, &other, CONFIG_AAD).is_err());
    }

    #[test]
    fn a_changed_byte_never_opens_to_other_bytes(
        plain in prop::collection::vec(any::<u8>(), 0..9_000),
        key in any::<[u8; 32]>(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let env = sealed(&plain, key, [5; 16], [6; 12], 0);
        let mut bad = env.clone();
        let i = at.index(bad.len());
        bad[i] ^= flip;
        // Bytes nothing reads (header padding) may change without harm; none may change what
        // comes out.
        if let Ok(p) = open(&bad, &key, CONFIG_AAD) {
            prop_assert_eq!(p, plain, "byte {} changed what opened", i);
        }
    }

    #[test]
    fn a_cut_envelope_never_opens(
        plain in prop::collection::vec(any::<u8>(), 0..9_000),
        at in any::<prop::sample::Index>(),
    ) {
        let env = sealed(&plain, [3; 32], [5; 16], [6; 12], 0);
        let cut = at.index(env.len());
        prop_assert!(open(&env[..cut], &[3; 32], CONFIG_AAD).is_err());
    }

    #[test]
    fn key_stores_render_and_parse_back(
        key_id in any::<[u8; 16]>(),
        d1 in any::<[u8; 16]>(),
        d2 in any::<[u8; 16]>(),
        sealed_key in prop::collection::vec(any::<u8>(), 1..80),
        recovery_id in any::<[u8; 16]>(),
        tpm in any::<bool>(),
        draws in prop::collection::vec(any::<u64>(), 16),
    ) {
        let rk = RecoveryKey::from_draws(recovery_id, draws);
        let material = if tpm {
            Material::Tpm {
                sealed: sealed_key,
                recovery_id,
                recovery_data: rk.wrap(&[9; 32], [1; 12]),
            }
        } else {
            Material::None { data1: d1, data2: d2 }
        };
        let ks = KeyStore { key_id, material };
        let back = KeyStore::parse(ks.render().as_bytes()).unwrap();
        prop_assert_eq!(&back, &ks);
        if let Material::Tpm { recovery_data, .. } = &back.material {
            prop_assert_eq!(RecoveryKey::unwrap(&rk.digits, recovery_data), Some([9; 32]));
            prop_assert_eq!(RecoveryKey::parse_key(&rk.key_text()), Ok(rk.digits.clone()));
        }
    }

    #[test]
    fn a_configstore_reads_back_row_for_row(
        rows in prop::collection::vec(
            ((text(), text(), text(), text()), json_value(), json_value(), 0u64..2_000_000_000),
            0..24,
        ),
    ) {
        let mut store = ConfigStore::new();
        for ((c, g, n, i), user, vital, secs) in &rows {
            let key = Key::new(c, g, n, i);
            let at = SimTime(secs * 1000);
            store.set(key.clone(), Column::User, user.as_deref(), "1.0.0", at);
            store.set(key, Column::Vital, vital.as_deref(), "1.0.0", at);
        }
        let db = store.to_sqlite();
        prop_assert_eq!(&db[..16], b"SQLite format 3\0");
        let back = ConfigStore::from_sqlite(&db).unwrap();
        let rows_of = |s: &ConfigStore| s.iter().map(|(k, r)| (k.clone(), r.clone())).collect::<Vec<_>>();
        prop_assert_eq!(rows_of(&back), rows_of(&store));
        prop_assert_eq!(back.lines(), store.lines());
    }
}
