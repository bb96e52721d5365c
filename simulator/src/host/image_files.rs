//! What differs between releases in the image: the files a first boot writes (so that the
//! installer's save holds the release's real member list) and, from 7.0, the ConfigStore a
//! fresh install starts from.
//!
//! - 4.x/5.x: seed 000's standalone member list (`etc/dropbear` keys, `initiatorname.iscsi`,
//!   `vmware.lic`, the sfcb repository indexes, ...; the HA agent's files are left out, as a
//!   standalone host has none).
//! - 6.x: the image as it was; the first save holds what the install itself changed.
//! - 7.0 and later: the 34 `/etc` members of the real 7.0.2 local.tgz (facts 6.2) with their
//!   modes (keys 0400/0600, `license.cfg` 0600, `random-seed` and `vmkiscsid.db` sticky 01600);
//!   with the ConfigStore's two files and (7.0 U2+) `encryption.info`, 36 members.
//!
//! Contents are this simulator's own, in the right shape (keys are placeholders); the real
//! sample's are never copied (it holds a test host's private keys).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::etc::Node;
use super::image::{FirstBoot, Generate, IMAGE_MTIME};
use crate::clock::SimTime;
use crate::configstore::{Column, ConfigStore, Key};
use crate::profile::{Era, Profile};

fn put(files: &mut BTreeMap<String, Node>, path: &str, mode: u32, data: impl Into<Vec<u8>>) {
    files.insert(
        path.to_string(),
        Node {
            data: Arc::from(data.into().into_boxed_slice()),
            mode,
            mtime: IMAGE_MTIME,
            sticky: true,
        },
    );
}

fn chmod(files: &mut BTreeMap<String, Node>, path: &str, mode: u32) {
    if let Some(n) = files.get_mut(path) {
        n.mode = mode;
    }
}

fn fb(path: &'static str, how: Generate) -> FirstBoot {
    FirstBoot { path, how }
}

/// Adds the release's own files to the image; returns what its first boot writes.
pub fn add_release_files(p: &Profile, files: &mut BTreeMap<String, Node>) -> Vec<FirstBoot> {
    let major = p.version_number() / 10_000;
    if p.era.has_store() {
        release_7(p, files)
    } else if major <= 5 {
        release_4_5(files)
    } else {
        Vec::new()
    }
}

fn release_4_5(files: &mut BTreeMap<String, Node>) -> Vec<FirstBoot> {
    use Generate::*;
    put(files, "etc/dropbear/dropbear_dss_host_key", 0o600, "");
    put(files, "etc/dropbear/dropbear_rsa_host_key", 0o600, "");
    put(
        files,
        "etc/vmware/vmkiscsid/initiatorname.iscsi",
        0o644,
        "InitiatorName=\n",
    );
    put(files, "etc/vmware/vmkiscsid/vmkiscsid.db", 0o600, "");
    put(files, "etc/vmware/vmware.lic", 0o644, "");
    for idx in [
        "cim_indicationfilter.idx",
        "cim_indicationhandlercimxml.idx",
        "cim_listenerdestinationcimxml.idx",
        "cim_indicationsubscription.idx",
    ] {
        put(
            files,
            &format!("etc/sfcb/repository/root/interop/{idx}"),
            0o644,
            "",
        );
    }
    [
        fb("etc/vmware/vmkiscsid/vmkiscsid.db", Random(1024)),
        fb(
            "etc/dropbear/dropbear_dss_host_key",
            Pem("DSA PRIVATE KEY", 600),
        ),
        fb(
            "etc/dropbear/dropbear_rsa_host_key",
            Pem("RSA PRIVATE KEY", 1100),
        ),
        fb("etc/sysconfig/network", Rewrite),
        fb("etc/vmware/hostd/authorization.xml", Rewrite),
        fb("etc/vmware/hostd/hostsvc.xml", Rewrite),
        fb("etc/vmware/hostd/pools.xml", Rewrite),
        fb("etc/vmware/hostd/vmAutoStart.xml", Rewrite),
        fb("etc/vmware/hostd/vmInventory.xml", Rewrite),
        fb("etc/vmware/hostd/proxy.xml", Rewrite),
        fb("etc/vmware/vmkiscsid/initiatorname.iscsi", Rewrite),
        fb("etc/vmware/vmkiscsid/iscsid.conf", Rewrite),
        fb("etc/vmware/vmware.lic", Rewrite),
        fb("etc/vmware/config", Rewrite),
        fb("etc/vmware/dvsdata.db", Rewrite),
        fb("etc/vmware/license.cfg", Rewrite),
        fb("etc/vmware/locker.conf", Rewrite),
        fb("etc/vmware/snmp.xml", Rewrite),
        fb("etc/group", Rewrite),
        fb("etc/host.conf", Rewrite),
        fb("etc/inetd.conf", Rewrite),
        fb("etc/chkconfig.db", Rewrite),
        fb("etc/nsswitch.conf", Rewrite),
        fb("etc/passwd", Rewrite),
        fb("etc/random-seed", Random(512)),
        fb("etc/resolv.conf", Rewrite),
        fb(
            "etc/sfcb/repository/root/interop/cim_indicationfilter.idx",
            Rewrite,
        ),
        fb(
            "etc/sfcb/repository/root/interop/cim_indicationhandlercimxml.idx",
            Rewrite,
        ),
        fb(
            "etc/sfcb/repository/root/interop/cim_listenerdestinationcimxml.idx",
            Rewrite,
        ),
        fb(
            "etc/sfcb/repository/root/interop/cim_indicationsubscription.idx",
            Rewrite,
        ),
    ]
    .to_vec()
}

