//! The VI/JSON reader and the same dispatch behind it.
//!
//! An input is one to four requests separated by [`NEXT`], each a line `METHOD TYPE:ID` (what
//! the URL `/sdk/vim25/{release}/{TYPE}/{ID}/{METHOD}` names) and the JSON body as `POST`
//! receives it. Each body goes through [`vijson::params`] (what the server decodes with) and
//! each decoded call through the SOAP target's dispatch ([`Soap`]): the same three endpoints,
//! with and without a session, the same `@REF@`/`@TOKEN@`/`@SESSION@` substitutions and the same
//! invariants (read-only calls change nothing, a running endpoint still answers).
//!
//! Checked besides: a body that does not decode is `InvalidRequest` or `InvalidArgument` and
//! its fault is written as JSON that parses; every answer, value or fault, is written as VI/JSON
//! writes it (a method's value, a property read, a fault object) and parses back as JSON.
//!
//! Generation reuses the SOAP target's structure-aware calls: each decodable envelope is turned
//! into the JSON a client would send for the same call (with or without `_typeName`s, numbers
//! and booleans as JSON or as strings, `null`s, a stray `_this`), the rest into hostile JSON; then
//! byte-level havoc on a fifth of them.

use esxi_sim::api::{Call, Fault, MoRef, Param, Value};
use esxi_sim::rng::Rng;
use esxi_sim::{soap, vijson};

use crate::driver::Target;
use crate::mutate::{chance, havoc};
use crate::soap::{shape, split, Soap, NEXT};

pub struct ViJson {
    soap: Soap,
}

impl ViJson {
    pub fn new() -> Result<ViJson, String> {
        Ok(ViJson { soap: Soap::new()? })
    }
}

/// Every answer must be JSON as VI/JSON writes it.
fn check_json(method: &str, r: &Result<Option<Value>, Fault>) -> Result<(), String> {
    let docs = match r {
        Ok(None) => return Ok(()),
        Ok(Some(v)) => vec![vijson::value(v), vijson::property(v)],
        Err(f) => vec![vijson::fault(f)],
    };
    for d in docs {
        serde_json::from_str::<serde_json::Value>(&d).map_err(|e| {
            format!(
                "{method}: the {} we write is not JSON: {e}",
                if r.is_ok() { "value" } else { "fault" }
            )
        })?;
    }
    Ok(())
}

/// `METHOD TYPE:ID` and the body.
fn request(r: &[u8]) -> Option<(String, MoRef, &[u8])> {
    let nl = r.iter().position(|&b| b == b'\n')?;
    let head = std::str::from_utf8(&r[..nl]).ok()?;
    let (method, this) = head.split_once(' ')?;
    let (ty, id) = this.split_once(':')?;
    Some((method.to_string(), MoRef::new(ty, id), &r[nl + 1..]))
}

impl Target for ViJson {
    fn name(&self) -> &'static str {
        "vijson"
    }

    fn generate(&self, rng: &mut Rng) -> Vec<u8> {
        generate(rng)
    }

    fn heap_bound(&self, input: &[u8]) -> usize {
        // As the SOAP target's: a serde_json tree is a few words per value besides.
        (64 << 20) + input.len() * 96
    }

    fn run(&mut self, input: &[u8]) -> Result<String, String> {
        let mut calls = Vec::new();
        let mut class = None;
        for r in split(input) {
            let Some((method, this, body)) = request(r) else {
                class.get_or_insert_with(|| "no request line".to_string());
                continue;
            };
            match vijson::params(&method, body) {
                Ok(params) => calls.push(Call {
                    method,
                    this,
                    params,
                }),
                Err(f) => {
                    if f.ty != "InvalidRequest" && f.ty != "InvalidArgument" {
                        return Err(format!("a body that does not decode gave {f}"));
                    }
                    check_json("?", &Err(f.clone()))?;
                    class.get_or_insert_with(|| format!("parse: {}", shape(&f.message)));
                }
            }
        }
        self.soap.dispatch(&calls, class, check_json)
    }
}

// ---- generation ----------------------------------------------------------------------------

const DICT: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b"\\u0000",
    b"\\ud800",
    b"\"_typeName\":",
    b"\"_value\":",
    b"\"ManagedObjectReference\"",
    b"\"type\":",
    b"\"value\":",
    b"{\"_typeName\":\"ArrayOfString\",\"_value\":[",
    b"[[[[[[[[",
];

