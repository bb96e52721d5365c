//! `GET /sdk/vimService.wsdl` and `GET /sdk/vim.wsdl`: the WSDL that WSDL-driven clients (npm
//! `soap` and `node-vsphere-soap`, generated stubs in other languages) fetch before their
//! first call, as a real host serves it without a session.
//!
//! Written by us, generated from what we serve: one operation per method in
//! [`registry::TYPES`](crate::vim::registry::TYPES), its parameters from [`PARAMS`] (the names
//! the handlers read, typed `xsd:anyType` since we model no data types), every answer a
//! sequence of `anyType` `returnval`s. That is enough for a client to build the right request
//! element and read the answer; it is not VMware's schema, and none of their text is here.
//!
//! As on a host, `vimService.wsdl` holds only the service and imports `vim.wsdl` (types,
//! messages, port type, binding). The binding's soapAction is `urn:vim25/<apiVersion>`, what
//! pyVmomi sends, so the documents differ per API version; each is built once per process.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::{Body, HostDown, Resp, Shared};
use crate::vim::registry::TYPES;

/// The documents' names under `/sdk/`: the entry point first, then what it imports.
pub const NAMES: &[&str] = &["vimService.wsdl", "vim.wsdl"];

/// Where the service says it is: what a real host's WSDL says, whatever its address (clients
/// replace it with the URL they connected to).
pub const LOCATION: &str = "https://localhost/sdk/vimService";

/// Parameters after `_this`, in the API's order, for methods that take any: the names the
/// handlers read (`req.param`, `required`, `all`), plus the API's other parameters of those
/// methods that a client may send. `[]`: may repeat. A method not here takes only `_this`.
pub const PARAMS: &[(&str, &[&str])] = &[
    ("RetrieveProperties", &["specSet[]"]),
    ("RetrievePropertiesEx", &["specSet[]", "options"]),
    ("ContinueRetrievePropertiesEx", &["token"]),
    ("CancelRetrievePropertiesEx", &["token"]),
    ("CreateFilter", &["spec", "partialUpdates"]),
    ("WaitForUpdates", &["version"]),
    ("WaitForUpdatesEx", &["version", "options"]),
    ("CheckForUpdates", &["version"]),
    (
        "EnterMaintenanceMode_Task",
        &["timeout", "evacuatePoweredOffVms", "maintenanceSpec"],
    ),
    ("ExitMaintenanceMode_Task", &["timeout"]),
    ("RebootHost_Task", &["force"]),
    ("ShutdownHost_Task", &["force"]),
    ("Login", &["userName", "password", "locale"]),
    ("SessionIsActive", &["sessionID", "userName"]),
    ("RestoreFirmwareConfiguration", &["force"]),
    ("CreateContainerView", &["container", "type[]", "recursive"]),
    ("CreateListView", &["obj[]"]),
    ("CreateListViewFromView", &["view"]),
    ("ModifyListView", &["add[]", "remove[]"]),
    ("ResetListView", &["obj[]"]),
    ("ResetListViewFromView", &["view"]),
    ("CreateUser", &["user"]),
    ("UpdateUser", &["user"]),
    ("RemoveUser", &["userName"]),
    ("QueryOptions", &["name"]),
    ("UpdateOptions", &["changedValue[]"]),
    ("FindByInventoryPath", &["inventoryPath"]),
    ("FindChild", &["entity", "name"]),
    (
        "FindByUuid",
        &["datacenter", "uuid", "vmSearch", "instanceUuid"],
    ),
    ("FindByDnsName", &["datacenter", "dnsName", "vmSearch"]),
    ("FindByIp", &["datacenter", "ip", "vmSearch"]),
    (
        "FindAllByUuid",
        &["datacenter", "uuid", "vmSearch", "instanceUuid"],
    ),
    ("FindAllByDnsName", &["datacenter", "dnsName", "vmSearch"]),
    ("FindAllByIp", &["datacenter", "ip", "vmSearch"]),
    ("FindByDatastorePath", &["datacenter", "path"]),
    ("QueryEvents", &["filter"]),
    ("CreateCollectorForEvents", &["filter"]),
    ("PostEvent", &["eventToPost", "taskInfo"]),
    ("LogUserEvent", &["entity", "msg"]),
    ("RetrieveArgumentDescription", &["eventTypeId"]),
    ("SetCollectorPageSize", &["maxCount"]),
    ("ReadNextEvents", &["maxCount"]),
    ("ReadPreviousEvents", &["maxCount"]),
    ("CreateCollectorForTasks", &["filter"]),
    ("ReadNextTasks", &["maxCount"]),
    ("ReadPreviousTasks", &["maxCount"]),
    ("QueryPerfCounter", &["counterId[]"]),
    ("QueryPerfCounterByLevel", &["level"]),
    ("QueryPerf", &["querySpec[]"]),
    ("QueryPerfComposite", &["querySpec"]),
    (
        "QueryAvailablePerfMetric",
        &["entity", "beginTime", "endTime", "intervalId"],
    ),
    ("QueryPerfProviderSummary", &["entity"]),
    ("UpdateDateTime", &["dateTime"]),
    ("UpdateDateTimeConfig", &["config"]),
    ("ExecuteSoap", &["moid", "version", "method", "argument[]"]),
    ("DynamicTypeMgrQueryMoInstances", &["filterSpec"]),
    ("DynamicTypeMgrQueryTypeInfo", &["filterSpec"]),
];

