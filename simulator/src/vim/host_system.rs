//! HostSystem `ha-host`: the properties clients read (facts section 3, "HostSystem pieces the
//! clients touch"), the maintenance-mode, reboot and shutdown tasks, and the two internal
//! methods esxcli clients start from (RetrieveManagedMethodExecuter, RetrieveDynamicTypeManager:
//! docs/esxcli.md; [`super::esxcli`]).
//!
//! Only fields every API version from 4.1 on knows are written: pyVmomi rejects an element its
//! negotiated version lacks.

use std::time::Duration;

use super::service_instance::about;
use super::task::{self, Action};
use super::{ids, method_not_found, moref, required, required_bool, Ctx, Vim};
use crate::api::{Call, Data, Fault, Value};
use crate::host::PowerState;

pub fn call(vim: &mut Vim, ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    let action = match req.method.as_str() {
        // Not in configManager (on a vCenter they are not even there): only these return them.
        // ESXi has them from 5.0, with the reflective executer.
        "RetrieveManagedMethodExecuter" if super::esxcli::over_api(vim.host.profile()) => {
            return Ok(Some(
                moref("ReflectManagedMethodExecuter", ids::MANAGED_METHOD_EXECUTER).into(),
            ))
        }
        "RetrieveDynamicTypeManager" if super::esxcli::over_api(vim.host.profile()) => {
            return Ok(Some(
                moref("InternalDynamicTypeManager", ids::DYNAMIC_TYPE_MANAGER).into(),
            ))
        }
        // vSphere API 6.5 and later: seconds since the host booted.
        "RetrieveHardwareUptime" if vim.host.profile().version_number() >= 60_500 => {
            let up = vim
                .host
                .last_boot()
                .map_or(0, |b| vim.now().since(b).as_secs() as i64);
            return Ok(Some(Value::Long(up)));
        }
        "EnterMaintenanceMode_Task" => {
            required(req, "timeout")?;
            Action::EnterMaintenance
        }
        "ExitMaintenanceMode_Task" => {
            required(req, "timeout")?;
            Action::ExitMaintenance
        }
        "RebootHost_Task" => Action::Reboot {
            force: required_bool(req, "force")?,
        },
        "ShutdownHost_Task" => Action::Shutdown {
            force: required_bool(req, "force")?,
        },
        _ => return Err(method_not_found(req)),
    };
    Ok(Some(task::create(vim, ctx, action).into()))
}

fn power_state(p: PowerState) -> Value {
    Value::enumerated(
        "HostSystemPowerState",
        match p {
            PowerState::On => "poweredOn",
            PowerState::Off => "poweredOff",
            PowerState::Booting { .. } => "unknown",
        },
    )
}

/// `ManagedEntityStatus` values.
pub(crate) fn status(s: &'static str) -> Value {
    Value::enumerated("ManagedEntityStatus", s)
}

fn runtime(vim: &Vim) -> Data {
    Data::new("HostRuntimeInfo")
        .with(
            "connectionState",
            Value::enumerated("HostSystemConnectionState", "connected"),
        )
        .with("powerState", power_state(vim.host.power_state()))
        .with("standbyMode", "none")
        .with("inMaintenanceMode", vim.host.in_maintenance_mode())
        .opt("bootTime", vim.host.last_boot())
}

fn system_info(vim: &Vim) -> Data {
    Data::new("HostSystemInfo")
        .with("vendor", "VMware, Inc.")
        .with("model", "esxi-sim")
        .with("uuid", vim.host.api_uuid())
}

const MEMORY: i64 = 64 * 1024 * 1024 * 1024;

fn hardware(vim: &Vim) -> Data {
    Data::new("HostHardwareInfo")
        .with("systemInfo", system_info(vim))
        .with(
            "cpuInfo",
            Data::new("HostCpuInfo")
                .with("numCpuPackages", 1)
                .with("numCpuCores", 4)
                .with("numCpuThreads", 8)
                .with("hz", 2_400_000_000i64),
        )
        .with("memorySize", MEMORY)
}

