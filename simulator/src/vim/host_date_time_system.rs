//! HostDateTimeSystem (`configManager.dateTimeSystem`): the host's time zone (UTC, as ESXi
//! runs) and its clock, which here is the virtual clock. QueryDateTime answers the host's
//! virtual now, so a tool that checks clock skew before a backup sees the simulation's time.
//! Its id on a standalone host is `dateTimeSystem` [inferred: not captured from a real host].

use super::{method_not_found, Ctx, Vim};
use crate::api::{Call, Data, Fault, Value};

fn utc() -> Data {
    Data::new("HostDateTimeSystemTimeZone")
        .with("key", "UTC")
        .with("name", "UTC")
        .with("description", "UTC")
        .with("gmtOffset", 0)
}

pub fn info() -> Data {
    Data::new("HostDateTimeInfo").with("timeZone", utc()).with(
        "ntpConfig",
        Data::new("HostNtpConfig").with("server", Value::strings([])),
    )
}

pub fn call(vim: &mut Vim, _ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    match req.method.as_str() {
        "QueryDateTime" => Ok(Some(Value::Time(vim.now()))),
        "QueryAvailableTimeZones" => Ok(Some(Value::Array(
            "HostDateTimeSystemTimeZone",
            vec![utc().into()],
        ))),
        "RefreshDateTimeSystem" => Ok(None),
        // The host's clock is the fleet's virtual clock: move it with the control API.
        "UpdateDateTime" | "UpdateDateTimeConfig" => Err(Fault::new(
            "NotSupported",
            "esxi-sim: the host clock is the simulation's virtual clock (move it with the control API)",
        )),
        _ => Err(method_not_found(req)),
    }
}

pub fn properties() -> Data {
    Data::new("HostDateTimeSystem").with("dateTimeInfo", info())
}
