//! A small, bounded XML tree for SOAP requests, read with quick-xml.
//!
//! Requests are tiny (a method element and its parameters), so a tree is simpler than streaming
//! and lets handlers look parameters up by name. The reader is hostile-input safe: depth and
//! element count are capped, DTDs and unknown entities are refused, and every error is a value.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// Deepest nesting accepted: real requests (PropertyFilterSpec with traversal specs) stay < 20.
pub const MAX_DEPTH: usize = 64;
/// Most elements accepted in one request.
pub const MAX_ELEMENTS: usize = 200_000;

pub const NS_SOAPENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
pub const NS_VIM25: &str = "urn:vim25";

/// One element: its local name, namespace, attributes (local names), text and children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub ns: Option<String>,
    pub attrs: Vec<(String, String)>,
    /// `xsi:type` with its prefix stripped (`xsd:string` → `string`), if present.
    pub xsi_type: Option<String>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    /// Every child with this local name (repeated elements are how SOAP spells arrays).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    /// The trimmed text of a child.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmlError(pub String);

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl std::error::Error for XmlError {}

fn err(m: impl Into<String>) -> XmlError {
    XmlError(m.into())
}

/// Parses a whole document into its root element.
pub fn parse(input: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(input).map_err(|_| err("request body is not UTF-8"))?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let pos = reader.buffer_position();
        let (ns, ev) = reader
            .read_resolved_event()
            .map_err(|e| err(format!("malformed XML near byte {pos}: {e}")))?;
        let ns = match ns {
            ResolveResult::Bound(n) => Some(String::from_utf8_lossy(n.as_ref()).into_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(p) => {
                return Err(err(format!(
                    "undeclared namespace prefix '{}'",
                    String::from_utf8_lossy(&p)
                )))
            }
        };
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root.is_some() {
                    return Err(err("content after the document element"));
                }
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(err(format!("more than {MAX_ELEMENTS} elements")));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(err(format!("nesting deeper than {MAX_DEPTH}")));
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let mut el = Element {
                    name,
                    ns,
                    ..Element::default()
                };
                for a in e.attributes() {
                    let a = a.map_err(|e| err(format!("malformed attribute: {e}")))?;
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| err(format!("malformed attribute value: {e}")))?
                        .into_owned();
                    let key = a.key;
                    if key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let local = String::from_utf8_lossy(key.local_name().as_ref()).into_owned();
                    let (attr_ns, _) = reader.resolver().resolve_attribute(key);
                    let is_xsi = matches!(attr_ns, ResolveResult::Bound(n) if n.as_ref() == NS_XSI.as_bytes());
                    if is_xsi && local == "type" {
                        let t = value.rsplit(':').next().unwrap_or_default().to_string();
                        el.xsi_type = Some(t);
                    } else {
                        el.attrs.push((local, value));
                    }
                }
                if matches!(ev, Event::Empty(_)) {
                    attach(&mut stack, &mut root, el);
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| err("unbalanced end tag"))?;
                attach(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let s = t
                    .xml10_content()
                    .map_err(|e| err(format!("bad text encoding: {e}")))?;
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err(err("text outside the document element")),
                }
            }
            Event::CData(t) => {
                let s = String::from_utf8_lossy(&t).into_owned();
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| err(format!("bad character reference: {e}")))?
                        .ok_or_else(|| err("bad character reference"))?
                        .to_string()
                } else {
                    match &*r {
                        b"amp" => "&".to_string(),
                        b"lt" => "<".to_string(),
                        b"gt" => ">".to_string(),
                        b"quot" => "\"".to_string(),
                        b"apos" => "'".to_string(),
                        other => {
                            return Err(err(format!(
                                "unknown entity &{};",
                                String::from_utf8_lossy(other)
                            )))
                        }
                    }
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&c);
                }
            }
            Event::DocType(_) => return Err(err("DTDs are not accepted")),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(err("unexpected end of document (unclosed elements)"));
    }
    root.ok_or_else(|| err("empty document"))
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

/// Escapes text for element content and attribute values.
pub fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters at all; drop them rather than emit a
            // document the client's parser rejects.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_namespaces_types_entities() {
        let doc = br#"<?xml version="1.0"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body><Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this>
 <userName>root</userName><password>a&amp;b&#x21;&lt;</password><v xsi:type="xsd:long">5</v></Login></soapenv:Body></soapenv:Envelope>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Envelope");
        assert_eq!(root.ns.as_deref(), Some(NS_SOAPENV));
        let login = &root.child("Body").unwrap().children[0];
        assert_eq!(login.ns.as_deref(), Some(NS_VIM25));
        assert_eq!(
            login.child("_this").unwrap().attr("type"),
            Some("SessionManager")
        );
        assert_eq!(login.child_text("password"), Some("a&b!<"));
        assert_eq!(login.child("v").unwrap().xsi_type.as_deref(), Some("long"));
    }

    #[test]
    fn refuses_hostile_documents() {
        for bad in [
            &b"<a><b></a>"[..],
            b"<a>",
            b"",
            b"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
            b"<a>&x;</a>",
            b"<p:a/>",
            b"<a/><b/>",
            b"\xff\xfe",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(parse(deep.as_bytes()).unwrap_err().0.contains("nesting"));
    }
}
