//! Local accounts in `/etc/passwd` and `/etc/shadow`, the files HostLocalAccountManager edits.
//!
//! Pure text transformations; the host applies them through the RAM file system, so a password
//! change marks `/etc/shadow` like any edit and persists (or is lost) by the same rules. Hashes are
//! real SHA-512 crypt (`$6$`), which `openssl passwd -6` and Python's `crypt` can verify.

use std::sync::{Arc, Mutex};

use sha_crypt::{PasswordHasher, PasswordVerifier, ShaCrypt};

use crate::rng::Rng;

const SALT_ALPHABET: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountError {
    UserNotFound(String),
    AlreadyExists(String),
    InvalidName(String),
    /// Why: a NUL or newline, or longer than [`MAX_PASSWORD_BYTES`].
    InvalidPassword(&'static str),
}

impl std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountError::UserNotFound(u) => {
                write!(f, "The user or group named '{u}' does not exist.")
            }
            AccountError::AlreadyExists(u) => write!(
                f,
                "The specified key, name, or identifier '{u}' already exists."
            ),
            AccountError::InvalidName(u) => write!(f, "invalid user name {u:?}"),
            AccountError::InvalidPassword(why) => write!(f, "{why}"),
        }
    }
}
impl std::error::Error for AccountError {}

/// `$6$<salt>$<hash>` with a salt drawn from the host's seeded generator.
pub fn hash_password(password: &str, rng: &mut Rng) -> String {
    let salt = rng.string(SALT_ALPHABET, 16);
    hash_with_salt(password, &salt)
}

/// `$6$<salt>$<hash>` for a 16-character crypt-alphabet salt, in glibc's form (no `rounds=` for
/// the default 5000 rounds).
pub fn hash_with_salt(password: &str, salt: &str) -> String {
    use base64ct::{Base64ShaCrypt, Encoding};
    // sha-crypt 0.6 takes raw salt bytes and crypt-base64-encodes them; 16 salt characters are
    // exactly 12 raw bytes, so decoding first gives back the very salt string we chose.
    let raw = Base64ShaCrypt::decode_vec(salt).expect("16 crypt-alphabet characters decode");
    let h = ShaCrypt::default()
        .hash_password_with_salt(password.as_bytes(), &raw)
        .map(|h| h.to_string())
        .expect("SHA-512 crypt with a valid salt cannot fail");
    h.replacen("$rounds=5000$", "$", 1)
}

/// The longest password accepted, to set or to log in with. ESXi's quality rule allows at most
/// 40 characters (facts 7; the rule itself is not modelled); the cap is far above that and
/// bounds the hash: SHA-512 crypt's time grows with the square of the password's length (a
/// 20 KB password took 5 s, an 8 MB SOAP body's would take days), found by the fuzzer (issue 12).
pub const MAX_PASSWORD_BYTES: usize = 256;

/// Whether `password` opens the shadow hash field. An empty field opens with an empty password
/// (a reset host: facts section 2); `*`, `!` and unknown schemes never open, nor does a password
/// longer than [`MAX_PASSWORD_BYTES`] (none could have been set), which is refused unhashed.
pub fn verify(password: &str, field: &str) -> bool {
    if field.is_empty() {
        return password.is_empty();
    }
    if !field.starts_with("$6$") && !field.starts_with("$5$") || password.len() > MAX_PASSWORD_BYTES
    {
        return false;
    }
    ShaCrypt::default()
        .verify_password(password.as_bytes(), field)
        .is_ok()
}

/// Whether [`verify`] of this field costs no hashing (an empty, locked or unknown field).
pub fn verify_is_cheap(field: &str) -> bool {
    !(field.starts_with("$6$") || field.starts_with("$5$"))
}

/// A root password hash for many hosts at once: `$6$` with a salt drawn from `seed` (a fleet's
/// seed), or the empty field for an empty password. Hashing costs ~1 ms (5,000 rounds), so a
/// fleet computes one per distinct password and passes it to every host with
/// [`HostConfig::root_hash`](super::HostConfig::root_hash). The pair is remembered as verified,
/// so hosts built with it skip their own check.
pub fn shared_root_hash(password: &str, seed: u64) -> Arc<str> {
    let hash: Arc<str> = if password.is_empty() {
        Arc::from("")
    } else {
        Arc::from(hash_password(
            password,
            &mut Rng::fork(seed, "shared root hash"),
        ))
    };
    remember_verified(&hash, password);
    hash
}