fn release_7(p: &Profile, files: &mut BTreeMap<String, Node>) -> Vec<FirstBoot> {
    use Generate::*;
    put(files, "etc/security/access.conf", 0o644, ACCESS_CONF);
    put(files, "etc/ssh/ssh_host_ecdsa_key", 0o600, "");
    put(files, "etc/ssh/ssh_host_ecdsa_key.pub", 0o644, "");
    put(files, "etc/ssh/ssh_host_rsa_key", 0o400, "");
    put(files, "etc/ssh/ssh_host_rsa_key.pub", 0o600, "");
    put(files, "etc/vmware/hostd/config.xml", 0o644, hostd_config(p));
    put(
        files,
        "etc/vmware/hostd/IpmiSelDate.bin",
        0o644,
        vec![0u8; 4],
    );
    put(
        files,
        "etc/vmware/hostd/vmciAccessManager.xml",
        0o644,
        "<ConfigRoot/>",
    );
    put(
        files,
        "etc/vmware/schemastore/schema-store-1",
        0o644,
        schema_store(p),
    );
    // The trusted CAs a build ships: the same on every host of it.
    put(
        files,
        "etc/vmware/ssl/castore.pem",
        0o644,
        ca_store(p, "castore"),
    );
    put(
        files,
        "etc/vmware/ssl/iofiltervp_castore.pem",
        0o644,
        ca_store(p, "iofiltervp"),
    );
    put(
        files,
        "etc/vmware/vmkiscsid/vmkiscsid.db",
        0o1600,
        vmkiscsid_db(),
    );
    put(files, "etc/vmware/iofilters/iofiltervpd.conf", 0o644, "");
    put(files, "etc/dhclient-vmk0.leases", 0o644, "");
    put(files, "etc/krb5.conf", 0o644, KRB5);
    put(files, "etc/vmware/dvsdata.db", 0o600, vec![0u8; 512]);
    put(
        files,
        "etc/vmware/locker.conf",
        0o644,
        "/vmfs/volumes/OSDATA 0\n",
    );
    put(files, "etc/group", 0o644, "root:x:0:root\nusers:x:100:\n");
    chmod(files, "etc/random-seed", 0o1600);
    chmod(files, "etc/vmware/license.cfg", 0o600);
    chmod(files, "etc/shadow", 0o644); // as the real 7.0.2 archive lists it
    [
        fb("etc/security/access.conf", Rewrite),
        fb("etc/ssh/ssh_host_ecdsa_key", Pem("EC PRIVATE KEY", 300)),
        fb(
            "etc/ssh/ssh_host_ecdsa_key.pub",
            PublicKey("ecdsa-sha2-nistp256", 180),
        ),
        fb("etc/ssh/ssh_host_rsa_key", Pem("RSA PRIVATE KEY", 1620)),
        fb("etc/ssh/ssh_host_rsa_key.pub", PublicKey("ssh-rsa", 372)),
        fb("etc/vmware/hostd/config.xml", Rewrite),
        fb("etc/vmware/hostd/authorization.xml", Rewrite),
        fb("etc/vmware/hostd/IpmiSelDate.bin", Rewrite),
        fb("etc/vmware/hostd/hostsvc.xml", Rewrite),
        fb("etc/vmware/hostd/pools.xml", Rewrite),
        fb("etc/vmware/hostd/vmAutoStart.xml", Rewrite),
        fb("etc/vmware/hostd/vmciAccessManager.xml", Rewrite),
        fb("etc/vmware/hostd/vmInventory.xml", Rewrite),
        fb("etc/vmware/schemastore/schema-store-1", Rewrite),
        fb("etc/vmware/ssl/castore.pem", Rewrite),
        fb("etc/vmware/ssl/iofiltervp_castore.pem", Rewrite),
        fb("etc/vmware/vmkiscsid/vmkiscsid.db", Rewrite),
        fb("etc/vmware/dvsdata.db", Rewrite),
        fb("etc/vmware/locker.conf", Rewrite),
        fb("etc/vmware/license.cfg", Rewrite),
        fb("etc/vmware/iofilters/iofiltervpd.conf", Rewrite),
        fb("etc/chkconfig.db", Rewrite),
        fb("etc/dhclient-vmk0.leases", Lease),
        fb("etc/group", Rewrite),
        fb("etc/random-seed", Random(512)),
        fb("etc/resolv.conf", Rewrite),
        fb("etc/krb5.conf", Rewrite),
    ]
    .to_vec()
}

