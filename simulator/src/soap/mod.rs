//! SOAP 1.1 as vSphere speaks it: the request envelope in, a response or fault envelope out.
//!
//! - [`xml`]: a bounded tree reader (quick-xml) and escaping;
//! - [`value`]: how the API's values ([`crate::api`]) are written;
//! - here: [`parse`] (envelope → [`Call`]: method, `_this`, parameters) and the writers
//!   [`response`] and [`Fault::to_xml`] (facts section 3: HTTP 500, `ServerFaultCode`, an unqualified
//!   `detail` holding `<XFault xmlns="urn:vim25" xsi:type="X">`).

pub mod value;
pub mod xml;

pub use xml::Element;

use crate::api::call::parse_moref;
use crate::api::{Call, Fault, MoRef, Param, Value};
use xml::{escape, NS_SOAPENV, NS_VIM25};

/// The envelope around every message, both directions (the harness's client uses it too).
pub const ENVELOPE_OPEN: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
    "<soapenv:Envelope xmlns:soapenc=\"http://schemas.xmlsoap.org/soap/encoding/\"",
    " xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"",
    " xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"",
    " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n<soapenv:Body>"
);
pub const ENVELOPE_CLOSE: &str = "</soapenv:Body>\n</soapenv:Envelope>";

/// Which type a method belongs to, when only one type has it (the server's: the managed-object
/// registry's `declaring_type`): what a `_this` without a type is taken to be.
pub type DeclaringType = fn(&str) -> Option<&'static str>;

/// Reads `<Method xmlns="urn:vim25"><_this type="T">id</_this>params...</Method>` into a call
/// whose `_this` says its type. Every rejection is an `InvalidRequest` fault naming what was
/// wrong.
pub fn parse(bytes: &[u8]) -> Result<Call, Fault> {
    parse_with(bytes, |_| None)
}

/// Reads an envelope into a call, taking a typeless `_this`'s type from `types`
/// (node-vsphere-soap sends `{_this: 'ServiceInstance'}`; vmomi takes the type from the
/// method).
pub fn parse_with(bytes: &[u8], types: DeclaringType) -> Result<Call, Fault> {
    let root = xml::parse(bytes).map_err(|e| Fault::invalid_request(e.to_string()))?;
    if root.name != "Envelope" || root.ns.as_deref() != Some(NS_SOAPENV) {
        return Err(Fault::invalid_request(format!(
            "expected a SOAP 1.1 Envelope ({NS_SOAPENV}), found <{}>",
            root.name
        )));
    }
    let body = root
        .children
        .iter()
        .find(|c| c.name == "Body" && c.ns.as_deref() == Some(NS_SOAPENV))
        .ok_or_else(|| Fault::invalid_request("the Envelope has no Body"))?;
    let call = match body.children.as_slice() {
        [one] => one,
        [] => return Err(Fault::invalid_request("the Body is empty")),
        _ => {
            return Err(Fault::invalid_request(
                "the Body holds more than one element",
            ))
        }
    };
    if call.ns.as_deref() != Some(NS_VIM25) {
        return Err(Fault::invalid_request(format!(
            "<{}> is not in namespace {NS_VIM25} (found {})",
            call.name,
            call.ns.as_deref().unwrap_or("no namespace")
        )));
    }
    let params = param(call);
    let this = params
        .child("_this")
        .ok_or_else(|| Fault::invalid_request(format!("{} has no _this", call.name)))?;
    let this = match (&this.ref_type, types(&call.name)) {
        (None, Some(ty)) => parse_moref(&Param {
            ref_type: Some(ty.into()),
            ..this.clone()
        }),
        _ => parse_moref(this),
    }
    .map_err(Fault::invalid_request)?;
    Ok(Call {
        method: call.name.clone(),
        this,
        params,
    })
}

/// An element as a call's parameter: its `xsi:type` is the declared type, its `type`
/// attribute a reference's type; namespaces and other attributes say nothing to a handler.
pub fn param(el: &Element) -> Param {
    Param {
        name: el.name.clone(),
        declared_type: el.xsi_type.clone(),
        ref_type: el.attr("type").map(str::to_string),
        text: el.text.clone(),
        children: el.children.iter().map(param).collect(),
    }
}

/// `<x type="T">id</x>` → MoRef (a client reading an answer).
pub fn parse_moref_element(el: &Element) -> Result<MoRef, String> {
    parse_moref(&param(el))
}

/// A whole envelope around one body element.
pub fn envelope(body: &str) -> String {
    let mut s = String::with_capacity(ENVELOPE_OPEN.len() + body.len() + ENVELOPE_CLOSE.len());
    s.push_str(ENVELOPE_OPEN);
    s.push_str(body);
    s.push_str(ENVELOPE_CLOSE);
    s
}

