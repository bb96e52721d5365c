//! Secrets: what lets a client in without credentials. A session cookie, a `/downloads/<uuid>/`
//! URL (Ansible and Salt fetch bundles with no credentials: the uuid is the capability, facts
//! section 3) and the control API's bearer token all come from the operating system's CSPRNG.
//!
//! They never come from the model's seeded [`crate::rng::Rng`]: `--seed` reproduces a host's
//! *behaviour* (identities, schedules, fault choices), and a seed is small and printed in logs,
//! so a secret drawn from it could be computed by anyone who has seen one host of the run.
//! TLS keys are made by rcgen over ring's system random source, for the same reason.

use std::fmt::Write as _;

/// `n` bytes from the operating system's CSPRNG (`getrandom(2)` on Linux).
///
/// Panics only if the OS has no random source at all, where no secret could be made safely.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).expect("the operating system's random source is unavailable");
    b
}

/// `len` lowercase hex digits from the CSPRNG (a session cookie is 40: facts section 3).
pub fn hex(len: usize) -> String {
    let mut s = String::with_capacity(len + 1);
    while s.len() < len {
        for b in bytes::<16>() {
            let _ = write!(s, "{b:02x}");
        }
    }
    s.truncate(len);
    s
}

/// A VMware-style uuid (`52xxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`), as hostd makes for downloads
/// and session keys, with 120 random bits.
pub fn vmware_uuid() -> String {
    let h = hex(30);
    format!(
        "52{}-{}-{}-{}-{}",
        &h[0..6],
        &h[6..10],
        &h[10..14],
        &h[14..18],
        &h[18..30]
    )
}

/// A bearer token for the control API: 32 random bytes as 64 hex digits.
pub fn token() -> String {
    hex(64)
}

/// Whether two secrets are equal, in time that depends only on their lengths: a client that
/// times the answers learns nothing about how much of its guess was right.
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_their_shapes_and_differ_every_time() {
        let a = hex(40);
        assert_eq!(a.len(), 40);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(a, hex(40), "two draws of 160 bits never meet");
        let u = vmware_uuid();
        let shape: Vec<usize> = u.split('-').map(str::len).collect();
        assert_eq!(shape, [8, 4, 4, 4, 12]);
        assert!(u.starts_with("52"));
        assert_ne!(u, vmware_uuid());
        assert_eq!(token().len(), 64);
        assert_eq!(hex(0), "");
        assert_eq!(hex(33).len(), 33);
    }

    #[test]
    fn equal_compares_whole_values() {
        assert!(equal(b"s3cret", b"s3cret"));
        assert!(!equal(b"s3cret", b"s3creT"));
        assert!(!equal(b"s3cret", b"s3cret "));
        assert!(!equal(b"", b"x"));
        assert!(equal(b"", b""));
    }
}