/// Methods whose answer is an array (in the API and in what the handlers return): their
/// `returnval` may repeat. Every other answer is at most one `returnval`, which is what clients
/// that type answers by the WSDL (npm `soap`) need to read `result.returnval.x`.
pub const RETURNS_ARRAY: &[&str] = &[
    "RetrieveProperties",
    "FindAllByUuid",
    "FindAllByDnsName",
    "FindAllByIp",
    "QueryOptions",
    "QueryEvents",
    "ReadNextEvents",
    "ReadPreviousEvents",
    "ReadNextTasks",
    "ReadPreviousTasks",
    "RetrieveArgumentDescription",
    "QueryPerfCounter",
    "QueryPerfCounterByLevel",
    "QueryPerf",
    "QueryAvailablePerfMetric",
    "QueryAvailableTimeZones",
    "DynamicTypeMgrQueryMoInstances",
];

/// Every method name once (a name on two types, `DestroyView`, is one operation: a document
/// binding tells calls apart by the request element, and `_this` names the object).
pub fn methods() -> Vec<&'static str> {
    let mut seen = Vec::new();
    for m in TYPES.iter().flat_map(|t| t.methods) {
        if !seen.contains(m) {
            seen.push(*m);
        }
    }
    seen
}

/// The document `name` (one of [`NAMES`]) for a host of API version `api_version`.
pub fn document(name: &str, api_version: &str) -> Option<Bytes> {
    // A handful of API versions per process at most (one per profile).
    static BUILT: Mutex<Vec<(String, Arc<[Bytes; 2]>)>> = Mutex::new(Vec::new());
    let i = NAMES.iter().position(|n| *n == name)?;
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let docs = match built.iter().find(|(v, _)| v == api_version) {
        Some((_, d)) => d.clone(),
        None => {
            let d = Arc::new([
                Bytes::from(service_wsdl()),
                Bytes::from(vim_wsdl(api_version)),
            ]);
            built.push((api_version.to_string(), d.clone()));
            d
        }
    };
    Some(docs[i].clone())
}

/// Whether `path` is one of the documents (the route's guard).
pub fn serves(path: &str) -> bool {
    path.strip_prefix("/sdk/")
        .is_some_and(|n| NAMES.contains(&n))
}

/// `GET /sdk/<name>`: no session needed, as on a host; down with the host like the SOAP port.
pub fn get(shared: &Shared, path: &str) -> Result<Resp, HostDown> {
    let api_version = {
        let vim = shared.lock();
        if !vim.reachable() {
            return Err(HostDown);
        }
        vim.host.profile().api_version.clone()
    };
    let name = path.strip_prefix("/sdk/").unwrap_or(path);
    let Some(body) = document(name, &api_version) else {
        return Ok(super::text(StatusCode::NOT_FOUND, "not found\n"));
    };
    let mut r = Response::new(Body::full(body));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    Ok(r)
}

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
const WSDL_NS: &str = "http://schemas.xmlsoap.org/wsdl/";
const SOAP_NS: &str = "http://schemas.xmlsoap.org/wsdl/soap/";
const XSD_NS: &str = "http://www.w3.org/2001/XMLSchema";

fn service_wsdl() -> String {
    format!(
        "{HEAD}<definitions targetNamespace=\"urn:vim25Service\" xmlns=\"{WSDL_NS}\" \
         xmlns:soap=\"{SOAP_NS}\" xmlns:vim25=\"urn:vim25\">\n\
         \x20 <import location=\"vim.wsdl\" namespace=\"urn:vim25\"/>\n\
         \x20 <service name=\"VimService\">\n\
         \x20   <port binding=\"vim25:VimBinding\" name=\"VimPort\">\n\
         \x20     <soap:address location=\"{LOCATION}\"/>\n\
         \x20   </port>\n\
         \x20 </service>\n\
         </definitions>\n"
    )
}

