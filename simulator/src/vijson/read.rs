//! A VI/JSON call's body, one JSON object of parameters, read into the same [`Param`] tree a SOAP
//! envelope gives ([`crate::soap::parse_with`]): an array is its items repeated under one name,
//! a reference is a `ref_type` and its id as text, a data object's `_typeName` (or a box's) is
//! the declared type, as SOAP's `xsi:type`.
//!
//! What real clients send is tolerated: no `_typeName` on the body (govmomi) or on a reference,
//! the body's `_typeName` as `<Method>RequestType` or anything else, `null` for an unset
//! parameter, no body at all for a call without parameters (`vim_rs`). Hostile input is
//! bounded as the XML reader is: the server caps the size, and nesting deeper than
//! [`crate::soap::xml::MAX_DEPTH`] is refused (serde_json stops at 128 before that).

use serde_json::{Map, Value as Json};

use crate::api::{Fault, Param};
use crate::soap::xml::MAX_DEPTH;

/// The parameters of `method`: the children of one node named after it, as from SOAP.
pub fn params(method: &str, body: &[u8]) -> Result<Param, Fault> {
    let mut root = Param {
        name: method.to_string(),
        ..Param::default()
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(root);
    }
    let json: Json = serde_json::from_slice(body)
        .map_err(|e| Fault::invalid_request(format!("the request body is not JSON: {e}")))?;
    let obj = match json {
        Json::Object(o) => o,
        Json::Null => return Ok(root),
        other => {
            return Err(Fault::invalid_request(format!(
                "the request body must be a JSON object of parameters, not {}",
                kind(&other)
            )))
        }
    };
    for (k, v) in obj {
        // The URL names the object; the body's own type name says nothing more.
        if k == "_typeName" || k == "_this" {
            continue;
        }
        field(&k, v, 1, &mut root.children)?;
    }
    Ok(root)
}

/// Adds field `name` = `v` to `out`: nothing for null, one Param per item for an array.
fn field(name: &str, v: Json, depth: usize, out: &mut Vec<Param>) -> Result<(), Fault> {
    match v {
        Json::Null => Ok(()),
        Json::Array(items) => {
            for item in items {
                if item.is_array() {
                    return Err(bad(name, "an array of arrays is no VI/JSON value"));
                }
                field(name, item, depth + 1, out)?;
            }
            Ok(())
        }
        v => {
            out.push(one(name, v, depth)?);
            Ok(())
        }
    }
}

fn one(name: &str, v: Json, depth: usize) -> Result<Param, Fault> {
    if depth > MAX_DEPTH {
        return Err(Fault::invalid_request(format!(
            "the request body nests deeper than {MAX_DEPTH}"
        )));
    }
    let mut p = Param {
        name: name.to_string(),
        ..Param::default()
    };
    match v {
        Json::String(s) => p.text = s,
        Json::Number(n) => p.text = n.to_string(),
        Json::Bool(b) => p.text = b.to_string(),
        Json::Object(o) => object(&mut p, o, depth)?,
        Json::Null | Json::Array(_) => unreachable!("handled by field"),
    }
    Ok(p)
}

fn object(p: &mut Param, mut o: Map<String, Json>, depth: usize) -> Result<(), Fault> {
    let ty = match o.remove("_typeName") {
        Some(Json::String(t)) => Some(t),
        None | Some(Json::Null) => None,
        Some(_) => return Err(bad(&p.name, "_typeName must be a string")),
    };
    // A reference: typed as one, or (no _typeName) exactly `type` and `value`.
    let is_ref = match ty.as_deref() {
        Some("ManagedObjectReference") => true,
        Some(_) => false,
        None => {
            o.len() == 2
                && o.get("type").is_some_and(Json::is_string)
                && o.get("value").is_some_and(Json::is_string)
        }
    };
    if is_ref {
        let (Some(Json::String(t)), Some(Json::String(id))) = (o.remove("type"), o.remove("value"))
        else {
            return Err(bad(
                &p.name,
                "a ManagedObjectReference needs string `type` and `value`",
            ));
        };
        p.ref_type = Some(t);
        p.text = id;
        return Ok(());
    }
    if let Some(boxed) = o.remove("_value") {
        // An anyType box: `{"_typeName":"string","_value":"x"}`, an array's items named after
        // its item type as SOAP's `<val xsi:type="ArrayOfString"><string>` are.
        let ty = ty.ok_or_else(|| bad(&p.name, "a boxed `_value` needs its `_typeName`"))?;
        match boxed {
            Json::Array(items) => {
                let item = item_name(&ty);
                field(&item, Json::Array(items), depth + 1, &mut p.children)?;
            }
            Json::Object(inner) => object(p, inner, depth + 1)?,
            Json::Null => {}
            prim => p.text = one(&p.name, prim, depth + 1)?.text,
        }
        p.declared_type = Some(ty);
        return Ok(());
    }
    p.declared_type = ty;
    for (k, v) in o {
        field(&k, v, depth + 1, &mut p.children)?;
    }
    Ok(())
}

