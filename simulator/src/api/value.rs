//! The values the API returns, as a tree each wire format writes its own way: primitives,
//! managed object references, data objects (type + fields in schema order) and arrays.
//!
//! Where the schema declares `anyType` (Fetch's result, `DynamicProperty.val`,
//! `OptionValue.value`, `TaskInfo.result`) a wire must say the value's type (SOAP's
//! `xsi:type`); [`Value::Any`] marks those places.

use crate::clock::SimTime;

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

    /// The schema's name of an array of `item`s, which both wires write where anyType holds
    /// one (SOAP's `xsi:type`, VI/JSON's box): `string` → `ArrayOfString`,
    /// `ManagedObjectReference` → `ArrayOfManagedObjectReference`.
    pub fn array_type(item: &str) -> String {
        let mut s = String::from("ArrayOf");
        let mut cs = item.chars();
        if let Some(c) = cs.next() {
            s.extend(c.to_uppercase());
            s.push_str(cs.as_str());
        }
        s
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
