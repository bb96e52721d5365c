//! PerformanceManager (`ha-perfmgr`, a vCenter's `PerfMgr`): present because clients follow
//! ServiceContent.perfManager when they start (govc's metric commands, PowerCLI's
//! `Get-Stat`), but this simulator keeps no performance counters. Every query answers as a host
//! with no counters does: empty lists, and a provider summary saying real-time statistics
//! refresh every 20 s (a host's real-time interval) with none available.

use super::{bad_param, method_not_found, Ctx, Vim};
use crate::api::call::parse_moref;
use crate::api::{Call, Data, Fault, Value};

/// The real-time sampling interval of a host, in seconds (vSphere's documented 20 s).
const REFRESH_RATE: i32 = 20;

pub fn call(vim: &mut Vim, ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    match req.method.as_str() {
        "QueryPerfCounter" | "QueryPerfCounterByLevel" | "QueryPerf" | "QueryPerfComposite" => {
            Ok(Some(Value::Array("PerfCounterInfo", Vec::new())))
        }
        "QueryAvailablePerfMetric" | "QueryPerfProviderSummary" => {
            let entity = super::required(req, "entity")?;
            let r = parse_moref(entity).map_err(|e| bad_param(req, e))?;
            if !vim.exists(&r, ctx.session.as_deref()) {
                return Err(super::not_found(&r));
            }
            if req.method == "QueryAvailablePerfMetric" {
                return Ok(Some(Value::Array("PerfMetricId", Vec::new())));
            }
            Ok(Some(
                Data::new("PerfProviderSummary")
                    .with("entity", r)
                    .with("currentSupported", true)
                    .with("summarySupported", false)
                    .with("refreshRate", REFRESH_RATE)
                    .into(),
            ))
        }
        _ => Err(method_not_found(req)),
    }
}

pub fn properties() -> Data {
    Data::new("PerformanceManager")
        .with(
            "description",
            Data::new("PerformanceDescription")
                .with(
                    "counterType",
                    Value::Array("ElementDescription", Vec::new()),
                )
                .with("statsType", Value::Array("ElementDescription", Vec::new())),
        )
        .with(
            "historicalInterval",
            Value::Array("PerfInterval", Vec::new()),
        )
        .with("perfCounter", Value::Array("PerfCounterInfo", Vec::new()))
}