/// (hash, password) pairs already known to verify, newest last. A fleet has a handful of
/// distinct passwords; the cap keeps a long-running process from growing the list.
static VERIFIED: Mutex<Vec<(Arc<str>, Box<str>)>> = Mutex::new(Vec::new());
const VERIFIED_CAP: usize = 32;

fn remember_verified(hash: &Arc<str>, password: &str) {
    let mut v = VERIFIED.lock().unwrap_or_else(|e| e.into_inner());
    if v.iter().any(|(h, p)| **h == **hash && **p == *password) {
        return;
    }
    if v.len() >= VERIFIED_CAP {
        v.remove(0);
    }
    v.push((hash.clone(), password.into()));
}

/// Checks a precomputed shadow hash for `password` before a host trusts it: a `$6$` hash that
/// verifies it (the empty field only for the empty password), with nothing that could break the
/// shadow line. The 5,000-round check runs once per distinct (hash, password) pair per process.
pub fn check_precomputed_hash(password: &str, hash: &str) -> Result<(), String> {
    if hash.contains([':', '\n', '\r', '\0']) {
        return Err("root_hash: not a shadow hash field (':' or a line break in it)".into());
    }
    if hash.is_empty() {
        return if password.is_empty() {
            Ok(())
        } else {
            Err("root_hash is empty but the root password is not".into())
        };
    }
    if !hash.starts_with("$6$") {
        return Err("root_hash: not a SHA-512 crypt ($6$) hash".into());
    }
    {
        let v = VERIFIED.lock().unwrap_or_else(|e| e.into_inner());
        if v.iter().any(|(h, p)| **h == *hash && **p == *password) {
            return Ok(());
        }
    }
    if !verify(password, hash) {
        return Err("root_hash does not verify the root password".into());
    }
    remember_verified(&Arc::from(hash), password);
    Ok(())
}

fn check_name(user: &str) -> Result<(), AccountError> {
    let ok = !user.is_empty()
        && user.len() <= 32
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && !user.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(AccountError::InvalidName(user.to_string()))
    }
}

fn check_password(pw: &str) -> Result<(), AccountError> {
    if pw.contains(['\0', '\n', '\r']) {
        Err(AccountError::InvalidPassword(
            "passwords may not contain NUL or newline characters",
        ))
    } else if pw.len() > MAX_PASSWORD_BYTES {
        Err(AccountError::InvalidPassword(
            "passwords may not be longer than 256 bytes",
        ))
    } else {
        Ok(())
    }
}

/// The shadow hash field of `user`, if the user has a shadow line.
pub fn shadow_field<'a>(shadow: &'a str, user: &str) -> Option<&'a str> {
    shadow.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next() == Some(user)).then(|| f.next().unwrap_or(""))
    })
}

pub fn user_exists(passwd: &str, user: &str) -> bool {
    passwd.lines().any(|l| l.split(':').next() == Some(user))
}