/// A successful response: `<MethodResponse xmlns="urn:vim25">[<returnval>]</MethodResponse>`.
/// Where the method returns anyType (Fetch) the value says so ([`Value::Any`]).
pub fn response(method: &str, ret: Option<&Value>) -> String {
    let mut out = String::with_capacity(1024);
    out.push_str(ENVELOPE_OPEN);
    out.push('<');
    out.push_str(method);
    out.push_str("Response xmlns=\"urn:vim25\">");
    if let Some(v) = ret {
        v.write("returnval", false, &mut out);
    }
    out.push_str("</");
    out.push_str(method);
    out.push_str("Response>");
    out.push_str(ENVELOPE_CLOSE);
    out
}

/// How SOAP writes a fault ([`crate::api::Fault`]), beside the envelope it goes in.
impl Fault {
    /// The whole fault envelope (sent with HTTP 500).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(512);
        out.push_str(ENVELOPE_OPEN);
        out.push_str("<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>");
        escape(&self.message, &mut out);
        out.push_str("</faultstring><detail><");
        out.push_str(self.ty);
        out.push_str("Fault xmlns=\"urn:vim25\" xsi:type=\"");
        out.push_str(self.ty);
        out.push_str("\">");
        for (k, v) in &self.fields {
            v.write(k, false, &mut out);
        }
        out.push_str("</");
        out.push_str(self.ty);
        out.push_str("Fault></detail></soapenv:Fault>");
        out.push_str(ENVELOPE_CLOSE);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(body: &str) -> String {
        format!(
            "<soapenv:Envelope xmlns:soapenv=\"{NS_SOAPENV}\"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
        )
    }

    #[test]
    fn parses_a_call() {
        let r = parse(env("<Fetch xmlns=\"urn:vim25\"><_this type=\"HostSystem\">ha-host</_this><prop>name</prop></Fetch>").as_bytes()).unwrap();
        assert_eq!(r.method, "Fetch");
        assert_eq!(r.this, MoRef::new("HostSystem", "ha-host"));
        assert_eq!(r.param("prop").unwrap().text, "name");
    }

    #[test]
    fn a_typeless_this_takes_the_type_the_caller_says_the_method_has() {
        fn types(method: &str) -> Option<&'static str> {
            (method == "RetrieveServiceContent").then_some("ServiceInstance")
        }
        let body = "<RetrieveServiceContent xmlns=\"urn:vim25\"><_this>ServiceInstance</_this>\
                    </RetrieveServiceContent>";
        let r = parse_with(env(body).as_bytes(), types).unwrap();
        assert_eq!(r.this, MoRef::new("ServiceInstance", "ServiceInstance"));
        // Without a resolver, or for a method it does not place, the type is not guessed.
        let f = parse(env(body).as_bytes()).unwrap_err();
        assert!(f.message.contains("without a type"), "{}", f.message);
        let body = "<DestroyView xmlns=\"urn:vim25\"><_this>v</_this></DestroyView>";
        let f = parse_with(env(body).as_bytes(), types).unwrap_err();
        assert!(f.message.contains("without a type"), "{}", f.message);
    }

    #[test]
    fn rejects_wrong_namespace_missing_this_and_garbage() {
        for (body, want) in [
            (
                "<Fetch xmlns=\"urn:other\"><_this type=\"A\">b</_this></Fetch>",
                "namespace",
            ),
            ("<Fetch xmlns=\"urn:vim25\"></Fetch>", "_this"),
            (
                "<Fetch xmlns=\"urn:vim25\"><_this>b</_this></Fetch>",
                "without a type",
            ),
            ("", "empty"),
        ] {
            let f = parse(env(body).as_bytes()).unwrap_err();
            assert_eq!(f.ty, "InvalidRequest");
            assert!(f.message.contains(want), "{}: {}", body, f.message);
        }
        assert_eq!(parse(b"<x").unwrap_err().ty, "InvalidRequest");
        assert_eq!(parse(b"<Envelope/>").unwrap_err().ty, "InvalidRequest");
    }

    #[test]
    fn fault_envelope_has_the_real_shape() {
        let f = Fault::new("FileNotFound", "File /tmp/configBundle.tgz was not found")
            .with("file", "/tmp/configBundle.tgz");
        let x = f.to_xml();
        assert!(x.contains("<faultcode>ServerFaultCode</faultcode>"));
        assert!(x.contains("<detail><FileNotFoundFault xmlns=\"urn:vim25\" xsi:type=\"FileNotFound\"><file>/tmp/configBundle.tgz</file></FileNotFoundFault></detail>"));
        // The envelope we write is one our own reader accepts.
        xml::parse(x.as_bytes()).unwrap();
    }
}
