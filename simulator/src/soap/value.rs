//! How SOAP writes the API's values ([`crate::api::Value`]): each as an element, with
//! `xsi:type` where the schema declares `xsd:anyType` (where [`Value::Any`] marks it). Data
//! objects always carry `xsi:type`, which every client accepts. The writer is an inherent impl
//! here, beside the XML it writes, so the values know nothing of the wire.

use crate::api::Value;

#[cfg(test)]
use crate::api::{Data, MoRef};

use super::xml::escape;

impl Value {
    /// The XML Schema type name written in `xsi:type`.
    pub fn type_name(&self) -> String {
        match self {
            Value::Str(_) => "xsd:string".into(),
            Value::Int(_) => "xsd:int".into(),
            Value::Long(_) => "xsd:long".into(),
            Value::Bool(_) => "xsd:boolean".into(),
            Value::Time(_) => "xsd:dateTime".into(),
            Value::Ref(_) => "ManagedObjectReference".into(),
            Value::Data(d) => d.ty.into(),
            Value::Array(item, _) => Value::array_type(item),
            Value::Any(v) => v.type_name(),
            Value::Enum(ty, _) => (*ty).into(),
        }
    }

    /// Writes `<name ...>value</name>`; `typed` adds `xsi:type` (anyType positions).
    pub fn write(&self, name: &str, typed: bool, out: &mut String) {
        match self {
            Value::Any(v) => v.write(name, true, out),
            Value::Array(item, items) if !typed => {
                // A field of array type: the element repeats, one per item.
                for v in items {
                    v.write(name, false, out);
                }
                let _ = item;
            }
            Value::Array(item, items) => {
                open(name, Some(&Value::array_type(item)), out);
                out.push('>');
                let elem = if *item == "ManagedObjectReference" {
                    "ManagedObjectReference"
                } else {
                    item
                };
                for v in items {
                    v.write(elem, false, out);
                }
                close(name, out);
            }
            Value::Ref(r) => {
                open(name, typed.then_some("ManagedObjectReference"), out);
                out.push_str(" type=\"");
                escape(&r.ty, out);
                out.push_str("\">");
                escape(&r.id, out);
                close(name, out);
            }
            Value::Data(d) => {
                // Nothing derives from LocalizedMethodFault, so a field declared with it
                // (TaskInfo.error) never needs xsi:type and a real host sends none; vim_rs, which
                // folds it into MethodFault, rejects the whole update when one is there.
                let final_type = d.ty == "LocalizedMethodFault" && !typed;
                open(name, (!final_type).then_some(d.ty), out);
                out.push('>');
                for (k, v) in &d.fields {
                    v.write(k, false, out);
                }
                close(name, out);
            }
            prim => {
                let ty = prim.type_name();
                open(name, typed.then_some(ty.as_str()), out);
                out.push('>');
                match prim {
                    Value::Str(s) => escape(s, out),
                    Value::Enum(_, s) => escape(s, out),
                    Value::Int(i) => out.push_str(&i.to_string()),
                    Value::Long(i) => out.push_str(&i.to_string()),
                    Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                    Value::Time(t) => out.push_str(&t.to_rfc3339()),
                    _ => unreachable!("handled above"),
                }
                close(name, out);
            }
        }
    }
}

fn open(name: &str, xsi_type: Option<&str>, out: &mut String) {
    out.push('<');
    out.push_str(name);
    if let Some(t) = xsi_type {
        out.push_str(" xsi:type=\"");
        out.push_str(t);
        out.push('"');
    }
}

fn close(name: &str, out: &mut String) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(v: &Value, typed: bool) -> String {
        let mut s = String::new();
        v.write("val", typed, &mut s);
        s
    }

    #[test]
    fn writes_each_shape() {
        assert_eq!(w(&"a<b".into(), false), "<val>a&lt;b</val>");
        assert_eq!(
            w(&Value::any(5i32), false),
            "<val xsi:type=\"xsd:int\">5</val>"
        );
        let r = MoRef::new("HostSystem", "ha-host");
        assert_eq!(
            w(&r.clone().into(), true),
            "<val xsi:type=\"ManagedObjectReference\" type=\"HostSystem\">ha-host</val>"
        );
        let arr = Value::refs([r.clone()]);
        assert_eq!(
            w(&arr, true),
            "<val xsi:type=\"ArrayOfManagedObjectReference\"><ManagedObjectReference type=\"HostSystem\">ha-host</ManagedObjectReference></val>"
        );
        assert_eq!(
            w(&Value::strings(["x".into(), "y".into()]), false),
            "<val>x</val><val>y</val>"
        );
        let d = Data::new("AboutInfo").with("name", "VMware ESXi");
        assert_eq!(
            w(&d.into(), false),
            "<val xsi:type=\"AboutInfo\"><name>VMware ESXi</name></val>"
        );
    }

    #[test]
    fn enums_name_their_type_where_the_schema_says_any_type() {
        let e = Value::enumerated("HostSystemConnectionState", "connected");
        assert_eq!(w(&e, false), "<val>connected</val>");
        assert_eq!(
            w(&Value::any(e), false),
            "<val xsi:type=\"HostSystemConnectionState\">connected</val>"
        );
    }
}
