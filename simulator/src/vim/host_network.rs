//! `HostSystem.config.network` (HostNetworkInfo): the management network every installed host
//! has, vmk0 on vSwitch0's "Management Network" port group over vmnic0, with the address clients
//! reach the host at. Salt's `vmware_esxi`, Ansible's `vmware_host_facts` and community.vmware's
//! helpers walk `config.network.portgroup`, `.vnic` and `.dnsConfig` (issue 13).
//!
//! Only fields every API version from 4.1 on knows are written (pyVmomi rejects unknown ones).
//! The layout is the installer's default [inferred from the ESXi installer's behaviour: one
//! standard switch, one uplink, VLAN 0]; nothing here is configurable through the API yet.

use std::net::IpAddr;

use super::{bad_param, method_not_found, required, Ctx, Vim};
use crate::api::{Call, Data, Fault, Value};

const VSWITCH: &str = "vSwitch0";
const PORTGROUP: &str = "Management Network";
const PNIC: &str = "vmnic0";
const VNIC: &str = "vmk0";

fn key(kind: &str, name: &str) -> String {
    format!("key-vim.host.{kind}-{name}")
}

/// The address vmk0 has: the host's management address, 127.0.0.1 when it has none yet (an
/// in-process host that serves nothing).
fn address(vim: &Vim) -> IpAddr {
    vim.cfg
        .address
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}

/// vmk0's MAC: VMware's OUI and three bytes of the host's SMBIOS UUID (stable per host).
pub fn vmk0_mac(vim: &Vim) -> String {
    let hex: String = vim
        .host
        .api_uuid()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    let b = |i: usize| &hex[hex.len() - 6 + 2 * i..hex.len() - 4 + 2 * i];
    format!("00:50:56:{}:{}:{}", b(0), b(1), b(2))
}

fn netmask(a: IpAddr) -> &'static str {
    match a {
        IpAddr::V4(v) if v.is_loopback() => "255.0.0.0",
        IpAddr::V4(_) => "255.255.255.0",
        IpAddr::V6(_) => "",
    }
}

/// vmk0, under `key` (HostNetworkInfo's `key-vim.host.VirtualNic-vmk0`; the virtual NIC
/// manager prefixes its service: `management.key-vim.host.VirtualNic-vmk0`).
fn vmk0(vim: &Vim, key_: String) -> Data {
    let addr = address(vim);
    let mac = vmk0_mac(vim);
    Data::new("HostVirtualNic")
        .with("device", VNIC)
        .with("key", key_)
        .with("portgroup", PORTGROUP)
        .with(
            "spec",
            Data::new("HostVirtualNicSpec")
                .with(
                    "ip",
                    Data::new("HostIpConfig")
                        .with("dhcp", false)
                        .with("ipAddress", addr.to_string())
                        .with("subnetMask", netmask(addr)),
                )
                .with("mac", mac)
                .with("mtu", 1500)
                .with("tsoEnabled", true),
        )
        .with("port", key("PortGroup.Port", "33554436"))
}

/// The services a VMkernel NIC can carry (`HostVirtualNicManagerNicType`); vmk0 carries
/// management only, as after an install.
const NIC_TYPES: &[&str] = &[
    "management",
    "vmotion",
    "faultToleranceLogging",
    "vSphereReplication",
    "vSphereReplicationNFC",
    "vSphereProvisioning",
    "vsan",
];

/// One service's NIC configuration: vmk0 a candidate, selected for management.
fn net_config(vim: &Vim, nic_type: &str) -> Data {
    let k = format!("{nic_type}.{}", key("VirtualNic", VNIC));
    let selected = if nic_type == "management" {
        vec![k.clone()]
    } else {
        Vec::new()
    };
    Data::new("VirtualNicManagerNetConfig")
        .with("nicType", nic_type)
        .with("multiSelectAllowed", true)
        .with(
            "candidateVnic",
            Value::Array("HostVirtualNic", vec![vmk0(vim, k).into()]),
        )
        .with("selectedVnic", Value::strings(selected))
}

/// HostVirtualNicManager (`ha-vnic-mgr` [inferred: vcsim's capture of a host]): which VMkernel
/// NIC carries which service. Ansible's `vmware.vmware.esxi_hosts` inventory finds a host's
/// management address with QueryNetConfig("management").
pub fn call(vim: &mut Vim, _ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    match req.method.as_str() {
        "QueryNetConfig" => {
            let t = required(req, "nicType")?.text.trim().to_string();
            if !NIC_TYPES.contains(&t.as_str()) {
                return Err(bad_param(req, format!("unknown nicType {t:?}")));
            }
            Ok(Some(net_config(vim, &t).into()))
        }
        _ => Err(method_not_found(req)),
    }
}

