//! The session cookie, SOAP's way of carrying a session (facts section 3): `Set-Cookie:
//! vmware_soap_session="<token>"; Path=/; HttpOnly; Secure;` on Login, read back from `Cookie`
//! leniently (quoted or not, among other cookies). The managed objects only hand out and take
//! tokens ([`crate::vim::Ctx`]); how a token travels is the transport's.

use hyper::body::Incoming;
use hyper::Request;

pub const NAME: &str = "vmware_soap_session";

/// The session token from a `Cookie` header: `vmware_soap_session="abc"; Path=/; ...` or
/// `a=b; vmware_soap_session=abc`.
pub fn token_from_cookie(header: &str) -> Option<String> {
    header.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k.trim() == NAME).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The session token of a request's cookies, if any.
pub fn token(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(token_from_cookie)
}

/// The `Set-Cookie` value for a new session's token; `Secure` only over TLS, as a browser would
/// not send a Secure cookie back over plain HTTP.
pub fn set_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { " Secure;" } else { "" };
    format!("{NAME}=\"{token}\"; Path=/; HttpOnly;{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_read_leniently() {
        for h in [
            "vmware_soap_session=\"abc\"; Path=/; HttpOnly; Secure;",
            "vmware_soap_session=abc",
            "x=1; vmware_soap_session=\"abc\"",
        ] {
            assert_eq!(token_from_cookie(h).as_deref(), Some("abc"), "{h}");
        }
        assert_eq!(token_from_cookie("x=1; Path=/"), None);
    }

    /// What we set is what we read back.
    #[test]
    fn a_set_cookie_reads_back() {
        for secure in [true, false] {
            let c = set_cookie("tok-1", secure);
            assert_eq!(token_from_cookie(&c).as_deref(), Some("tok-1"));
            assert_eq!(c.contains("Secure"), secure, "{c}");
        }
    }
}
