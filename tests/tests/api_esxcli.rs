//! esxcli over the vSphere API, as govc `host.esxcli` and PowerCLI `Get-EsxCli -V2` reach it:
//! the routing (HostSystem → executer → handlers), the documents ExecuteSoap returns, the
//! faults bad input gets, and the same calls through a vCenter, forwarded to the right host.

mod common;

use std::net::Ipv4Addr;

use common::*;
use esxi_harness::client::{as_moref, esc, returnval, Client, Trust};
use esxi_sim::api::MoRef;
use esxi_sim::soap::xml::{self, Element};
use esxi_sim_tests::{host_ref, start};

const V50: &str = "urn:vim25/5.0";

/// `<argument><name>n</name><val>&lt;n&gt;v&lt;/n&gt;</val></argument>`, as govc sends it.
fn arg(name: &str, value: &str) -> String {
    format!(
        "<argument><name>{name}</name><val>{}</val></argument>",
        esc(&format!("<{name}>{value}</{name}>"))
    )
}

fn execute_params(moid: &str, version: &str, method: &str, args: &[String]) -> String {
    format!(
        "<moid>{moid}</moid><version>{version}</version><method>{method}</method>{}",
        args.concat()
    )
}

/// What ExecuteSoap answered: the result document, or the method's fault.
#[derive(Debug)]
enum Soap {
    Response(Element),
    Fault { msg: String, detail: Element },
}

impl Soap {
    fn response(self) -> Element {
        match self {
            Soap::Response(e) => e,
            other => panic!("expected a response, got {other:?}"),
        }
    }
    fn fault(self) -> (String, Element) {
        match self {
            Soap::Fault { msg, detail } => (msg, detail),
            other => panic!("expected a fault, got {other:?}"),
        }
    }
}

async fn execute(c: &mut Client, mme: &MoRef, moid: &str, method: &str, args: &[String]) -> Soap {
    let r = c
        .call(mme, "ExecuteSoap", &execute_params(moid, V50, method, args))
        .await
        .unwrap();
    let rv = returnval(&r).unwrap();
    // Exactly one of the two, never neither (govc would print EOF).
    match (rv.child("response"), rv.child("fault")) {
        (Some(resp), None) => Soap::Response(xml::parse(resp.text.as_bytes()).unwrap()),
        (None, Some(f)) => Soap::Fault {
            msg: f.child_text("faultMsg").unwrap().to_string(),
            detail: xml::parse(f.child_text("faultDetail").unwrap().as_bytes()).unwrap(),
        },
        _ => panic!("a SoapResult with neither or both: {rv:?}"),
    }
}

/// A command's result: `vim.EsxCLI.<ns>.<cmd>`, on the handler of `<ns>`.
async fn esxcli(c: &mut Client, mme: &MoRef, ns: &str, cmd: &str, args: &[String]) -> Soap {
    let moid = format!("ha-cli-handler-{}", ns.replace('.', "-"));
    execute(c, mme, &moid, &format!("vim.EsxCLI.{ns}.{cmd}"), args).await
}

async fn cli_info(c: &mut Client, mme: &MoRef, ns: &str) -> Soap {
    let type_name = format!("vim.EsxCLI.{ns}");
    execute(
        c,
        mme,
        "ha-dynamic-type-manager-local-cli-cliinfo",
        "vim.CLIInfo.FetchCLIInfo",
        &[arg("typeName", &type_name)],
    )
    .await
}

/// field → text of a flat result object.
fn fields(obj: &Element) -> Vec<(String, String)> {
    obj.children
        .iter()
        .map(|c| (c.name.clone(), c.text.clone()))
        .collect()
}