fn summary(vim: &Vim) -> Data {
    let p = vim.host.profile();
    let uptime = vim.host.last_boot().map(|b| {
        let up = vim.now().since(b).as_secs();
        // A waiter reading it looks again when it next ticks.
        vim.note_drift(b.plus(Duration::from_secs(up + 1)));
        up as i32
    });
    Data::new("HostListSummary")
        .with("host", moref("HostSystem", ids::HOST))
        .with(
            "hardware",
            Data::new("HostHardwareSummary")
                .with("vendor", "VMware, Inc.")
                .with("model", "esxi-sim")
                .with("uuid", vim.host.api_uuid())
                .with("memorySize", MEMORY)
                .with("cpuModel", "Simulated CPU @ 2.40GHz")
                .with("cpuMhz", 2400)
                .with("numCpuPkgs", 1)
                .with("numCpuCores", 4)
                .with("numCpuThreads", 8)
                .with("numNics", 1)
                .with("numHBAs", 1),
        )
        .with("runtime", runtime(vim))
        .with(
            "config",
            Data::new("HostConfigSummary")
                .with("name", vim.host.hostname())
                .with("port", 443)
                .with("product", about(p))
                .with("vmotionEnabled", false)
                .with("faultToleranceEnabled", false),
        )
        .with(
            "quickStats",
            Data::new("HostListSummaryQuickStats").opt("uptime", uptime),
        )
        .with("overallStatus", status("green"))
        .with("rebootRequired", false)
}

pub fn properties(vim: &Vim) -> Data {
    properties_only(vim, None)
}

/// The properties named in `wanted` (top-level names; None: all). A collector asking for
/// `name` and `runtime` of ten thousand hosts need not build each one's summary and hardware.
pub fn properties_only(vim: &Vim, wanted: Option<&[&str]>) -> Data {
    let want = |n: &str| wanted.is_none_or(|w| w.contains(&n));
    let host_ref = moref("HostSystem", ids::HOST);
    let mut d = Data::new("HostSystem");
    let mut add = |name: &'static str, v: &dyn Fn() -> Value| {
        if want(name) {
            d.fields.push((name, v()));
        }
    };
    add("parent", &|| {
        moref("ComputeResource", ids::COMPUTE_RESOURCE).into()
    });
    add("overallStatus", &|| status("green"));
    add("configStatus", &|| status("gray"));
    add("name", &|| vim.host.hostname().into());
    add("recentTask", &|| Value::refs(super::task::recent(vim)));
    add("runtime", &|| runtime(vim).into());
    add("summary", &|| summary(vim).into());
    add("hardware", &|| hardware(vim).into());
    add("configManagerEnabled", &|| true.into());
    add("configManager", &|| {
        Data::new("HostConfigManager")
            .with("advancedOption", moref("OptionManager", ids::ADV_OPTIONS))
            .with(
                "dateTimeSystem",
                moref("HostDateTimeSystem", ids::DATE_TIME_SYSTEM),
            )
            .with(
                "firmwareSystem",
                moref("HostFirmwareSystem", ids::FIRMWARE_SYSTEM),
            )
            .with(
                "virtualNicManager",
                moref("HostVirtualNicManager", ids::VIRTUAL_NIC_MANAGER),
            )
            .into()
    });
    add("config", &|| {
        Data::new("HostConfigInfo")
            .with("host", host_ref.clone())
            .with("product", about(vim.host.profile()))
            .with("network", super::host_network::info(vim))
            .with("dateTimeInfo", super::host_date_time_system::info())
            .into()
    });
    add("vm", &|| Value::refs([]));
    add("datastore", &|| Value::refs([]));
    add("network", &|| Value::refs([]));
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_wanted_properties_are_built_and_they_equal_the_full_ones() {
        let host = crate::HostConfig::new(crate::Profile::named("7.0U3").unwrap())
            .seed(3)
            .build()
            .unwrap();
        let vim = Vim::new(host, Default::default());
        let full = properties(&vim);
        let some = properties_only(&vim, Some(&["runtime", "name", "config", "nonesuch"]));
        let names: Vec<&str> = some.fields.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["name", "runtime", "config"]);
        for (k, v) in &some.fields {
            assert_eq!(Some(v), full.get(k), "{k}");
        }
        assert_eq!(properties_only(&vim, Some(&[])).fields.len(), 0);
        assert_eq!(properties_only(&vim, None), full);
    }
}