fn vim_wsdl(api_version: &str) -> String {
    let methods = methods();
    let mut s = format!(
        "{HEAD}<definitions targetNamespace=\"urn:vim25\" xmlns=\"{WSDL_NS}\" \
         xmlns:soap=\"{SOAP_NS}\" xmlns:vim25=\"urn:vim25\" xmlns:xsd=\"{XSD_NS}\">\n\
         \x20 <types>\n\
         \x20   <schema targetNamespace=\"urn:vim25\" xmlns=\"{XSD_NS}\" \
         xmlns:vim25=\"urn:vim25\" xmlns:xsd=\"{XSD_NS}\" elementFormDefault=\"qualified\">\n\
         \x20     <complexType name=\"ManagedObjectReference\">\n\
         \x20       <simpleContent>\n\
         \x20         <extension base=\"xsd:string\">\n\
         \x20           <attribute name=\"type\" type=\"xsd:string\"/>\n\
         \x20         </extension>\n\
         \x20       </simpleContent>\n\
         \x20     </complexType>\n\
         \x20     <complexType name=\"MethodFault\">\n\
         \x20       <sequence>\n\
         \x20         <any minOccurs=\"0\" maxOccurs=\"unbounded\" processContents=\"lax\"/>\n\
         \x20       </sequence>\n\
         \x20     </complexType>\n\
         \x20     <element name=\"MethodFaultFault\" type=\"vim25:MethodFault\"/>\n"
    );
    for m in &methods {
        let returns = match RETURNS_ARRAY.contains(m) {
            true => "unbounded",
            false => "1",
        };
        s.push_str(&format!(
            "      <complexType name=\"{m}RequestType\">\n        <sequence>\n\
             \x20         <element name=\"_this\" type=\"vim25:ManagedObjectReference\"/>\n"
        ));
        for p in params(m) {
            let (name, max) = match p.strip_suffix("[]") {
                Some(n) => (n, " maxOccurs=\"unbounded\""),
                None => (*p, ""),
            };
            s.push_str(&format!(
                "          <element name=\"{name}\" type=\"xsd:anyType\" minOccurs=\"0\"{max}/>\n"
            ));
        }
        s.push_str(&format!(
            "        </sequence>\n      </complexType>\n\
             \x20     <element name=\"{m}\" type=\"vim25:{m}RequestType\"/>\n\
             \x20     <element name=\"{m}Response\">\n        <complexType>\n          <sequence>\n\
             \x20           <element name=\"returnval\" type=\"xsd:anyType\" minOccurs=\"0\" \
             maxOccurs=\"{returns}\"/>\n\
             \x20         </sequence>\n        </complexType>\n      </element>\n"
        ));
    }
    s.push_str("    </schema>\n  </types>\n");
    s.push_str(
        "  <message name=\"MethodFaultFaultMsg\">\n\
         \x20   <part name=\"fault\" element=\"vim25:MethodFaultFault\"/>\n  </message>\n",
    );
    for m in &methods {
        s.push_str(&format!(
            "  <message name=\"{m}RequestMsg\">\n\
             \x20   <part name=\"parameters\" element=\"vim25:{m}\"/>\n  </message>\n\
             \x20 <message name=\"{m}ResponseMsg\">\n\
             \x20   <part name=\"parameters\" element=\"vim25:{m}Response\"/>\n  </message>\n"
        ));
    }
    s.push_str("  <portType name=\"VimPortType\">\n");
    for m in &methods {
        s.push_str(&format!(
            "    <operation name=\"{m}\">\n\
             \x20     <input message=\"vim25:{m}RequestMsg\"/>\n\
             \x20     <output message=\"vim25:{m}ResponseMsg\"/>\n\
             \x20     <fault name=\"MethodFaultFault\" message=\"vim25:MethodFaultFaultMsg\"/>\n\
             \x20   </operation>\n"
        ));
    }
    s.push_str(
        "  </portType>\n  <binding name=\"VimBinding\" type=\"vim25:VimPortType\">\n\
         \x20   <soap:binding style=\"document\" transport=\"http://schemas.xmlsoap.org/soap/http\"/>\n",
    );
    for m in &methods {
        s.push_str(&format!(
            "    <operation name=\"{m}\">\n\
             \x20     <soap:operation soapAction=\"urn:vim25/{api_version}\" style=\"document\"/>\n\
             \x20     <input>\n        <soap:body use=\"literal\"/>\n      </input>\n\
             \x20     <output>\n        <soap:body use=\"literal\"/>\n      </output>\n\
             \x20     <fault name=\"MethodFaultFault\">\n\
             \x20       <soap:fault name=\"MethodFaultFault\" use=\"literal\"/>\n\
             \x20     </fault>\n    </operation>\n"
        ));
    }
    s.push_str("  </binding>\n</definitions>\n");
    s
}