/// `ArrayOfString` → `string`, `ArrayOfOptionValue` → `OptionValue`; the primitives' names
/// start lower-case (`int`, `dateTime`, `anyURI`, `base64Binary`).
fn item_name(array_type: &str) -> String {
    let item = array_type.strip_prefix("ArrayOf").unwrap_or(array_type);
    const PRIMITIVES: &[&str] = &[
        "string",
        "int",
        "long",
        "short",
        "byte",
        "boolean",
        "float",
        "double",
        "dateTime",
        "anyURI",
        "base64Binary",
        "anyType",
    ];
    PRIMITIVES
        .iter()
        .find(|p| p.eq_ignore_ascii_case(item))
        .map(|p| p.to_string())
        .unwrap_or_else(|| item.to_string())
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn bad(name: &str, why: &str) -> Fault {
    Fault::invalid_argument(format!("{name}: {why}"), Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::call::{parse_bool, parse_int, parse_moref};
    use crate::api::MoRef;

    #[test]
    fn reads_what_vim_rs_and_govmomi_send() {
        let p = params(
            "Login",
            br#"{"_typeName":"LoginRequestType","userName":"root","password":"p\"w","locale":null}"#,
        )
        .unwrap();
        assert_eq!(p.name, "Login");
        assert_eq!(p.child_text("userName"), Some("root"));
        assert_eq!(p.child_text("password"), Some("p\"w"));
        assert!(p.child("locale").is_none(), "null is unset");
        assert_eq!(params("Logout", b"").unwrap().children.len(), 0);
        assert_eq!(params("Logout", b"  \n").unwrap().children.len(), 0);
    }

    #[test]
    fn references_arrays_boxes_and_data_objects() {
        let p = params(
            "RetrievePropertiesEx",
            br#"{"specSet":[{"_typeName":"PropertyFilterSpec",
                "propSet":[{"_typeName":"PropertySpec","type":"HostSystem","pathSet":["name","runtime"]}],
                "objectSet":[{"obj":{"type":"HostSystem","value":"host-12"},"skip":false,
                  "selectSet":[{"_typeName":"TraversalSpec","name":"t","path":"childEntity"}]}]}],
              "options":{"maxObjects":100},
              "force":true,
              "val":{"_typeName":"ArrayOfString","_value":["a","b"]},
              "one":{"_typeName":"int","_value":7},
              "typed":{"_typeName":"ManagedObjectReference","type":"Folder","value":"group-d1"}}"#,
        )
        .unwrap();
        let spec = p.child("specSet").unwrap();
        assert_eq!(spec.declared_type.as_deref(), Some("PropertyFilterSpec"));
        let prop = spec.child("propSet").unwrap();
        // `type` on a data object that is not a reference is a field.
        assert_eq!(prop.child_text("type"), Some("HostSystem"));
        assert_eq!(prop.all("pathSet").count(), 2);
        let os = spec.child("objectSet").unwrap();
        assert_eq!(
            parse_moref(os.child("obj").unwrap()),
            Ok(MoRef::new("HostSystem", "host-12"))
        );
        assert_eq!(parse_bool(os.child("skip").unwrap()), Ok(false));
        let sel = os.child("selectSet").unwrap();
        assert_eq!(sel.declared_type.as_deref(), Some("TraversalSpec"));
        assert_eq!(
            parse_int(p.child("options").unwrap().child("maxObjects").unwrap()),
            Ok(100)
        );
        let val = p.child("val").unwrap();
        assert_eq!(val.declared_type.as_deref(), Some("ArrayOfString"));
        assert_eq!(val.all("string").count(), 2);
        let one = p.child("one").unwrap();
        assert_eq!(
            (one.declared_type.as_deref(), one.text.as_str()),
            (Some("int"), "7")
        );
        assert_eq!(
            parse_moref(p.child("typed").unwrap()),
            Ok(MoRef::new("Folder", "group-d1"))
        );
    }

    #[test]
    fn bad_bodies_are_faults() {
        for (body, ty, says) in [
            (&b"{"[..], "InvalidRequest", "not JSON"),
            (b"[1,2]", "InvalidRequest", "not an array"),
            (b"\"x\"", "InvalidRequest", "not a string"),
            (br#"{"a":[[1]]}"#, "InvalidArgument", "array of arrays"),
            (br#"{"a":{"_typeName":5}}"#, "InvalidArgument", "_typeName"),
            (br#"{"a":{"_value":5}}"#, "InvalidArgument", "_typeName"),
            (
                br#"{"a":{"_typeName":"ManagedObjectReference","type":1}}"#,
                "InvalidArgument",
                "string `type` and `value`",
            ),
            (b"{\"a\":\xff}", "InvalidRequest", "not JSON"),
        ] {
            let f = params("M", body).unwrap_err();
            assert_eq!(f.ty, ty, "{}", String::from_utf8_lossy(body));
            assert!(f.message.contains(says), "{}: {}", f.message, says);
        }
        // Deeper than the XML reader allows: refused, not a stack overflow.
        let deep = "{\"a\":".repeat(MAX_DEPTH + 2) + "1" + &"}".repeat(MAX_DEPTH + 2);
        let f = params("M", deep.as_bytes()).unwrap_err();
        assert!(f.message.contains("deeper"), "{}", f.message);
        let deeper = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(
            params("M", deeper.as_bytes()).unwrap_err().ty,
            "InvalidRequest"
        );
    }

    /// A JSON value of any shape the reader may meet: the special keys, references, boxes.
    fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            "[a-zA-Z_ ]{0,8}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            let key = prop_oneof![
                Just("_typeName".to_string()),
                Just("_value".to_string()),
                Just("type".to_string()),
                Just("value".to_string()),
                Just("_this".to_string()),
                "[a-z]{1,6}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(key, inner, 0..5)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever the body, a Param tree or a fault of the two kinds a bad body is; never a
        /// panic.
        #[test]
        fn any_body_is_params_or_a_request_fault(v in any_json(), junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            for body in [serde_json::to_vec(&v).unwrap(), junk] {
                if let Err(f) = params("M", &body) {
                    proptest::prop_assert!(
                        f.ty == "InvalidRequest" || f.ty == "InvalidArgument",
                        "{}", f
                    );
                }
            }
        }
    }
}