pub fn manager_properties(vim: &Vim) -> Data {
    Data::new("HostVirtualNicManager").with(
        "info",
        Data::new("HostVirtualNicManagerInfo").with(
            "netConfig",
            Value::Array(
                "VirtualNicManagerNetConfig",
                NIC_TYPES
                    .iter()
                    .map(|t| net_config(vim, t).into())
                    .collect(),
            ),
        ),
    )
}

pub fn info(vim: &Vim) -> Data {
    let addr = address(vim);
    let mac = vmk0_mac(vim);
    let policy = || Data::new("HostNetworkPolicy");
    let vswitch = Data::new("HostVirtualSwitch")
        .with("name", VSWITCH)
        .with("key", key("VirtualSwitch", VSWITCH))
        .with("numPorts", 128)
        .with("numPortsAvailable", 124)
        .with("mtu", 1500)
        .with("portgroup", Value::strings([key("PortGroup", PORTGROUP)]))
        .with("pnic", Value::strings([key("PhysicalNic", PNIC)]))
        .with(
            "spec",
            Data::new("HostVirtualSwitchSpec")
                .with("numPorts", 128)
                .with(
                    "bridge",
                    Data::new("HostVirtualSwitchBondBridge")
                        .with("nicDevice", Value::strings([PNIC.to_string()])),
                )
                .with("policy", policy())
                .with("mtu", 1500),
        );
    let portgroup = Data::new("HostPortGroup")
        .with("key", key("PortGroup", PORTGROUP))
        .with(
            "port",
            Value::Array(
                "HostPortGroupPort",
                vec![Data::new("HostPortGroupPort")
                    .with("key", key("PortGroup.Port", "33554436"))
                    .with("mac", Value::strings([mac.clone()]))
                    .with("type", "host")
                    .into()],
            ),
        )
        .with("vswitch", key("VirtualSwitch", VSWITCH))
        .with("computedPolicy", policy())
        .with(
            "spec",
            Data::new("HostPortGroupSpec")
                .with("name", PORTGROUP)
                .with("vlanId", 0)
                .with("vswitchName", VSWITCH)
                .with("policy", policy()),
        );
    let pnic = Data::new("PhysicalNic")
        .with("key", key("PhysicalNic", PNIC))
        .with("device", PNIC)
        .with("pci", "0000:0b:00.0")
        .with("driver", "nvmxnet3")
        .with(
            "linkSpeed",
            Data::new("PhysicalNicLinkInfo")
                .with("speedMb", 10000)
                .with("duplex", true),
        )
        .with(
            "spec",
            Data::new("PhysicalNicSpec").with(
                "linkSpeed",
                Data::new("PhysicalNicLinkInfo")
                    .with("speedMb", 10000)
                    .with("duplex", true),
            ),
        )
        .with("wakeOnLanSupported", false)
        .with("mac", mac.clone());
    let vnic = vmk0(vim, key("VirtualNic", VNIC));
    let fqdn = vim.host.hostname();
    let (short, domain) = fqdn.split_once('.').unwrap_or((fqdn.as_str(), ""));
    let dns = Data::new("HostDnsConfig")
        .with("dhcp", false)
        .with("hostName", short)
        .with("domainName", domain)
        .with("address", Value::strings([]))
        .with("searchDomain", Value::strings([]));
    Data::new("HostNetworkInfo")
        .with(
            "vswitch",
            Value::Array("HostVirtualSwitch", vec![vswitch.into()]),
        )
        .with(
            "portgroup",
            Value::Array("HostPortGroup", vec![portgroup.into()]),
        )
        .with("pnic", Value::Array("PhysicalNic", vec![pnic.into()]))
        .with("vnic", Value::Array("HostVirtualNic", vec![vnic.into()]))
        .with("dnsConfig", dns)
        .with(
            "ipRouteConfig",
            Data::new("HostIpRouteConfig").opt(
                "defaultGateway",
                match addr {
                    IpAddr::V4(v) if !v.is_loopback() => {
                        let o = v.octets();
                        Some(format!("{}.{}.{}.1", o[0], o[1], o[2]))
                    }
                    _ => None,
                },
            ),
        )
}
