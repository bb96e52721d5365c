//! Password quality (facts section 7): a host checks a new password with `pam_passwdqc`, set by
//! the advanced option `Security.PasswordQualityControl` (default `retry=3
//! min=disabled,disabled,disabled,7,7`: at least 7 characters from 3 of the 4 classes, an upper-case
//! letter that starts the password and a digit that ends it not counted, at most 40).
//! HostLocalAccountManager's CreateUser and UpdateUser refuse a weak password with the fault
//! Broadcom KB 344647 shows: `SystemError`, "A general system error occurred: Weak password: too
//! short.", a `com.vmware.vim.host.LocalAccountManager.weakPassword` message with a `reason` arg.
//!
//! [`Policy::check`] is passwdqc's own length and `is_simple` rules (passwdqc 1.x,
//! `passwdqc_check.c`, including its `expected_different` estimate of how many distinct characters
//! a random password of that length has). Not modelled: the dictionary and personal-information
//! checks (`match=`; they need passwdqc's word list) and `similar=` (hostd does not hand PAM the
//! old password on UpdateUser \[inferred\]). So a password refused here is refused by a real host;
//! a dictionary-based one a real host refuses may pass here.

use std::fmt;

use crate::api::{Data, Fault, Value};

/// passwdqc's `disabled`: no password of that kind is long enough.
const DISABLED: usize = usize::MAX;

/// The parsed `Security.PasswordQualityControl` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `min=N0,N1,N2,N3,N4`: the shortest password of one class, of two, a passphrase, of three
    /// classes, of four.
    pub min: [usize; 5],
    pub max: usize,
    /// Words a passphrase needs (`passphrase=`; 0 disables passphrases).
    pub passphrase_words: usize,
}

impl Default for Policy {
    /// passwdqc's own defaults, which a `Security.PasswordQualityControl` value amends.
    fn default() -> Policy {
        Policy {
            min: [DISABLED, 24, 11, 8, 7],
            max: 40,
            passphrase_words: 3,
        }
    }
}

/// Why a password is weak, in passwdqc's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weak {
    Short,
    Long,
    Simple,
    SimpleShort,
}

impl Weak {
    /// The `reason` arg of the localizable message. "short" is KB 344647's; the others follow
    /// the same pattern [inferred].
    fn key(self) -> &'static str {
        match self {
            Weak::Short => "short",
            Weak::Long => "long",
            Weak::Simple => "simple",
            Weak::SimpleShort => "simpleshort",
        }
    }
}

impl fmt::Display for Weak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Weak::Short => "too short",
            Weak::Long => "too long",
            Weak::Simple => "not enough different characters or classes",
            Weak::SimpleShort => "not enough different characters or classes for this length",
        })
    }
}