pub fn generate(rng: &mut Rng) -> Vec<u8> {
    let envelopes = crate::soap::generate(rng);
    let mut rng = Rng::new(rng.next_u64());
    let mut out = Vec::new();
    for (i, env) in split(&envelopes).into_iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(NEXT);
        }
        let (head, mut body) = match soap::parse_with(env, esxi_sim::vim::registry::declaring_type)
        {
            Ok(call) => {
                let mut body = String::new();
                object(&mut rng, &call.params, true, &mut body);
                (
                    format!("{} {}:{}", call.method, call.this.ty, call.this.id),
                    body.into_bytes(),
                )
            }
            // What no envelope decodes to: hostile JSON around its bytes.
            Err(_) => {
                let text = String::from_utf8_lossy(env);
                let mut body = serde_json::json!({ "x": text }).to_string().into_bytes();
                havoc(&mut rng, &mut body, DICT, 16, 1 << 20);
                (
                    "RetrievePropertiesEx PropertyCollector:ha-property-collector".to_string(),
                    body,
                )
            }
        };
        // The SOAP generator's own havoc already made some calls junk: less on top.
        if chance(&mut rng, 1, 8) {
            havoc(&mut rng, &mut body, DICT, 8, 1 << 20);
        }
        out.extend_from_slice(head.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(&body);
    }
    out
}

/// A Param's fields as one JSON object; `top`: the call's body (its `_typeName` is the
/// request type's, sometimes; a `_this` sometimes rides along).
fn object(rng: &mut Rng, p: &Param, top: bool, out: &mut String) {
    out.push('{');
    let mut first = true;
    let mut key = |out: &mut String, k: &str| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&serde_json::Value::from(k).to_string());
        out.push(':');
    };
    let ty = match (&p.declared_type, top) {
        (_, true) if chance(rng, 1, 3) => Some(format!("{}RequestType", p.name)),
        (Some(t), false) if !chance(rng, 1, 4) => Some(t.clone()),
        _ => None,
    };
    if let Some(t) = ty {
        key(out, "_typeName");
        out.push_str(&serde_json::Value::from(t).to_string());
    }
    // Fields in order of first appearance; a repeated one is an array.
    let mut names: Vec<&str> = Vec::new();
    for c in &p.children {
        let seen = names.contains(&c.name.as_str());
        // SOAP's `_this` is the URL's here; now and then a client sends it anyway.
        let this_dropped = top && c.name == "_this" && !chance(rng, 1, 8);
        if !seen && !this_dropped {
            names.push(&c.name);
        }
    }
    for n in names {
        let items: Vec<&Param> = p.all(n).collect();
        key(out, n);
        if items.len() > 1 || chance(rng, 1, 6) {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                value(rng, it, out);
            }
            out.push(']');
        } else {
            value(rng, items[0], out);
        }
    }
    out.push('}');
}

fn value(rng: &mut Rng, p: &Param, out: &mut String) {
    if chance(rng, 1, 40) {
        out.push_str("null");
        return;
    }
    if let Some(t) = &p.ref_type {
        let typed = !chance(rng, 1, 3);
        out.push_str(&format!(
            "{{{}\"type\":{},\"value\":{}}}",
            if typed {
                "\"_typeName\":\"ManagedObjectReference\","
            } else {
                ""
            },
            serde_json::Value::from(t.as_str()),
            serde_json::Value::from(p.text.as_str())
        ));
        return;
    }
    if !p.children.is_empty() {
        object(rng, p, false, out);
        return;
    }
    let text = p.text.trim();
    let native = !chance(rng, 1, 4);
    let scalar = match text {
        "true" | "false" if native => text.to_string(),
        t if native && t.parse::<i64>().is_ok() => t.to_string(),
        t => serde_json::Value::from(t).to_string(),
    };
    // A primitive whose type was declared (anyType positions): boxed.
    match &p.declared_type {
        Some(t) if !chance(rng, 1, 4) => out.push_str(&format!(
            "{{\"_typeName\":{},\"_value\":{scalar}}}",
            serde_json::Value::from(t.as_str())
        )),
        _ => out.push_str(&scalar),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_mostly_decodes() {
        let a: Vec<Vec<u8>> = (0..200).map(|i| generate(&mut Rng::new(i))).collect();
        let b: Vec<Vec<u8>> = (0..200).map(|i| generate(&mut Rng::new(i))).collect();
        assert_eq!(a, b);
        let decoded = a
            .iter()
            .filter(|x| {
                split(x).iter().all(|r| {
                    request(r).is_some_and(|(m, _, body)| vijson::params(&m, body).is_ok())
                })
            })
            .count();
        // Most inputs reach the dispatch whole (the rest test the reader).
        assert!(decoded > 60, "only {decoded} of 200 decode");
    }
}