/// A PEM certificate placeholder that depends on the build only (a CA store it ships).
fn ca_store(p: &Profile, which: &str) -> String {
    let mut rng = crate::rng::Rng::fork(p.build as u64, which);
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let body = rng.string(B64, 1000);
    let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(line).unwrap_or_default());
        s.push('\n');
    }
    s.push_str("-----END CERTIFICATE-----\n");
    s
}

const ACCESS_CONF: &str = "# This file is autogenerated and must not be edited.\n\
+:dcui:ALL\n+:root:ALL\n+:vpxuser:ALL\n-:ALL:ALL\n";

const KRB5: &str = "[libdefaults]\n   default_tgs_enctypes = AES256-CTS AES128-CTS RC4-HMAC\n   \
default_tkt_enctypes = AES256-CTS AES128-CTS RC4-HMAC\n   preferred_enctypes = AES256-CTS \
AES128-CTS RC4-HMAC\n   allow_weak_crypto = true\n[likewise]\n  disable_modifications = false\n  \
version = 1\n";

/// hostd's own configuration (its shape; the real one is ~29 KB of defaults).
fn hostd_config(p: &Profile) -> String {
    let mut s = String::from("<config>\n  <vmacore>\n    <threadPool>\n      <TaskMax>90</TaskMax>\n      <IoMin>2</IoMin>\n    </threadPool>\n    <ssl>\n      <doVersionCheck>false</doVersionCheck>\n      <libraryPath>/lib/</libraryPath>\n    </ssl>\n  </vmacore>\n");
    s.push_str(&format!(
        "  <version>{}</version>\n  <build>{}</build>\n",
        p.version, p.build
    ));
    s.push_str("  <log>\n    <directory>/var/log/vmware/</directory>\n    <name>hostd</name>\n    <outputToSyslog>true</outputToSyslog>\n    <syslog>\n      <ident>Hostd</ident>\n      <facility>local4</facility>\n    </syslog>\n    <level>info</level>\n  </log>\n");
    for plugin in [
        "hostsvc",
        "vmsvc",
        "nfcsvc",
        "internalsvc",
        "proxysvc",
        "vimsvc",
        "solo",
        "vsan",
        "cimsvc",
        "healthsvc",
    ] {
        s.push_str(&format!(
            "  <plugins>\n    <{plugin}>\n      <enabled>true</enabled>\n      <timeout>600</timeout>\n    </{plugin}>\n  </plugins>\n"
        ));
    }
    s.push_str("  <proxysvc>\n    <httpPort>80</httpPort>\n    <httpsPort>443</httpsPort>\n  </proxysvc>\n</config>\n");
    s
}