impl Policy {
    /// Parses an option value such as `retry=3 min=disabled,disabled,disabled,7,7 max=40`.
    /// Settings passwdqc knows but that do not change the verdict here (`retry`, `match`,
    /// `similar`, `enforce`, ...) are accepted; an unknown one or a bad number is an error, as
    /// PAM would refuse to load the module.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let mut p = Policy::default();
        for word in text.split_whitespace() {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            match key {
                "min" => {
                    let parts: Vec<&str> = value.split(',').collect();
                    if parts.len() != 5 {
                        return Err(format!("min takes five values, not '{value}'"));
                    }
                    for (slot, part) in p.min.iter_mut().zip(parts) {
                        *slot = match part {
                            "disabled" => DISABLED,
                            n => n.parse().map_err(|_| format!("bad min value '{n}'"))?,
                        };
                    }
                    // passwdqc's own rule: each kind needs no more than the weaker one before.
                    if p.min.windows(2).any(|w| w[0] < w[1]) {
                        return Err(format!("min values must not increase: '{value}'"));
                    }
                }
                "max" => {
                    p.max = value
                        .parse()
                        .ok()
                        .filter(|&n| n >= 8)
                        .ok_or_else(|| format!("bad max value '{value}'"))?
                }
                "passphrase" => {
                    p.passphrase_words = value
                        .parse()
                        .map_err(|_| format!("bad passphrase value '{value}'"))?
                }
                "retry" | "match" | "similar" | "random" | "enforce" | "non-unix"
                | "ask_oldauthtok" | "check_oldauthtok" | "use_first_pass" | "use_authtok"
                | "noaudit" | "config" | "wordlist" | "denylist" | "filter" => {}
                _ => return Err(format!("unknown setting '{word}'")),
            }
        }
        Ok(p)
    }

    /// passwdqc's verdict on a new password (length first, then `is_simple`).
    pub fn check(&self, password: &str) -> Result<(), Weak> {
        let length = password.len();
        if length < self.min[4] {
            return Err(Weak::Short);
        }
        if length > self.max {
            return Err(Weak::Long);
        }
        if self.is_simple(password.as_bytes()) {
            return Err(if length < self.min[1] && self.min[1] <= self.max {
                Weak::SimpleShort
            } else {
                Weak::Simple
            });
        }
        Ok(())
    }

    fn is_simple(&self, pw: &[u8]) -> bool {
        let (mut digits, mut lowers, mut uppers, mut others, mut unknowns) = (0, 0, 0, 0, 0);
        let (mut words, mut chars) = (0usize, 0usize);
        let mut prev = b' ';
        for (i, &c) in pw.iter().enumerate() {
            if !c.is_ascii() {
                unknowns += 1;
            } else if c.is_ascii_digit() {
                digits += 1;
            } else if c.is_ascii_lowercase() {
                lowers += 1;
            } else if c.is_ascii_uppercase() {
                uppers += 1;
            } else {
                others += 1;
            }
            // A word starts where a letter follows a non-letter (or a non-ASCII byte a space).
            if prev.is_ascii() {
                if c.is_ascii() {
                    if c.is_ascii_alphabetic() && !prev.is_ascii_alphabetic() {
                        words += 1;
                    }
                } else if prev.is_ascii_whitespace() {
                    words += 1;
                }
            }
            prev = c;
            // Each distinct character counted once, at its last occurrence.
            if !pw[i + 1..].contains(&c) {
                chars += 1;
            }
        }
        if pw.is_empty() {
            return true;
        }
        // An upper-case letter that starts and a digit that ends a password are how people
        // satisfy rules; they do not make it stronger.
        if uppers > 0 && pw[0].is_ascii_uppercase() {
            uppers -= 1;
        }
        if digits > 0 && pw[pw.len() - 1].is_ascii_digit() {
            digits -= 1;
        }
        let mut classes = [digits, lowers, uppers, others]
            .iter()
            .filter(|&&n| n > 0)
            .count();
        if unknowns > 0 && classes <= 1 && (classes == 0 || digits > 0 || words >= 2) {
            classes = 2;
        }
        let length = pw.len();
        let long_enough = |min: usize, charset: usize| {
            length >= min && chars + 1 >= expected_different(charset, min)
        };
        for kind in (1..=classes).rev() {
            match kind {
                1 => return !long_enough(self.min[0], 10),
                2 => {
                    if long_enough(self.min[1], 36) {
                        return false;
                    }
                    if self.passphrase_words > 0
                        && words >= self.passphrase_words
                        && long_enough(self.min[2], 27)
                    {
                        return false;
                    }
                }
                3 if long_enough(self.min[3], 62) => return false,
                4 if long_enough(self.min[4], 95) => return false,
                _ => {}
            }
        }
        true
    }
}

