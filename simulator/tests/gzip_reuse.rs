//! The archive writers reuse one deflate state per thread. What they write must stay byte for
//! byte what flate2's `GzEncoder` wrote when each archive had a fresh state (same level, header
//! and trailer), whatever was compressed before on the same thread, and the reader must take it.

use std::io::Write;

use esxi_sim::bundle::{
    gzip_bytes, gzip_member, read_state_tgz, read_tgz, write_local_tgz, write_state_tgz, write_tgz,
    Limits,
};
use esxi_sim::host::Node;
use esxi_sim::rng::Rng;
use flate2::{Compression, GzBuilder};

/// The reference: a fresh `GzEncoder` per member, as `bundle.rs` used to write them.
fn reference_gzip(data: &[u8], mtime: u32) -> Vec<u8> {
    let mut gz = GzBuilder::new()
        .mtime(mtime)
        .operating_system(3)
        .write(Vec::new(), Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// An archive member as `write_tgz` takes it: path, contents, mode, mtime.
type Member<'a> = (&'a str, &'a [u8], u32, u64);

/// The reference tar+gzip writer: the tar crate streaming into a fresh `GzEncoder`.
fn reference_tgz(members: &[Member], gzip_mtime: u64) -> Vec<u8> {
    reference_tgz_at(members, gzip_mtime, Compression::default())
}

/// The same at a given level (state.tgz's wrapper is written at level 1).
fn reference_tgz_at(members: &[Member], gzip_mtime: u64, level: Compression) -> Vec<u8> {
    let gz = GzBuilder::new()
        .mtime(gzip_mtime.min(u32::MAX as u64) as u32)
        .operating_system(3)
        .write(Vec::new(), level);
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Complete);
    for (path, data, mode, mtime) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(*mtime);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_username("root").unwrap();
        h.set_groupname("root").unwrap();
        tar.append_data(&mut h, path, *data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn random(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    Rng::new(seed).fill(&mut v);
    v
}

/// Inputs of every shape: empty, one byte, text, long runs, incompressible data larger than the
/// deflate window and than the writer's first output reservation, and a mix.
fn inputs() -> Vec<Vec<u8>> {
    let text = "127.0.0.1\tlocalhost.localdomain localhost\n".repeat(40);
    let mut mixed = random(3, 50_000);
    mixed.extend(std::iter::repeat_n(b'a', 70_000));
    mixed.extend(random(4, 9_000));
    vec![
        Vec::new(),
        b"x".to_vec(),
        text.into_bytes(),
        vec![0u8; 300_000],
        random(1, 200_000),
        mixed,
    ]
}

#[test]
fn gzip_member_is_byte_identical_to_a_fresh_gz_encoder() {
    let inputs = inputs();
    // Twice over, in both orders: a reused state must not carry anything from one to the next.
    let order: Vec<usize> = (0..inputs.len()).chain((0..inputs.len()).rev()).collect();
    for (round, &i) in order.iter().enumerate() {
        let data = &inputs[i];
        for mtime in [0u32, 1_700_000_000, u32::MAX] {
            let ours = gzip_member(data, mtime);
            assert_eq!(
                ours,
                reference_gzip(data, mtime),
                "input {i} ({} bytes), mtime {mtime}, round {round}",
                data.len()
            );
        }
    }
    assert_eq!(gzip_bytes(b"quiet\n"), reference_gzip(b"quiet\n", 0));
}

#[test]
fn tgz_is_byte_identical_to_tar_over_a_fresh_gz_encoder_and_reads_back() {
    let inputs = inputs();
    let long_name = format!("etc/{}/deep.conf", "d".repeat(120)); // a GNU long-name entry
    let sets: Vec<Vec<Member>> = vec![
        vec![],
        vec![("etc/hosts", &inputs[2][..], 0o644, 1_700_000_000)],
        vec![
            ("etc/empty", &inputs[0][..], 0o600, 0),
            ("etc/random.bin", &inputs[4][..], 0o400, 5),
            ("etc/zeros", &inputs[3][..], 0o644, 6),
            (&long_name, &inputs[5][..], 0o644, 7),
        ],
    ];
    for round in 0..2 {
        for (k, members) in sets.iter().enumerate() {
            let ours = write_tgz(members.iter().copied(), 1_800_000_000);
            assert_eq!(
                ours,
                reference_tgz(members, 1_800_000_000),
                "set {k}, round {round}"
            );
            let back = read_tgz(&ours, &Limits::default(), "test.tgz").unwrap();
            assert_eq!(back.len(), members.len(), "set {k}");
            for (m, (path, data, mode, mtime)) in back.iter().zip(members) {
                assert_eq!(
                    (&m.path[..], &m.data[..], m.mode, m.mtime),
                    (*path, *data, *mode, *mtime)
                );
            }
        }
    }
}

#[test]
fn state_tgz_of_a_save_matches_the_reference_and_reads_back() {
    let node = |s: &str, mode| Node {
        data: s.as_bytes().into(),
        mode,
        mtime: 1_704_067_200,
        sticky: true,
    };
    let hosts = node("127.0.0.1 localhost\n10.0.0.1 nas\n", 0o644);
    let shadow = node("root:$6$salt$hash:19000:0:99999:7:::\n", 0o600);
    let files = vec![
        ("etc/hosts".to_string(), &hosts),
        ("etc/shadow".to_string(), &shadow),
    ];
    let local = write_local_tgz(&files, 1_704_067_260);
    let state = write_state_tgz(&local, 1_704_067_260);
    let ref_local = reference_tgz(
        &[
            ("etc/hosts", &hosts.data[..], 0o644, 1_704_067_200),
            ("etc/shadow", &shadow.data[..], 0o600, 1_704_067_200),
        ],
        1_704_067_260,
    );
    assert_eq!(local, ref_local);
    let ref_state = reference_tgz_at(
        &[("local.tgz", &ref_local[..], 0o644, 1_704_067_260)],
        1_704_067_260,
        Compression::fast(),
    );
    assert_eq!(state, ref_state);
    assert_eq!(state[8], 4, "XFL says fastest");
    let back = read_state_tgz(&state, &Limits::default()).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back["etc/hosts"], hosts);
    assert_eq!(back["etc/shadow"], shadow);
}

#[test]
fn threads_each_get_their_own_state() {
    let inputs = inputs();
    let expected: Vec<Vec<u8>> = inputs.iter().map(|d| reference_gzip(d, 9)).collect();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (inputs, expected) = (&inputs, &expected);
            s.spawn(move || {
                for round in 0..3 {
                    for k in 0..inputs.len() {
                        let i = (k + t + round) % inputs.len();
                        assert_eq!(gzip_member(&inputs[i], 9), expected[i], "thread {t}");
                    }
                }
            });
        }
    });
}