async fn executer(c: &mut Client, host: &MoRef) -> MoRef {
    let r = c
        .call(host, "RetrieveManagedMethodExecuter", "")
        .await
        .unwrap();
    as_moref(&returnval(&r).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_answers_esxcli_as_govc_reaches_it() {
    let ts = start("8.0U3", 41).await;
    let mut c = ts.login().await;
    let mme = executer(&mut c, &host_ref()).await;
    assert_eq!(
        mme,
        MoRef::new("ReflectManagedMethodExecuter", "ha-managed-method-executer")
    );
    let r = c
        .call(&host_ref(), "RetrieveDynamicTypeManager", "")
        .await
        .unwrap();
    assert_eq!(
        as_moref(&returnval(&r).unwrap()).unwrap(),
        MoRef::new("InternalDynamicTypeManager", "ha-dynamic-type-manager")
    );

    // FetchCLIInfo: what govc needs (method names, param aliases, hints).
    let info = cli_info(&mut c, &mme, "system.version").await.response();
    assert_eq!(info.xsi_type.as_deref(), Some("VimCLIInfoInfo"));
    assert_eq!(info.attr("versionId"), Some("5.0"));
    assert_eq!(info.child_text("name"), Some("system.version"));
    assert_eq!(info.child_text("displayName"), Some("version"));
    let get = info.child("method").unwrap();
    assert_eq!(get.child_text("name"), Some("get"));
    let hints: Vec<(&str, &str)> = get
        .all("hints")
        .map(|h| (h.child_text("key").unwrap(), h.child_text("value").unwrap()))
        .collect();
    assert!(hints.contains(&("formatter", "simple")), "{hints:?}");
    let info = cli_info(&mut c, &mme, "system.settings.encryption")
        .await
        .response();
    let set = info
        .all("method")
        .find(|m| m.child_text("name") == Some("set"))
        .unwrap();
    let params: Vec<(&str, Vec<&str>)> = set
        .all("param")
        .map(|p| {
            (
                p.child_text("name").unwrap(),
                p.all("aliases").map(|a| a.text.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        params,
        [
            ("mode", vec!["-m", "--mode"]),
            (
                "requireexecinstalledonly",
                vec!["-e", "--require-exec-installed-only"]
            ),
            ("requiresecureboot", vec!["-s", "--require-secure-boot"]),
        ]
    );

    // system version get: the profile's, and ServiceContent.about's version and build.
    let v = esxcli(&mut c, &mme, "system.version", "get", &[])
        .await
        .response();
    assert_eq!(
        v.xsi_type.as_deref(),
        Some("VimEsxCLIsystemversiongetVersionGet")
    );
    assert_eq!(
        fields(&v),
        [
            ("Build", "Releasebuild-24022510"),
            ("Patch", "0"),
            ("Product", "VMware ESXi"),
            ("Update", "3"),
            ("Version", "8.0.3"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    // Older clients capitalize the method (pyvisdk's `vim.EsxCLI.system.version.Get`).
    let again = esxcli(&mut c, &mme, "system.version", "Get", &[])
        .await
        .response();
    assert_eq!(fields(&again), fields(&v));

    let name = ts.with_host(|h| h.hostname());
    let h = esxcli(&mut c, &mme, "system.hostname", "get", &[])
        .await
        .response();
    assert_eq!(
        h.xsi_type.as_deref(),
        Some("VimEsxCLIsystemhostnamegetFullyQualifiedHostName")
    );
    assert_eq!(
        fields(&h),
        [
            ("DomainName".to_string(), String::new()),
            ("FullyQualifiedDomainName".to_string(), name.clone()),
            ("HostName".to_string(), name.clone()),
        ]
    );

    // Encryption: NONE, no recovery key; then TPM and its key, which the model holds.
    let e = esxcli(&mut c, &mme, "system.settings.encryption", "get", &[])
        .await
        .response();
    assert_eq!(
        fields(&e),
        [
            ("Mode", "NONE"),
            ("RequireExecutablesOnlyFromInstalledVIBs", "false"),
            ("RequireSecureBoot", "false")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let recovery = "system.settings.encryption.recovery";
    let none = esxcli(&mut c, &mme, recovery, "list", &[]).await.response();
    assert_eq!(none.xsi_type.as_deref(), Some("ArrayOfDataObject"));
    assert!(none.children.is_empty());
    let set = esxcli(
        &mut c,
        &mme,
        "system.settings.encryption",
        "set",
        &[arg("mode", "TPM")],
    )
    .await
    .response();
    assert_eq!(
        (set.xsi_type.as_deref(), set.text.as_str()),
        (Some("boolean"), "true")
    );
    let e = esxcli(&mut c, &mme, "system.settings.encryption", "get", &[])
        .await
        .response();
    assert_eq!(e.child_text("Mode"), Some("TPM"));
    let list = esxcli(&mut c, &mme, recovery, "list", &[]).await.response();
    let rows: Vec<&Element> = list.all("DataObject").collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].xsi_type.as_deref(),
        Some("VimEsxCLIsystemsettingsencryptionrecoverylistRecoveryKey")
    );
    let (key, id) = (
        rows[0].child_text("Key").unwrap(),
        rows[0].child_text("RecoveryID").unwrap(),
    );
    let groups: Vec<&str> = key.split('-').collect();
    assert_eq!(groups.len(), 16, "{key}");
    assert!(groups
        .iter()
        .all(|g| g.len() == 6 && g.bytes().all(|b| b.is_ascii_digit())));
    assert!(
        id.starts_with('{') && id.ends_with('}') && id.len() == 38,
        "{id}"
    );
    assert_eq!(id, id.to_uppercase());
    let model = ts.with_host(|h| {
        let k = h.recovery_key().unwrap();
        (k.key_text(), k.id_text())
    });
    assert_eq!((key.to_string(), id.to_string()), model);

    // Rotate naming the key (with or without braces): a new one, which the model holds.
    let bare = id.trim_matches(|c| c == '{' || c == '}').to_lowercase();
    let r = esxcli(&mut c, &mme, recovery, "rotate", &[arg("keyid", &bare)])
        .await
        .response();
    assert_eq!(r.text, "true");
    let after = esxcli(&mut c, &mme, recovery, "list", &[]).await.response();
    let row = after.child("DataObject").unwrap();
    assert_ne!(row.child_text("Key"), Some(key));
    assert_eq!(
        (
            row.child_text("Key").unwrap().to_string(),
            row.child_text("RecoveryID").unwrap().to_string()
        ),
        ts.with_host(|h| {
            let k = h.recovery_key().unwrap();
            (k.key_text(), k.id_text())
        })
    );

    // Secure boot on; the policy shows.
    esxcli(
        &mut c,
        &mme,
        "system.settings.encryption",
        "set",
        &[arg("requiresecureboot", "true")],
    )
    .await
    .response();
    let e = esxcli(&mut c, &mme, "system.settings.encryption", "get", &[])
        .await
        .response();
    assert_eq!(e.child_text("RequireSecureBoot"), Some("true"));
    assert!(ts.with_host(|h| h.encryption().unwrap().require_secure_boot));

    // Hostname set.
    esxcli(
        &mut c,
        &mme,
        "system.hostname",
        "set",
        &[arg("domain", "lab.example"), arg("host", "esx42")],
    )
    .await
    .response();
    let h = esxcli(&mut c, &mme, "system.hostname", "get", &[])
        .await
        .response();
    assert_eq!(
        h.child_text("FullyQualifiedDomainName"),
        Some("esx42.lab.example")
    );
    assert_eq!(ts.with_host(|h| h.hostname()), "esx42.lab.example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_that_fail_answer_the_cli_fault() {
    let ts = start("8.0U3", 42).await;
    let mut c = ts.login().await;
    let mme = executer(&mut c, &host_ref()).await;
    let enc = "system.settings.encryption";
    let cli_fault = |s: Soap| {
        let (msg, detail) = s.fault();
        assert_eq!(msg, "EsxCLI.CLIFault.summary");
        assert_eq!(detail.xsi_type.as_deref(), Some("VimEsxCLICLIFault"));
        detail
            .all("errMsg")
            .map(|e| e.text.clone())
            .collect::<Vec<_>>()
    };
    // A value outside the parameter's constraint, and nothing to set.
    let e = cli_fault(esxcli(&mut c, &mme, enc, "set", &[arg("mode", "tpm2")]).await);
    assert_eq!(e, ["Invalid data constraint for parameter 'mode'."]);
    cli_fault(esxcli(&mut c, &mme, enc, "set", &[]).await);
    // Rotating without a TPM-mode key, or naming another key.
    let recovery = "system.settings.encryption.recovery";
    cli_fault(esxcli(&mut c, &mme, recovery, "rotate", &[]).await);
    esxcli(&mut c, &mme, enc, "set", &[arg("mode", "TPM")])
        .await
        .response();
    let e = cli_fault(esxcli(&mut c, &mme, recovery, "rotate", &[arg("uuid", "{0}")]).await);
    assert!(e[0].contains("does not exist"), "{e:?}");
    // TPM mode cannot be undone: the real message.
    let e = cli_fault(esxcli(&mut c, &mme, enc, "set", &[arg("mode", "NONE")]).await);
    assert!(
        e[0].starts_with("Unable to change the encryption mode and policy."),
        "{e:?}"
    );
    assert_eq!(
        ts.with_host(|h| h.encryption().unwrap().mode.to_string()),
        "TPM"
    );
    let e = cli_fault(
        esxcli(
            &mut c,
            &mme,
            "system.hostname",
            "set",
            &[arg("fqdn", "a.b"), arg("host", "a")],
        )
        .await,
    );
    assert!(e[0].contains("mutually exclusive"), "{e:?}");
    cli_fault(
        esxcli(
            &mut c,
            &mme,
            "system.hostname",
            "set",
            &[arg("host", "bad_name")],
        )
        .await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_fault_in_soaps_terms() {
    let ts = start("8.0U3", 43).await;
    let mut c = ts.login().await;
    let mme = executer(&mut c, &host_ref()).await;
    let invalid = |r, property: &str| {
        let e = expect_fault(r, "InvalidArgument");
        assert_eq!(e.field("invalidProperty").as_deref(), Some(property));
        assert!(
            e.to_string().ends_with(&format!(
                "A specified parameter was not correct: {property}"
            )),
            "{e}"
        );
    };
    let version_get = "vim.EsxCLI.system.version.get";
    let handler = "ha-cli-handler-system-version";
    for (moid, version, method, args, property) in [
        (
            "ha-cli-handler-system-nosuch",
            V50,
            version_get,
            vec![],
            "moid",
        ),
        (
            "ha-managed-method-executer",
            V50,
            version_get,
            vec![],
            "moid",
        ),
        ("ha-host", V50, "vim.HostSystem.RebootHost", vec![], "moid"),
        (handler, "urn:vim25/99.0", version_get, vec![], "version"),
        (handler, "5.0", version_get, vec![], "version"),
        (handler, "urn:vim25/4.1", version_get, vec![], "method"),
        (
            handler,
            V50,
            "vim.EsxCLI.system.version.list",
            vec![],
            "method",
        ),
        (handler, V50, "", vec![], "method"),
        (handler, V50, version_get, vec![arg("x", "1")], "argument"),
        // Arguments out of order, misnamed inside, unreadable (govc does not escape values),
        // not a boolean.
        (
            "ha-cli-handler-system-hostname",
            V50,
            "vim.EsxCLI.system.hostname.set",
            vec![arg("host", "a"), arg("domain", "b")],
            "argument",
        ),
        (
            "ha-cli-handler-system-hostname",
            V50,
            "vim.EsxCLI.system.hostname.set",
            vec![
                "<argument><name>host</name><val>&lt;domain&gt;x&lt;/domain&gt;</val></argument>"
                    .into(),
            ],
            "argument",
        ),
        (
            "ha-cli-handler-system-hostname",
            V50,
            "vim.EsxCLI.system.hostname.set",
            vec![arg("host", "esx<1>&x")],
            "argument",
        ),
        (
            "ha-cli-handler-system-settings-encryption",
            V50,
            "vim.EsxCLI.system.settings.encryption.set",
            vec![arg("requiresecureboot", "T")],
            "argument",
        ),
        (
            "ha-dynamic-type-manager-local-cli-cliinfo",
            V50,
            "vim.CLIInfo.FetchCLIInfo",
            vec![],
            "argument",
        ),
        (
            "ha-dynamic-type-manager-local-cli-cliinfo",
            V50,
            "vim.CLIInfo.Nope",
            vec![arg("typeName", "vim.EsxCLI.system.version")],
            "method",
        ),
    ] {
        let r = c
            .call(
                &mme,
                "ExecuteSoap",
                &execute_params(moid, version, method, &args),
            )
            .await;
        invalid(r, property);
    }
    // Missing parameters, a malformed argument element, an executer that does not exist, a
    // method it does not have.
    expect_fault(
        c.call(&mme, "ExecuteSoap", "<version>urn:vim25/5.0</version>")
            .await,
        "InvalidRequest",
    );
    let no_name = format!(
        "{}<argument><val>x</val></argument>",
        execute_params(handler, V50, version_get, &[])
    );
    invalid(c.call(&mme, "ExecuteSoap", &no_name).await, "argument");
    let ghost = MoRef::new(
        "ReflectManagedMethodExecuter",
        "ha-managed-method-executer-2",
    );
    expect_fault(
        c.call(
            &ghost,
            "ExecuteSoap",
            &execute_params(handler, V50, version_get, &[]),
        )
        .await,
        "ManagedObjectNotFound",
    );
    expect_fault(c.call(&mme, "FetchSoap", "").await, "MethodNotFound");
    let dtm = MoRef::new("InternalDynamicTypeManager", "ha-dynamic-type-manager");
    expect_fault(
        c.call(&dtm, "DynamicTypeMgrQueryNothing", "").await,
        "MethodNotFound",
    );
    // Still answering after all that.
    let v = esxcli(&mut c, &mme, "system.version", "get", &[])
        .await
        .response();
    assert_eq!(v.child_text("Version"), Some("8.0.3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_hosts_answer_as_older_hosts_do() {
    // 6.7 U3: no encryption namespace; FetchCLIInfo says NotFound, as real esxcli's unknown
    // namespace; the handler does not exist; version get has 6.7 U3's patch level.
    let ts = start("6.7U3", 44).await;
    let mut c = ts.login().await;
    let mme = executer(&mut c, &host_ref()).await;
    let (msg, detail) = cli_info(&mut c, &mme, "system.settings.encryption")
        .await
        .fault();
    assert_eq!(msg, "The object or item referred to could not be found.");
    assert_eq!(detail.xsi_type.as_deref(), Some("NotFound"));
    let e = expect_fault(
        c.call(
            &mme,
            "ExecuteSoap",
            &execute_params(
                "ha-cli-handler-system-settings-encryption",
                V50,
                "vim.EsxCLI.system.settings.encryption.get",
                &[],
            ),
        )
        .await,
        "InvalidArgument",
    );
    assert_eq!(e.field("invalidProperty").as_deref(), Some("moid"));
    let v = esxcli(&mut c, &mme, "system.version", "get", &[])
        .await
        .response();
    assert_eq!(v.child_text("Build"), Some("Releasebuild-14320388"));
    assert_eq!(v.child_text("Patch"), Some("73"));
    assert_eq!(v.child_text("Version"), Some("6.7.0"));
    drop(c);
    drop(ts);

    // 4.1: no executer at all (the reflective executer came with 5.0).
    let ts = start("4.1U1", 45).await;
    let mut c = ts.login().await;
    expect_fault(
        c.call(&host_ref(), "RetrieveManagedMethodExecuter", "")
            .await,
        "MethodNotFound",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_type_manager_lists_the_handlers_and_their_types() {
    let ts = start("8.0U3", 46).await;
    let mut c = ts.login().await;
    let dtm = MoRef::new("InternalDynamicTypeManager", "ha-dynamic-type-manager");
    let r = c
        .call(&dtm, "DynamicTypeMgrQueryMoInstances", "")
        .await
        .unwrap();
    let instances: Vec<(&str, &str)> = r
        .all("returnval")
        .map(|i| (i.child_text("id").unwrap(), i.child_text("moType").unwrap()))
        .collect();
    assert!(instances.contains(&(
        "ha-cli-handler-system-settings-encryption-recovery",
        "vim.EsxCLI.system.settings.encryption.recovery"
    )));
    assert!(instances.contains(&("ha-dynamic-type-manager-local-cli-cliinfo", "vim.CLIInfo")));
    let filtered = c
        .call(
            &dtm,
            "DynamicTypeMgrQueryMoInstances",
            "<filterSpec xsi:type=\"DynamicTypeMgrMoFilterSpec\"><typeSubstr>system.hostname</typeSubstr></filterSpec>",
        )
        .await
        .unwrap();
    assert_eq!(filtered.all("returnval").count(), 1);

    let r = c
        .call(
            &dtm,
            "DynamicTypeMgrQueryTypeInfo",
            "<filterSpec xsi:type=\"DynamicTypeMgrTypeFilterSpec\"><typeSubstr>system.hostname</typeSubstr></filterSpec>",
        )
        .await
        .unwrap();
    let all = returnval(&r).unwrap();
    let managed: Vec<&Element> = all.all("managedTypeInfo").collect();
    assert_eq!(managed.len(), 1);
    assert_eq!(
        managed[0].child_text("wsdlName"),
        Some("VimEsxCLIsystemhostname")
    );
    let get = managed[0]
        .all("method")
        .find(|m| m.child_text("name") == Some("get"))
        .unwrap();
    assert_eq!(
        get.child("returnTypeInfo").unwrap().child_text("type"),
        Some("vim.EsxCLI.system.hostname.get.FullyQualifiedHostName")
    );
    let data: Vec<&str> = all
        .all("dataTypeInfo")
        .map(|d| d.child_text("wsdlName").unwrap())
        .collect();
    assert_eq!(data, ["VimEsxCLIsystemhostnamegetFullyQualifiedHostName"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vcenter_forwards_esxcli_to_the_right_host() {
    let fleet = vcenter_fleet(3, Ipv4Addr::new(127, 1, 4, 1)).await;
    let mut c = Client::new(&fleet.vcenter_url().unwrap(), Trust::Any).unwrap();
    c.login("administrator@vsphere.local", "VMware1!")
        .await
        .unwrap();

    // Host 1 is host-13: its executer and type manager in vCenter ids.
    let h1 = MoRef::new("HostSystem", "host-13");
    let mme = executer(&mut c, &h1).await;
    assert_eq!(
        mme,
        MoRef::new("ReflectManagedMethodExecuter", "ManagedMethodExecuter-13")
    );
    let r = c.call(&h1, "RetrieveDynamicTypeManager", "").await.unwrap();
    assert_eq!(
        as_moref(&returnval(&r).unwrap()).unwrap(),
        MoRef::new("InternalDynamicTypeManager", "DynamicTypeManager-13")
    );
    // Host 1 goes TPM through the vCenter; its own model holds the key the vCenter lists.
    let enc = "system.settings.encryption";
    esxcli(&mut c, &mme, enc, "set", &[arg("mode", "TPM")])
        .await
        .response();
    let list = esxcli(
        &mut c,
        &mme,
        "system.settings.encryption.recovery",
        "list",
        &[],
    )
    .await
    .response();
    let row = list.child("DataObject").unwrap();
    let model = |i: usize| {
        let v = fleet.hosts()[i].shared.lock();
        v.host.recovery_key().map(|k| (k.key_text(), k.id_text()))
    };
    assert_eq!(
        Some((
            row.child_text("Key").unwrap().to_string(),
            row.child_text("RecoveryID").unwrap().to_string()
        )),
        model(1)
    );
    assert_eq!(model(0), None, "host 0 untouched");
    // The host's own endpoint shows the same key.
    let mut direct = Client::new(&fleet.hosts()[1].url, Trust::Any).unwrap();
    direct
        .login("root", esxi_sim::host::DEFAULT_ROOT_PASSWORD)
        .await
        .unwrap();
    let local = executer(&mut direct, &host_ref()).await;
    let same = esxcli(
        &mut direct,
        &local,
        "system.settings.encryption.recovery",
        "list",
        &[],
    )
    .await
    .response();
    assert_eq!(fields(same.child("DataObject").unwrap()), fields(row));

    // Host 2 (6.7 U3) through the vCenter: its own version, and no encryption namespace.
    let mme2 = executer(&mut c, &MoRef::new("HostSystem", "host-14")).await;
    let v = esxcli(&mut c, &mme2, "system.version", "get", &[])
        .await
        .response();
    assert_eq!(v.child_text("Version"), Some("6.7.0"));
    cli_info(&mut c, &mme2, enc).await.fault();
    // An executer of no host is not found; a host executer's id on the vCenter is not the
    // host's.
    let ghost = MoRef::new("ReflectManagedMethodExecuter", "ManagedMethodExecuter-99");
    expect_fault(
        c.call(
            &ghost,
            "ExecuteSoap",
            &execute_params("ha-cli-handler-system-version", V50, "get", &[]),
        )
        .await,
        "ManagedObjectNotFound",
    );
    let local_id = MoRef::new("ReflectManagedMethodExecuter", "ha-managed-method-executer");
    expect_fault(
        c.call(&local_id, "ExecuteSoap", "").await,
        "ManagedObjectNotFound",
    );
    fleet.shutdown().await;
}
