//! A decoded call, whatever the wire it came by: the method, the object it is called on, and its
//! parameters as a tree of [`Param`]s. SOAP reads its envelope into one ([`crate::soap`]); the
//! managed objects ([`crate::vim`]) read their parameters from it, never from the wire.

use super::MoRef;

/// `Method(_this, params...)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub method: String,
    pub this: MoRef,
    /// The parameters, as the children of one node named after the method.
    pub params: Param,
}

impl Call {
    /// The first parameter of this name.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.child(name)
    }
}

/// A parameter, or a field or item of one: its name, the type the wire declared for it (SOAP's
/// `xsi:type` without its prefix; where the schema says a base type, which one was sent), a
/// managed-object reference's type, the text of a primitive or a reference's id, and its
/// fields or items in order (an array is its items repeated under one name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub declared_type: Option<String>,
    pub ref_type: Option<String>,
    pub text: String,
    pub children: Vec<Param>,
}

impl Param {
    /// The first field with this name.
    pub fn child(&self, name: &str) -> Option<&Param> {
        self.children.iter().find(|c| c.name == name)
    }
    /// Every field with this name (an array's items).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Param> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    /// The trimmed text of a field.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }
}

/// A managed-object reference: its type and its id.
pub fn parse_moref(p: &Param) -> Result<MoRef, String> {
    let ty = p
        .ref_type
        .as_deref()
        .ok_or_else(|| format!("<{}> is a managed object reference without a type", p.name))?;
    let id = p.text.trim();
    if id.is_empty() {
        return Err(format!(
            "<{}> is a managed object reference without an id",
            p.name
        ));
    }
    Ok(MoRef::new(ty, id))
}

/// `xsd:boolean`: `true`/`false`/`1`/`0`.
pub fn parse_bool(p: &Param) -> Result<bool, String> {
    match p.text.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(format!("<{}>: '{other}' is not a boolean", p.name)),
    }
}

pub fn parse_int(p: &Param) -> Result<i64, String> {
    p.text
        .trim()
        .parse()
        .map_err(|_| format!("<{}>: '{}' is not an integer", p.name, p.text.trim()))
}