/// Sets `user`'s hash (and the last-change day) in shadow text.
pub fn set_hash(shadow: &str, user: &str, hash: &str, days: u64) -> Result<String, AccountError> {
    let mut found = false;
    let mut out = String::with_capacity(shadow.len() + hash.len());
    for line in shadow.lines() {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.first() == Some(&user) {
            found = true;
            while fields.len() < 9 {
                fields.push("");
            }
            let day = days.to_string();
            fields[1] = hash;
            fields[2] = &day;
            out.push_str(&fields.join(":"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if found {
        Ok(out)
    } else {
        Err(AccountError::UserNotFound(user.to_string()))
    }
}

/// Adds a user to passwd and shadow text with the next free uid from 1000; returns (passwd,
/// shadow).
pub fn create(
    passwd: &str,
    shadow: &str,
    user: &str,
    description: &str,
    hash: &str,
    days: u64,
) -> Result<(String, String), AccountError> {
    let uid = passwd
        .lines()
        .filter_map(|l| l.split(':').nth(2)?.parse::<u32>().ok())
        .filter(|u| (1000..65534).contains(u))
        .max()
        .map_or(1000, |m| m + 1);
    create_with_uid(passwd, shadow, user, description, hash, uid, days)
}

/// Adds a user with a given uid (from the ConfigStore's `vital_value`); returns (passwd,
/// shadow).
pub fn create_with_uid(
    passwd: &str,
    shadow: &str,
    user: &str,
    description: &str,
    hash: &str,
    uid: u32,
    days: u64,
) -> Result<(String, String), AccountError> {
    check_name(user)?;
    if user_exists(passwd, user) {
        return Err(AccountError::AlreadyExists(user.to_string()));
    }
    let desc: String = description
        .chars()
        .filter(|c| *c != ':' && *c != '\n')
        .collect();
    let hash: String = hash.chars().filter(|c| *c != ':' && *c != '\n').collect();
    let mut p = passwd.to_string();
    if !p.is_empty() && !p.ends_with('\n') {
        p.push('\n');
    }
    p.push_str(&format!("{user}:x:{uid}:{uid}:{desc}:/:/bin/sh\n"));
    let mut s = shadow.to_string();
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    s.push_str(&format!("{user}:{hash}:{days}:0:99999:7:::\n"));
    Ok((p, s))
}

/// Removes a user from passwd and shadow text.
pub fn remove(passwd: &str, shadow: &str, user: &str) -> Result<(String, String), AccountError> {
    if !user_exists(passwd, user) {
        return Err(AccountError::UserNotFound(user.to_string()));
    }
    let keep = |text: &str| -> String {
        text.lines()
            .filter(|l| l.split(':').next() != Some(user))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    Ok((keep(passwd), keep(shadow)))
}

pub fn validate_password(pw: &str) -> Result<(), AccountError> {
    check_password(pw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha512_crypt_matches_the_glibc_reference_vector() {
        // Ulrich Drepper's SHA-crypt specification, test vector 1 (default rounds).
        assert!(verify(
            "Hello world!",
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        ));
        // `openssl passwd -6 -salt abcdefghijklmnop 'Hello world!'`
        assert_eq!(
            hash_with_salt("Hello world!", "abcdefghijklmnop"),
            "$6$abcdefghijklmnop$QHIFY5kc1kz.IbvL93uE1dch/by2Y7vCuMbwuEBxMP1NEAB5NvpcgGSpdKQkNYQUZ54mM9gicC5bYr2OQXmkh."
        );
        let h = hash_password("VMware1!", &mut Rng::new(7));
        assert!(h.starts_with("$6$") && verify("VMware1!", &h) && !verify("vmware1!", &h));
        assert!(verify("", "") && !verify("x", ""));
        assert!(!verify("", "*") && !verify("x", "!"));
        assert!(!verify("x", "$1$abc$def"), "MD5 crypt is not accepted");
    }

    #[test]
    fn overlong_passwords_are_refused_and_never_hashed() {
        let long = "a".repeat(MAX_PASSWORD_BYTES + 1);
        let e = validate_password(&long).unwrap_err();
        assert!(
            e.to_string().contains(&MAX_PASSWORD_BYTES.to_string()),
            "{e}"
        );
        validate_password(&"a".repeat(MAX_PASSWORD_BYTES)).unwrap();
        // A hash of one made elsewhere (a restored shadow) does not open either: no such password
        // could have been set. An 8 MB one (a whole SOAP body) is turned away unhashed.
        let h = hash_with_salt(&long, "abcdefghijklmnop");
        assert!(!verify(&long, &h));
        assert!(!verify(&"a".repeat(8 << 20), &h));
        let h = hash_with_salt(&long[1..], "abcdefghijklmnop");
        assert!(verify(&long[1..], &h), "256 bytes still work");
    }

    #[test]
    fn shadow_edits() {
        let shadow = "root::17000:0:99999:7:::\ndaemon:*:17000:0:99999:7:::\n";
        let s = set_hash(shadow, "root", "$6$x$y", 19000).unwrap();
        assert_eq!(shadow_field(&s, "root"), Some("$6$x$y"));
        assert!(s.starts_with("root:$6$x$y:19000:0:99999:7:::\n"));
        assert!(set_hash(shadow, "nobody", "h", 1).is_err());
        let passwd = "root:x:0:0:Administrator:/:/bin/sh\n";
        let (p, s) = create(passwd, shadow, "backup", "Backup: svc", "$6$a$b", 5).unwrap();
        assert!(p.contains("backup:x:1000:1000:Backup svc:/:/bin/sh\n"));
        assert_eq!(shadow_field(&s, "backup"), Some("$6$a$b"));
        assert!(matches!(
            create(&p, &s, "backup", "", "", 5),
            Err(AccountError::AlreadyExists(_))
        ));
        assert!(matches!(
            create(&p, &s, "a:b", "", "", 5),
            Err(AccountError::InvalidName(_))
        ));
        let (p2, s2) = remove(&p, &s, "backup").unwrap();
        assert_eq!((p2.as_str(), s2.as_str()), (passwd, shadow));
        assert!(remove(passwd, shadow, "ghost").is_err());
    }
}