fn params(method: &str) -> &'static [&'static str] {
    PARAMS
        .iter()
        .find(|(m, _)| *m == method)
        .map_or(&[], |(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::xml;

    #[test]
    fn params_name_served_methods_once() {
        let all = methods();
        for (i, (m, ps)) in PARAMS.iter().enumerate() {
            assert!(all.contains(m), "{m} has parameters but no type answers it");
            assert!(PARAMS[i + 1..].iter().all(|(n, _)| n != m), "{m} twice");
            for p in *ps {
                let name = p.trim_end_matches("[]");
                assert!(
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
                    "{m}: {p}"
                );
            }
        }
        // Names go into the documents unescaped.
        for m in all {
            assert!(
                m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{m}"
            );
        }
    }

    /// What the handlers answer on a fresh host agrees with [`RETURNS_ARRAY`] wherever a call
    /// with no parameters gets an answer (a non-empty array, or a single value).
    #[test]
    fn array_answers_are_the_listed_ones() {
        use crate::api::Value;
        use crate::soap::{envelope, parse};
        use crate::vim::{registry::HOST_OBJECTS, session_manager, Ctx, Vim};
        for m in RETURNS_ARRAY {
            assert!(methods().contains(m), "{m}");
        }
        let host = crate::HostConfig::new(crate::Profile::named("8.0U3").unwrap())
            .build()
            .unwrap();
        let mut vim = Vim::new(host, Default::default());
        let session = session_manager::system_session(&mut vim, "root");
        let ids = [
            ("ServiceInstance", "ServiceInstance"),
            ("OptionManager", "ha-adv-options"),
            ("EventManager", "ha-eventmgr"),
            ("PerformanceManager", "ha-perfmgr"),
            ("SearchIndex", "ha-searchindex"),
        ];
        let mut seen = 0;
        for t in TYPES {
            let Some(id) = ids
                .iter()
                .find(|(ty, _)| *ty == t.name)
                .map(|(_, id)| *id)
                .or_else(|| {
                    HOST_OBJECTS
                        .iter()
                        .find(|o| o.ty == t.name)
                        .map(|o| o.local)
                })
            else {
                continue;
            };
            for m in t.methods {
                // Answers that change the host are not wanted here.
                if m.contains("_Task") || m.contains("Firmware") {
                    continue;
                }
                let xml = format!(
                    "<{m} xmlns=\"urn:vim25\"><_this type=\"{}\">{id}</_this></{m}>",
                    t.name
                );
                let req = parse(envelope(&xml).as_bytes()).unwrap();
                let mut ctx = Ctx {
                    session: Some(session.clone()),
                    system: Some("root".into()),
                    ..Ctx::default()
                };
                match (t.call)(&mut vim, &mut ctx, &req) {
                    Ok(Some(Value::Array(_, items))) if !items.is_empty() => {
                        assert!(RETURNS_ARRAY.contains(m), "{m} answers an array");
                        seen += 1;
                    }
                    Ok(Some(Value::Array(..))) | Ok(None) | Err(_) => {}
                    Ok(Some(_)) => {
                        assert!(!RETURNS_ARRAY.contains(m), "{m} answers one value");
                        seen += 1;
                    }
                }
            }
        }
        assert!(seen >= 5, "only {seen} answers checked");
    }

    #[test]
    fn documents_parse_and_carry_the_version() {
        let v = document("vim.wsdl", "8.0.3.0").unwrap();
        let root = xml::parse(&v).unwrap();
        assert_eq!(root.name, "definitions");
        let text = std::str::from_utf8(&v).unwrap();
        assert!(text.contains("soapAction=\"urn:vim25/8.0.3.0\""));
        assert!(!text.contains("urn:vim25/6.7.3"));
        let other = document("vim.wsdl", "6.7.3").unwrap();
        assert!(std::str::from_utf8(&other)
            .unwrap()
            .contains("urn:vim25/6.7.3\""));
        // Built once: the same bytes again.
        assert_eq!(
            document("vim.wsdl", "8.0.3.0").unwrap().as_ptr(),
            v.as_ptr()
        );
        assert!(xml::parse(&document("vimService.wsdl", "8.0.3.0").unwrap()).is_ok());
        assert!(document("other.wsdl", "8.0.3.0").is_none());
        assert!(serves("/sdk/vim.wsdl") && !serves("/sdk/vim.xsd") && !serves("/vim.wsdl"));
    }
}
