//! The WSDL over HTTPS, as a WSDL-driven client reads it: `vimService.wsdl`, the `vim.wsdl` it
//! imports, every served method an operation whose references all resolve, and SOAP answered
//! at the address the WSDL gives.

mod common;

use std::collections::HashSet;

use common::envelope;
use esxi_sim::soap::xml::{parse, Element};
use esxi_sim::vim::registry::TYPES;
use esxi_sim_tests::start;
use hyper::{Method, StatusCode};

/// `GET path` without a session: 200, an XML content type, the parsed document.
async fn fetch(c: &mut esxi_harness::client::Client, path: &str) -> (Element, String) {
    let r = c.get(path).await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{path}");
    let ct = r.headers.get("content-type").unwrap().to_str().unwrap();
    assert!(ct.starts_with("text/xml"), "{path}: {ct}");
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    (parse(&r.body).unwrap(), text)
}

/// The local part of a `vim25:X` reference, checking its prefix.
fn local(qname: &str) -> &str {
    qname
        .strip_prefix("vim25:")
        .unwrap_or_else(|| panic!("{qname} is not in vim25"))
}

fn names<'a>(parent: &'a Element, kind: &'a str) -> HashSet<&'a str> {
    parent.all(kind).filter_map(|e| e.attr("name")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_is_an_operation_whose_references_resolve() {
    let ts = start("8.0U3", 31).await;
    let mut c = ts.client();

    let (service, text) = fetch(&mut c, "/sdk/vimService.wsdl").await;
    assert_eq!(service.name, "definitions");
    assert!(text.contains("xmlns:vim25=\"urn:vim25\""));
    let import = service.child("import").unwrap();
    assert_eq!(import.attr("namespace"), Some("urn:vim25"));
    // Relative to the WSDL's own URL.
    let location = import.attr("location").unwrap();
    assert!(!location.contains('/'), "{location}");
    let port = service.child("service").unwrap().child("port").unwrap();
    assert_eq!(
        service.child("service").unwrap().attr("name"),
        Some("VimService")
    );
    assert_eq!(port.attr("name"), Some("VimPort"));
    let binding_ref = local(port.attr("binding").unwrap()).to_string();
    let address = port.child("address").unwrap().attr("location").unwrap();
    assert_eq!(address, "https://localhost/sdk/vimService");

    let (vim, text) = fetch(&mut c, &format!("/sdk/{location}")).await;
    assert_eq!(vim.attr("targetNamespace"), Some("urn:vim25"));
    assert!(text.contains("xmlns:vim25=\"urn:vim25\""));
    let schema = vim.child("types").unwrap().child("schema").unwrap();
    assert_eq!(schema.attr("targetNamespace"), Some("urn:vim25"));
    let elements = names(schema, "element");
    let types = names(schema, "complexType");
    let messages: Vec<&Element> = vim.all("message").collect();
    let message_names = names(&vim, "message");
    let port_type = vim.child("portType").unwrap();
    let binding = vim.child("binding").unwrap();
    assert_eq!(binding.attr("name"), Some(binding_ref.as_str()));
    assert_eq!(
        local(binding.attr("type").unwrap()),
        port_type.attr("name").unwrap()
    );
    assert_eq!(
        binding.child("binding").unwrap().attr("style"),
        Some("document")
    );

    // Every type reference in the schema resolves (xsd: names are built in).
    let mut refs = 0;
    let mut stack: Vec<&Element> = schema.children.iter().collect();
    while let Some(e) = stack.pop() {
        for attr in ["type", "base"] {
            if let Some(t) = e.attr(attr) {
                refs += 1;
                if !t.starts_with("xsd:") {
                    assert!(types.contains(local(t)), "{} {attr}={t}", e.name);
                }
            }
        }
        stack.extend(e.children.iter());
    }
    assert!(refs > 100, "{refs}");
    // Every message part names a schema element.
    for m in &messages {
        for part in m.all("part") {
            let el = local(part.attr("element").unwrap());
            assert!(elements.contains(el), "{:?}: {el}", m.attr("name"));
        }
    }

    let mut served = HashSet::new();
    for t in TYPES {
        for m in t.methods {
            served.insert(*m);
            let op = port_type
                .all("operation")
                .find(|o| o.attr("name") == Some(m))
                .unwrap_or_else(|| panic!("no operation {m}"));
            for (dir, want) in [
                ("input", format!("{m}RequestMsg")),
                ("output", format!("{m}ResponseMsg")),
            ] {
                let msg = local(op.child(dir).unwrap().attr("message").unwrap());
                assert_eq!(msg, want);
                assert!(message_names.contains(msg), "{m}: no message {msg}");
            }
            for f in op.all("fault") {
                assert!(message_names.contains(local(f.attr("message").unwrap())));
            }
            // The request element: `_this` first, a MoRef.
            assert!(elements.contains(m) && elements.contains(format!("{m}Response").as_str()));
            let req_ty = schema
                .all("complexType")
                .find(|c| c.attr("name") == Some(&format!("{m}RequestType")))
                .unwrap_or_else(|| panic!("no {m}RequestType"));
            let first = &req_ty.child("sequence").unwrap().children[0];
            assert_eq!(first.attr("name"), Some("_this"), "{m}");
            assert_eq!(first.attr("type"), Some("vim25:ManagedObjectReference"));

            let bop = binding
                .all("operation")
                .find(|o| o.attr("name") == Some(m))
                .unwrap_or_else(|| panic!("no binding for {m}"));
            let soap_op = bop.child("operation").unwrap();
            assert_eq!(soap_op.attr("soapAction"), Some("urn:vim25/8.0.3.0"), "{m}");
            for dir in ["input", "output"] {
                let body = bop.child(dir).unwrap().child("body").unwrap();
                assert_eq!(body.attr("use"), Some("literal"));
            }
        }
    }
    // Nothing described that is not served, each once.
    let ops: Vec<&str> = port_type
        .all("operation")
        .filter_map(|o| o.attr("name"))
        .collect();
    assert_eq!(ops.len(), served.len());
    assert_eq!(ops.iter().copied().collect::<HashSet<_>>(), served);
    assert_eq!(binding.all("operation").count(), served.len());
    // Parameters the handlers read are declared (RetrievePropertiesEx: specSet, options).
    let ex = schema
        .all("complexType")
        .find(|c| c.attr("name") == Some("RetrievePropertiesExRequestType"))
        .unwrap();
    let params: Vec<_> = ex
        .child("sequence")
        .unwrap()
        .all("element")
        .filter_map(|e| e.attr("name"))
        .collect();
    assert_eq!(params, ["_this", "specSet", "options"]);

    // No other documents; POST to the WSDL is SOAP, as node-vsphere-soap sends it.
    for p in ["/sdk/vim.xsd", "/sdk/other.wsdl", "/vimService.wsdl"] {
        assert_eq!(c.get(p).await.unwrap().status, StatusCode::NOT_FOUND, "{p}");
    }
    let call = envelope(
        "<RetrieveServiceContent xmlns=\"urn:vim25\"><_this>ServiceInstance</_this>\
         </RetrieveServiceContent>",
    );
    for path in ["/sdk/vimService", "/sdk/vimService.wsdl"] {
        let r = c
            .http(
                Method::POST,
                path,
                &[("content-type", "text/xml".into())],
                call.clone(),
            )
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let body = String::from_utf8(r.body.to_vec()).unwrap();
        assert!(
            body.contains("<sessionManager type=\"SessionManager\">"),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soap_action_is_the_hosts_api_version() {
    let ts = start("6.7U3", 32).await;
    let (vim, _) = fetch(&mut ts.client(), "/sdk/vim.wsdl").await;
    let binding = vim.child("binding").unwrap();
    let actions: HashSet<_> = binding
        .all("operation")
        .map(|o| o.child("operation").unwrap().attr("soapAction").unwrap())
        .collect();
    assert_eq!(actions, HashSet::from(["urn:vim25/6.7.3"]));
}