/// A SQLite database holding one JSON schema per ConfigStore group this simulator models (the
/// real `schema-store-1` holds every component's schemas).
fn schema_store(p: &Profile) -> Vec<u8> {
    let conn = rusqlite::Connection::open_in_memory().expect("an in-memory database");
    conn.execute_batch(
        "PRAGMA page_size=4096; PRAGMA user_version=5; \
         CREATE TABLE Schema(Component TEXT, ConfigGroup TEXT, Name TEXT, Version TEXT, \
         Schema TEXT, PRIMARY KEY(Component, ConfigGroup, Name, Version));",
    )
    .expect("the schema store's schema");
    let mut st = conn
        .prepare("INSERT INTO Schema VALUES(?1, ?2, ?3, ?4, ?5)")
        .expect("insert");
    for (group, name, fields) in SCHEMAS {
        let props: Vec<String> = fields
            .iter()
            .map(|(f, ty)| {
                format!(
                    "\"{f}\":{{\"type\":\"{ty}\",\"description\":\"The {f} of this {name} \
                     configuration ({group}).\",\"mutable\":true,\"vital\":false}}"
                )
            })
            .collect();
        let doc = format!(
            "{{\"$schema\":\"http://json-schema.org/draft-04/schema#\",\"title\":\"esx.{group}.{name}\",\
             \"release\":\"{}\",\"type\":\"object\",\"properties\":{{{}}},\"additionalProperties\":false}}",
            p.version,
            props.join(",")
        );
        st.execute(rusqlite::params!["esx", group, name, "1.0", doc])
            .expect("insert a schema");
    }
    drop(st);
    conn.serialize(rusqlite::MAIN_DB)
        .expect("serializing")
        .to_vec()
}

/// (config group, name, its fields with their JSON types).
type SchemaEntry = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const SCHEMAS: &[SchemaEntry] = &[
    (
        "network",
        "firewall",
        &[
            ("enabled", "boolean"),
            ("default_action", "string"),
            ("allow_other_l4_traffic", "boolean"),
            ("allow_IGMP_traffic", "boolean"),
        ],
    ),
    (
        "network",
        "firewall_rule_sets",
        &[
            ("name", "string"),
            ("enabled", "boolean"),
            ("allow_all_ip", "boolean"),
            ("num_clients", "integer"),
        ],
    ),
    (
        "network",
        "nics",
        &[
            ("name", "string"),
            ("mac", "string"),
            ("virtual_mac", "string"),
        ],
    ),
    (
        "network",
        "vmknics",
        &[
            ("device", "string"),
            ("port_group", "string"),
            ("mac_from_pnic", "string"),
            ("net_stack_instance_key", "string"),
            ("ip", "object"),
            ("enabled_services", "object"),
            ("enabled", "boolean"),
        ],
    ),
    (
        "network",
        "net_stacks",
        &[
            ("key", "string"),
            ("name", "string"),
            ("routing_config", "object"),
            ("dns", "object"),
            ("ipv6_enabled", "boolean"),
            ("max_connections", "integer"),
        ],
    ),
    (
        "network_vss",
        "switches",
        &[
            ("name", "string"),
            ("policy", "object"),
            ("port_groups", "array"),
            ("bridge", "object"),
        ],
    ),
    (
        "authentication",
        "user_accounts",
        &[
            ("name", "string"),
            ("password_hash", "string"),
            ("description", "string"),
            ("shell_access", "boolean"),
            ("uid", "integer"),
        ],
    ),
    (
        "authorization",
        "permissions",
        &[
            ("principal", "string"),
            ("is_group", "boolean"),
            ("access_mode", "string"),
            ("cs_generated_id", "string"),
        ],
    ),
    (
        "advanced_options",
        "misc",
        &[("host_name", "string"), ("host_IP_addr", "string")],
    ),
    ("advanced_options", "net", &[("management_addr", "string")]),
    ("system", "keyboard", &[("layout", "string")]),
    (
        "syslog",
        "global_settings",
        &[
            ("log_dir", "string"),
            ("log_host", "string"),
            ("rotate", "integer"),
            ("size", "integer"),
        ],
    ),
    (
        "services",
        "hostd",
        &[("log_level", "string"), ("enabled", "boolean")],
    ),
    (
        "storage",
        "nfs_v3_datastores",
        &[
            ("volume_name", "string"),
            ("hostname", "string"),
            ("remote_share", "string"),
            ("read_only", "boolean"),
        ],
    ),
    (
        "encryption",
        "settings",
        &[
            ("mode", "string"),
            ("require_secure_boot", "boolean"),
            ("require_executables_only_from_installed_vibs", "boolean"),
        ],
    ),
    ("encryption", "recovery_keys", &[("key", "string")]),
];