/// passwdqc's estimate (in 15-bit fixed point, as it computes it) of how many different
/// characters a random string of `length` from a set of `charset` has.
fn expected_different(charset: usize, length: usize) -> usize {
    if length == DISABLED || length == 0 {
        return if length == 0 { 0 } else { usize::MAX };
    }
    const BITS: u32 = 15;
    let charset = charset as u64;
    let x = ((charset - 1) << BITS) / charset;
    let mut y = x;
    for _ in 1..length.min(10_000) {
        y = (y * x) >> BITS;
    }
    let z = charset * ((1u64 << BITS) - y);
    (z >> BITS) as usize
}

/// The fault hostd answers for a weak password (KB 344647).
pub fn weak_password_fault(why: Weak) -> Fault {
    let reason = format!("Weak password: {why}.");
    let message = Data::new("LocalizableMessage")
        .with(
            "key",
            "com.vmware.vim.host.LocalAccountManager.weakPassword",
        )
        .with(
            "arg",
            Value::Array(
                "KeyAnyValue",
                vec![Data::new("KeyAnyValue")
                    .with("key", "reason")
                    .with("value", Value::any(Value::Str(why.key().into())))
                    .into()],
            ),
        )
        .with("message", reason.as_str());
    Fault::new(
        "SystemError",
        format!("A general system error occurred: {reason}"),
    )
    .with(
        "faultMessage",
        Value::Array("LocalizableMessage", vec![message.into()]),
    )
    .with("reason", reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esxi() -> Policy {
        Policy::parse("retry=3 min=disabled,disabled,disabled,7,7").unwrap()
    }

    #[test]
    fn the_default_wants_seven_characters_from_three_classes() {
        let p = esxi();
        for good in [
            "S3cret!pw",
            "N3w!pass",
            "Chang3d!pw",
            "Bkp!pass42",
            "Backup0p!x",
            "ab3!efg",
        ] {
            assert_eq!(p.check(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("", Weak::Short),
            ("Ab1!xy", Weak::Short),
            ("abcdefghij", Weak::Simple),
            // The leading capital and the trailing digit do not count: two classes left.
            ("Bundle!pw1", Weak::Simple),
            ("Password1", Weak::Simple),
            // Three classes but too few different characters for the length.
            ("aaaaaA1!", Weak::Simple),
            (&"aB3!".repeat(11), Weak::Long),
        ] {
            assert_eq!(p.check(bad), Err(why), "{bad:?}");
        }
        // Four classes at seven: enough.
        assert_eq!(p.check("aB3!cD4"), Ok(()));
    }

    #[test]
    fn a_second_capital_or_digit_still_counts() {
        let p = esxi();
        assert_eq!(p.check("Bundle!PW1"), Ok(()));
        assert_eq!(p.check("bundle!pw12"), Ok(()));
    }

    #[test]
    fn the_option_changes_the_verdict() {
        let strict = Policy::parse("retry=3 min=disabled,disabled,disabled,disabled,15").unwrap();
        assert_eq!(strict.check("S3cret!pw"), Err(Weak::Short));
        assert_eq!(strict.check("S3cret!pwAbcdef9x"), Ok(()));
        let lax = Policy::parse("min=8,8,8,7,6").unwrap();
        assert_eq!(lax.check("abcdefgh"), Ok(()));
        let phrases = Policy::parse("min=disabled,disabled,16,7,7 passphrase=3").unwrap();
        assert_eq!(phrases.check("correct horse battery"), Ok(()));
        assert_eq!(esxi().check("correct horse battery"), Err(Weak::Simple));
    }

    #[test]
    fn bad_option_values_are_refused() {
        for bad in [
            "min=7",
            "min=1,2,3,4,5",
            "max=abc",
            "max=3",
            "frobnicate=1",
            "min=a,b,c,d,e",
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expected_different_matches_passwdqc() {
        // Values computed by passwdqc's fixed-point formula by hand: 95 classes, 7 long.
        assert_eq!(expected_different(95, 7), 6);
        assert_eq!(expected_different(62, 7), 6);
        assert_eq!(expected_different(10, 8), 5);
    }
}
