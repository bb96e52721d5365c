//! A vSphere fault, whatever the wire: its type (`InvalidLogin`, `MismatchedBundle`, ...), its
//! message and its fields in schema order. SOAP writes it as a `soapenv:Fault` with HTTP 500
//! ([`crate::soap`]).

use super::{Data, Value};

/// A vSphere fault: its type (`InvalidLogin`, `MismatchedBundle`, ...), message and fields in
/// schema order.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub ty: &'static str,
    pub message: String,
    pub fields: Vec<(&'static str, Value)>,
}

impl Fault {
    pub fn new(ty: &'static str, message: impl Into<String>) -> Fault {
        Fault {
            ty,
            message: message.into(),
            fields: Vec::new(),
        }
    }
    pub fn with(mut self, name: &'static str, v: impl Into<Value>) -> Fault {
        self.fields.push((name, v.into()));
        self
    }
    pub fn invalid_request(msg: impl Into<String>) -> Fault {
        Fault::new("InvalidRequest", msg)
    }
    pub fn invalid_argument(msg: impl Into<String>, property: Option<&str>) -> Fault {
        let f = Fault::new("InvalidArgument", msg);
        match property {
            Some(p) => f.with("invalidProperty", p),
            None => f,
        }
    }
    pub fn not_authenticated() -> Fault {
        Fault::new("NotAuthenticated", "The session is not authenticated.")
    }

    /// The fault as a data object (`TaskInfo.error.fault`, `MissingProperty.fault`).
    pub fn as_data(&self) -> Data {
        Data {
            ty: self.ty,
            fields: self.fields.clone(),
        }
    }

    /// `LocalizedMethodFault` for task errors.
    pub fn localized(&self) -> Data {
        Data::new("LocalizedMethodFault")
            .with("fault", self.as_data())
            .with("localizedMessage", self.message.as_str())
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.ty, self.message)
    }
}
