//! The values the API returns, as a tree the writer serializes: primitives, managed object
//! references, data objects (type + fields in schema order) and arrays.
//!
//! Where the schema declares `xsd:anyType` (Fetch's result, `DynamicProperty.val`,
//! `OptionValue.value`, `TaskInfo.result`) the element must say its type in `xsi:type`; [`Value::Any`]
//! marks those places. Data objects always carry `xsi:type`, which every client accepts.

use crate::clock::SimTime;

use super::xml::escape;

/// A managed object reference: `<_this type="HostSystem">ha-host</_this>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MoRef {
    pub ty: String,
    pub id: String,
}

impl MoRef {
    pub fn new(ty: impl Into<String>, id: impl Into<String>) -> MoRef {
        MoRef {
            ty: ty.into(),
            id: id.into(),
        }
    }
}

impl std::fmt::Display for MoRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.ty, self.id)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i32),
    Long(i64),
    Bool(bool),
    Time(SimTime),
    Ref(MoRef),
    Data(Data),
    /// Item type (`string`, `ManagedObjectReference`, `OptionValue`, ...) and the items.
    Array(&'static str, Vec<Value>),
    /// A value in an `anyType` position: written with its `xsi:type`.
    Any(Box<Value>),
    /// A value of an enumerated type (`HostSystemConnectionState`, `TaskInfoState`, ...): text
    /// in a typed field, but in an anyType position its `xsi:type` is the enum's name, not
    /// `xsd:string` (typed clients such as vim_rs reject a row otherwise; issue 13).
    Enum(&'static str, &'static str),
}

/// A data object: its type name and its set fields, in schema order.
#[derive(Clone, Debug, PartialEq)]
pub struct Data {
    pub ty: &'static str,
    pub fields: Vec<(&'static str, Value)>,
}

impl Data {
    pub fn new(ty: &'static str) -> Data {
        Data {
            ty,
            fields: Vec::new(),
        }
    }
    /// Adds a field (builder style).
    pub fn with(mut self, name: &'static str, v: impl Into<Value>) -> Data {
        self.fields.push((name, v.into()));
        self
    }
    /// Adds a field only when it is set.
    pub fn opt(self, name: &'static str, v: Option<impl Into<Value>>) -> Data {
        match v {
            Some(v) => self.with(name, v),
            None => self,
        }
    }
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

impl From<Data> for Value {
    fn from(d: Data) -> Value {
        Value::Data(d)
    }
}
impl From<MoRef> for Value {
    fn from(r: MoRef) -> Value {
        Value::Ref(r)
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Value {
        Value::Int(i)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Long(i)
    }
}
impl From<SimTime> for Value {
    fn from(t: SimTime) -> Value {
        Value::Time(t)
    }
}

impl Value {
    pub fn any(v: impl Into<Value>) -> Value {
        Value::Any(Box::new(v.into()))
    }
    /// A value of the enumerated type `ty`.
    pub fn enumerated(ty: &'static str, value: &'static str) -> Value {
        Value::Enum(ty, value)
    }
    pub fn refs(items: impl IntoIterator<Item = MoRef>) -> Value {
        Value::Array(
            "ManagedObjectReference",
            items.into_iter().map(Value::Ref).collect(),
        )
    }
    pub fn strings(items: impl IntoIterator<Item = String>) -> Value {
        Value::Array("string", items.into_iter().map(Value::Str).collect())
    }

    /// The value at a nested property path relative to this one (`product.version`).
    pub fn at_path(&self, path: &[&str]) -> Option<&Value> {
        match path.split_first() {
            None => Some(self),
            Some((first, rest)) => match self {
                Value::Data(d) => d.get(first)?.at_path(rest),
                Value::Any(v) => v.at_path(path),
                _ => None,
            },
        }
    }

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
            Value::Array(item, _) => array_type(item),
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
                open(name, Some(&array_type(item)), out);
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

/// `string` → `ArrayOfString`, `ManagedObjectReference` → `ArrayOfManagedObjectReference`.
fn array_type(item: &str) -> String {
    let mut s = String::from("ArrayOf");
    let mut cs = item.chars();
    if let Some(c) = cs.next() {
        s.extend(c.to_uppercase());
        s.push_str(cs.as_str());
    }
    s
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

    #[test]
    fn navigates_paths() {
        let v: Value = Data::new("HostConfigInfo")
            .with("product", Data::new("AboutInfo").with("version", "6.7.0"))
            .into();
        assert_eq!(
            v.at_path(&["product", "version"]),
            Some(&Value::Str("6.7.0".into()))
        );
        assert_eq!(v.at_path(&["product", "nope"]), None);
    }
}
