//! How VI/JSON writes the API's values ([`crate::api::Value`]) and faults: data objects with
//! `_typeName` first, references as `ManagedObjectReference` objects, primitives boxed where the
//! schema says `anyType` ([`Value::Any`]).

use crate::api::{Fault, Value};

/// A method's value: `Value::Any` (Fetch, `TaskInfo.result`) boxes what it holds.
pub fn value(v: &Value) -> String {
    let mut out = String::with_capacity(256);
    write(v, false, &mut out);
    out
}

/// A property read (`GET .../{property}`): the property as its declared type, so the anyType
/// box that Fetch puts around it comes off (a string property is a JSON string).
pub fn property(v: &Value) -> String {
    match v {
        Value::Any(inner) => value(inner),
        v => value(v),
    }
}

/// A fault as VI/JSON answers it with HTTP 500: the fault object (`_typeName`, its fields), its
/// message as `faultMessage` [inferred: the key is ours], and `faultstring`, which govmomi's JSON
/// client reads.
pub fn fault(f: &Fault) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"_typeName\":");
    string(f.ty, &mut out);
    out.push_str(",\"faultstring\":");
    string(&f.message, &mut out);
    out.push_str(",\"faultMessage\":[{\"_typeName\":\"LocalizableMessage\",\"key\":");
    string(&format!("vim.fault.{}", f.ty), &mut out);
    out.push_str(",\"message\":");
    string(&f.message, &mut out);
    out.push_str("}]");
    for (k, v) in &f.fields {
        out.push(',');
        string(k, &mut out);
        out.push(':');
        write(v, false, &mut out);
    }
    out.push('}');
    out
}

/// Writes `v`; `boxed`: it stands where the schema says anyType.
fn write(v: &Value, boxed: bool, out: &mut String) {
    match v {
        Value::Any(inner) => write(inner, true, out),
        Value::Data(d) => {
            out.push_str("{\"_typeName\":");
            string(d.ty, out);
            for (k, v) in &d.fields {
                out.push(',');
                string(k, out);
                out.push(':');
                write(v, false, out);
            }
            out.push('}');
        }
        Value::Ref(r) => {
            out.push_str("{\"_typeName\":\"ManagedObjectReference\",\"type\":");
            string(&r.ty, out);
            out.push_str(",\"value\":");
            string(&r.id, out);
            out.push('}');
        }
        Value::Array(item, items) if boxed => {
            out.push_str("{\"_typeName\":");
            string(&Value::array_type(item), out);
            out.push_str(",\"_value\":");
            array(items, out);
            out.push('}');
        }
        Value::Array(_, items) => array(items, out),
        prim if boxed => {
            out.push_str("{\"_typeName\":");
            string(primitive_type(prim), out);
            out.push_str(",\"_value\":");
            write(prim, false, out);
            out.push('}');
        }
        Value::Str(s) => string(s, out),
        Value::Enum(_, s) => string(s, out),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Long(i) => out.push_str(&i.to_string()),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Time(t) => string(&t.to_rfc3339(), out),
    }
}

fn array(items: &[Value], out: &mut String) {
    out.push('[');
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(v, false, out);
    }
    out.push(']');
}

/// The box's `_typeName` of a primitive: the XML Schema name without its prefix, or the
/// enum's own name.
fn primitive_type(v: &Value) -> &'static str {
    match v {
        Value::Str(_) => "string",
        Value::Int(_) => "int",
        Value::Long(_) => "long",
        Value::Bool(_) => "boolean",
        Value::Time(_) => "dateTime",
        Value::Enum(ty, _) => ty,
        Value::Ref(_) => "ManagedObjectReference",
        Value::Data(d) => d.ty,
        Value::Array(..) | Value::Any(_) => "anyType",
    }
}

/// A JSON string literal (RFC 8259: `"` `\` and control characters escaped).
fn string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Data, MoRef};

    fn json(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
    }

    #[test]
    fn writes_each_shape() {
        assert_eq!(value(&"a\"b\n\u{1}".into()), r#""a\"b\n\u0001""#);
        assert_eq!(value(&Value::Int(5)), "5");
        assert_eq!(
            value(&Value::any(5i32)),
            r#"{"_typeName":"int","_value":5}"#
        );
        assert_eq!(
            value(&Value::any(Value::enumerated(
                "HostSystemConnectionState",
                "connected"
            ))),
            r#"{"_typeName":"HostSystemConnectionState","_value":"connected"}"#
        );
        let r = MoRef::new("HostSystem", "host-12");
        let want =
            r#"{"_typeName":"ManagedObjectReference","type":"HostSystem","value":"host-12"}"#;
        assert_eq!(value(&r.clone().into()), want);
        // A reference is a data object: not boxed even where anyType.
        assert_eq!(value(&Value::any(r.clone())), want);
        assert_eq!(
            value(&Value::any(Value::refs([r.clone()]))),
            format!(r#"{{"_typeName":"ArrayOfManagedObjectReference","_value":[{want}]}}"#)
        );
        assert_eq!(
            value(&Value::strings(["a".to_string()])),
            r#"["a"]"#,
            "a typed array field is a bare array"
        );
        let d: Value = Data::new("AboutInfo")
            .with("version", "8.0.3")
            .with("ok", true)
            .into();
        assert_eq!(
            json(&value(&d)),
            json(r#"{"_typeName":"AboutInfo","version":"8.0.3","ok":true}"#)
        );
        assert_eq!(property(&Value::any("esx-01")), r#""esx-01""#);
    }

    #[test]
    fn a_fault_is_its_object_with_faultstring_and_fields() {
        let f = Fault::new("MismatchedBundle", "uuid \"x\" differs")
            .with("bundleUuid", "b")
            .with("hostBuildNumber", 24022510i32);
        let v = json(&fault(&f));
        assert_eq!(v["_typeName"], "MismatchedBundle");
        assert_eq!(v["faultstring"], "uuid \"x\" differs");
        assert_eq!(v["faultMessage"][0]["message"], "uuid \"x\" differs");
        assert_eq!(v["bundleUuid"], "b");
        assert_eq!(v["hostBuildNumber"], 24022510);
    }
}