/// The iSCSI daemon's database: empty tables (1 KiB pages, as the real one).
fn vmkiscsid_db() -> Vec<u8> {
    let conn = rusqlite::Connection::open_in_memory().expect("an in-memory database");
    conn.execute_batch(
        "PRAGMA page_size=1024; \
         CREATE TABLE discovery(key TEXT PRIMARY KEY, address TEXT, port INTEGER, type INTEGER); \
         CREATE TABLE ifaces(name TEXT PRIMARY KEY, hwaddress TEXT, ipaddress TEXT); \
         CREATE TABLE nodes(name TEXT, address TEXT, port INTEGER, tpgt INTEGER, PRIMARY KEY(name, address, port)); \
         CREATE TABLE internal(key TEXT PRIMARY KEY, value TEXT); \
         INSERT INTO internal VALUES('version', '7');",
    )
    .expect("the iSCSI schema");
    conn.serialize(rusqlite::MAIN_DB)
        .expect("serializing")
        .to_vec()
}

/// The ConfigStore of a fresh install (facts 6.3: the real 7.0.2 sample's groups), before the
/// installer's own settings (the host name, root's account) and the host's MAC addresses.
pub fn default_store(p: &Profile) -> ConfigStore {
    let t = SimTime::from_secs(IMAGE_MTIME);
    let mut s = ConfigStore::new();
    let mut user = |group: &str, name: &str, id: &str, json: &str, version: &str| {
        s.set(
            Key::new("esx", group, name, id),
            Column::User,
            Some(json),
            version,
            t,
        );
    };
    user(
        "system",
        "keyboard",
        "",
        r#"{"layout":"US Default"}"#,
        "proposed",
    );
    for (principal, id) in [
        ("root", "52 2f 4d 38 94 0b 2c 9c-c7 5d b2 56 c2 9e d5 8d"),
        ("dcui", "52 4f 51 99 d0 6c 0e 40-4f b6 44 4f 74 3a 0c 79"),
        ("vpxuser", "52 fd e1 e1 28 8e db 35-66 2b 70 d3 17 e5 57 c7"),
    ] {
        user(
            "authorization",
            "permissions",
            id,
            &format!(
                r#"{{"access_mode":"Admin","cs_generated_id":"{id}","is_group":false,"principal":"{principal}"}}"#
            ),
            "proposed",
        );
    }
    user(
        "syslog",
        "global_settings",
        "",
        r#"{"log_dir":"/scratch/log","log_host":"","rotate":8,"size":1024}"#,
        "1.2",
    );
    if p.store_holds.network {
        user(
            "network",
            "firewall",
            "",
            r#"{"allow_IGMP_traffic":false,"allow_other_l4_traffic":false,"default_action":"DROP","enabled":true}"#,
            "1.0",
        );
        for (rule, enabled) in FIREWALL_RULE_SETS {
            user(
                "network",
                "firewall_rule_sets",
                rule,
                &format!(r#"{{"allow_all_ip":true,"enabled":{enabled},"name":"{rule}"}}"#),
                "1.0",
            );
        }
        user("network", "nics", "vmnic0", r#"{"name":"vmnic0"}"#, "1.0");
        user(
            "network",
            "vmknics",
            "vmk0",
            r#"{"device":"vmk0","enabled":true,"enabled_services":{"management":true},"ip":{"dhcp":true,"dhcp_dns":true,"ipv6":{"auto_configuration_enabled":true,"dhcp":false,"dhcp_dns":false},"ipv6_enabled":true},"mac_from_pnic":"vmnic0","net_stack_instance_key":"defaultTcpipStack","port_connection_type":"VSS_PORT_GROUP","port_group":"Management Network","tso_mss":0}"#,
            "1.0",
        );
        user(
            "network",
            "net_stacks",
            "defaultTcpipStack",
            r#"{"congestion_control_algorithm":"NEWRENO","dns":{"dhcp":true},"ecn_status":"ENABLED","enabled":true,"ipv6_enabled":true,"key":"defaultTcpipStack","max_connections":11000,"name":"defaultTcpipStack","routing_config":{"source":"DHCP"}}"#,
            "1.0",
        );
        user(
            "network_vss",
            "switches",
            "vSwitch0",
            r#"{"bridge":{"link_discovery_protocol":{"operation":"LISTEN","protocol":"CDP"},"nics":["vmnic0"]},"name":"vSwitch0","policy":{"nic_teaming":{"active_nics":["vmnic0"],"link_criteria_beacon":"IGNORE","notify_switches":true,"policy":"LOADBALANCE_SRCID","rolling_order":false},"security":{"allow_promiscuous":false,"forged_transmits":false,"mac_changes":false},"traffic_shaping":{"enabled":false}},"port_groups":[{"name":"Management Network","vlan_id":0},{"name":"VM Network","vlan_id":0}]}"#,
            "1.0",
        );
    }
    user(
        "services",
        "hostd",
        "",
        r#"{"enabled":true,"log_level":"info"}"#,
        "proposed",
    );
    s.set_kv("APPLY_BOOT", "false", t);
    s.set_kv("BOOT_MODE", "0", t);
    s.set_kv("IS_BOOT", "", t);
    s.set_default(
        Key::new("esx", "attestation", "tpm2_settings", ""),
        r#"{"require_certificate_validation":true,"require_endorsement_keys":false}"#,
        t,
    );
    if p.era == Era::Encrypted {
        s.set(
            Key::new("esx", "encryption", "settings", ""),
            Column::User,
            Some(r#"{"mode":"NONE","require_executables_only_from_installed_vibs":false,"require_secure_boot":false}"#),
            "1.0",
            t,
        );
    }
    s
}

/// A subset of the real rule sets (facts 6.3's sample has 56), enabled as a fresh host has them.
const FIREWALL_RULE_SETS: &[(&str, bool)] = &[
    ("CIMHttpServer", true),
    ("CIMHttpsServer", true),
    ("CIMSLP", true),
    ("DHCPv6", false),
    ("DVSSync", false),
    ("HBR", false),
    ("NFC", true),
    ("WOL", true),
    ("dhcp", true),
    ("dns", true),
    ("esxupdate", false),
    ("faultTolerance", false),
    ("ftpClient", false),
    ("httpClient", false),
    ("iSCSI", false),
    ("nfs41Client", false),
    ("nfsClient", false),
    ("ntpClient", false),
    ("snmp", true),
    ("sshClient", false),
    ("sshServer", false),
    ("syslog", false),
    ("updateManager", false),
    ("vMotion", true),
    ("vSphereClient", true),
    ("vpxHeartbeats", true),
    ("webAccess", true),
];
