//! `esxi-sim ctl`: the control API from a shell. Plain HTTP/1.1 over a socket (the control API
//! is loopback, plain HTTP); answers are printed as the API gives them (JSON), except `hosts`,
//! which prints a table.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use clap::{Args, Subcommand};
use esxi_sim::fleet::control::encode;

#[derive(Args)]
pub struct CtlArgs {
    /// The control API (`serve --control ADDR` prints `control: URL`).
    #[arg(
        long,
        env = "ESXI_SIM_CONTROL",
        default_value = "http://127.0.0.1:8440"
    )]
    url: String,
    /// Bearer token. Default: the one a local `serve` wrote for this URL (its
    /// `control-token-file:` line).
    #[arg(long, env = "ESXI_SIM_CONTROL_TOKEN")]
    token: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The fleet: mode, host count, profiles, clock.
    Fleet,
    /// Every host with its state, as a table (--json for the API's answer).
    Hosts {
        #[arg(long)]
        json: bool,
    },
    /// One host's state. HOST: index, address, vCenter id (host-12) or host name.
    Host { host: String },
    /// Print a file of the host's RAM /etc.
    Read { host: String, path: String },
    /// Write a file of the host's RAM /etc from --data or stdin.
    Write {
        host: String,
        path: String,
        #[arg(long)]
        data: Option<String>,
    },
    /// Delete a file of the host's RAM /etc.
    Rm { host: String, path: String },
    /// A PSOD: RAM lost, host down until power-on.
    Crash { host: String },
    /// Cut the power now, or during the next save (--during-next-save).
    PowerCut {
        host: String,
        #[arg(long)]
        during_next_save: bool,
    },
    /// Power on a host that is off; --recovery-key KEY types `encryptionRecoveryKey=KEY` at
    /// the boot prompt (a TPM host on a new board, or another host's TPM bundle).
    PowerOn {
        host: String,
        #[arg(long, value_name = "KEY")]
        recovery_key: Option<String>,
    },
    /// 7.0 U2+ configuration encryption: mode, secure boot, TPM, recovery key, why a boot
    /// stopped. --mode tpm seals the key to the TPM (it cannot be undone).
    Encryption {
        host: String,
        #[arg(long, value_parser = ["tpm", "none"], ignore_case = true)]
        mode: Option<String>,
        #[arg(long, value_parser = ["on", "off"])]
        require_secure_boot: Option<String>,
    },
    /// The recovery key of a TPM-mode host, as `esxcli system settings encryption recovery
    /// list` prints it (--json: the API's answer).
    RecoveryKey {
        host: String,
        #[arg(long)]
        json: bool,
    },
    /// A new recovery key for a TPM-mode host (the next save persists it).
    RotateRecoveryKey { host: String },
    /// Replace the motherboard and its TPM: the host shuts down (saving) and stays off. A
    /// TPM-mode host then boots only with its recovery key.
    ReplaceBoard {
        host: String,
        /// The new board gets a new SMBIOS UUID (by default the vendor programs the old one).
        #[arg(long)]
        new_uuid: bool,
    },
    /// Reboot (graceful: shutdown save first; --force: none).
    Reboot {
        host: String,
        #[arg(long)]
        force: bool,
    },
    /// Make the host stateless (no boot bank) or give it one back.
    Stateless {
        host: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Cut the host off the network for a (virtual) duration: `5m`.
    Unreachable { host: String, duration: String },
    /// End an `unreachable` early.
    Reconnect { host: String },
    /// Boot device faults: read-only, full, a torn next write, slow saves. Without options,
    /// shows them.
    Flash {
        host: String,
        #[arg(long, value_parser = ["on", "off"])]
        read_only: Option<String>,
        #[arg(long, value_parser = ["on", "off"])]
        full: Option<String>,
        /// The next save that writes state.tgz leaves only its first half on the device.
        #[arg(long)]
        torn_next_write: bool,
        /// Every save answers this much later (`2s`), or `off`.
        #[arg(long)]
        slow: Option<String>,
    },
    /// Install the host afresh (same identity, image defaults, healthy flash).
    Reinstall { host: String },
    /// The fleet CA's certificate (PEM), to verify the hosts and the vCenter with.
    Ca,
    /// The virtual clock.
    Clock,
    /// Move the clock forward (running every save due on the way): `1h`, `30d`.
    Advance { by: String },
    /// Virtual seconds per wall second.
    Speed { speed: f64 },
    /// The event log (--follow: stream new events as they happen).
    Events {
        #[arg(long)]
        host: Option<String>,
        /// Comma-separated kinds: saved,crashed,fault,...
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, short)]
        follow: bool,
    },
    /// The fault rules with their counters.
    Faults,
    /// Add a fault rule (JSON, see docs/control-api.md), e.g.
    /// '{"method":"BackupFirmwareConfiguration","action":{"type":"fault","fault":"HostCommunication"}}'
    FaultAdd { rule: String },
    /// Remove a fault rule by id, or `all`.
    FaultRm { id: String },
}

pub fn run(a: CtlArgs) -> Result<(), Box<dyn std::error::Error>> {
    let token = a
        .token
        .or_else(|| esxi_sim::fleet::control::token_for_url(&a.url));
    let c = Client::new(&a.url, token)?;
    let enc = |s: &str| encode(s);
    let host_path = |h: &str, rest: &str| format!("/v1/hosts/{}{rest}", enc(h));
    let file_path = |h: &str, p: &str| {
        let p = p.trim_start_matches('/');
        let p = p.strip_prefix("etc/").unwrap_or(p);
        let segs: Vec<String> = p.split('/').map(enc).collect();
        host_path(h, &format!("/files/etc/{}", segs.join("/")))
    };
    match a.cmd {
        Cmd::Fleet => c.print("GET", "/v1/fleet", None),
        Cmd::Hosts { json: true } => c.print("GET", "/v1/hosts", None),
        Cmd::Hosts { json: false } => {
            let body = c.call("GET", "/v1/hosts", None)?;
            let hosts: Vec<serde_json::Value> = serde_json::from_slice(&body)?;
            println!(
                "{:>5} {:<10} {:<24} {:<12} {:<7} {:<8} {:<5} {:<7} {:<20} {:>6}",
                "index",
                "id",
                "name",
                "hostname",
                "profile",
                "power",
                "maint",
                "unsaved",
                "last save",
                "writes"
            );
            for h in hosts {
                let s = |k: &str| match &h[k] {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "-".into(),
                    v => v.to_string(),
                };
                println!(
                    "{:>5} {:<10} {:<24} {:<12} {:<7} {:<8} {:<5} {:<7} {:<20} {:>6}",
                    s("index"),
                    s("id"),
                    s("name"),
                    s("hostname"),
                    s("profile"),
                    s("power"),
                    s("maintenance_mode"),
                    s("unsaved_changes"),
                    s("last_save"),
                    s("bootbank_writes")
                );
            }
            Ok(())
        }
        Cmd::Host { host } => c.print("GET", &host_path(&host, ""), None),
        Cmd::Read { host, path } => {
            let body = c.call("GET", &file_path(&host, &path), None)?;
            std::io::stdout().write_all(&body)?;
            Ok(())
        }
        Cmd::Write { host, path, data } => {
            let bytes = match data {
                Some(d) => d.into_bytes(),
                None => {
                    let mut v = Vec::new();
                    std::io::stdin().read_to_end(&mut v)?;
                    v
                }
            };
            c.print("PUT", &file_path(&host, &path), Some(bytes))
        }
        Cmd::Rm { host, path } => c.print("DELETE", &file_path(&host, &path), None),
        Cmd::Crash { host } => c.print("POST", &host_path(&host, "/crash"), None),
        Cmd::PowerCut {
            host,
            during_next_save,
        } => {
            let when = if during_next_save { "next-save" } else { "now" };
            let body = serde_json::json!({ "when": when }).to_string();
            c.print("POST", &host_path(&host, "/power-cut"), Some(body.into()))
        }
        Cmd::PowerOn { host, recovery_key } => {
            let body =
                recovery_key.map(|k| serde_json::json!({ "recovery_key": k }).to_string().into());
            c.print("POST", &host_path(&host, "/power-on"), body)
        }
        Cmd::Encryption {
            host,
            mode,
            require_secure_boot,
        } => {
            let mut body = serde_json::Map::new();
            if let Some(m) = mode {
                body.insert("mode".into(), m.to_ascii_uppercase().into());
            }
            if let Some(s) = require_secure_boot {
                body.insert("require_secure_boot".into(), (s == "on").into());
            }
            let path = host_path(&host, "/encryption");
            if body.is_empty() {
                c.print("GET", &path, None)
            } else {
                let b = serde_json::Value::Object(body).to_string();
                c.print("PUT", &path, Some(b.into()))
            }
        }
        Cmd::RecoveryKey { host, json } => {
            let path = host_path(&host, "/encryption");
            if json {
                return c.print("GET", &path, None);
            }
            let body = c.call("GET", &path, None)?;
            let st: serde_json::Value = serde_json::from_slice(&body)?;
            let key = &st["recovery_key"];
            if key.is_null() {
                let why = match st["mode"].as_str() {
                    Some("TPM") => "the host is not running".to_string(),
                    Some(m) => {
                        format!("the encryption mode is {m}; recovery keys exist in TPM mode only")
                    }
                    None => "this build does not encrypt its configuration".to_string(),
                };
                return Err(format!("no recovery key: {why}").into());
            }
            print!(
                "{}",
                recovery_list(
                    key["id"].as_str().unwrap_or(""),
                    key["key"].as_str().unwrap_or("")
                )
            );
            Ok(())
        }
        Cmd::RotateRecoveryKey { host } => c.print(
            "POST",
            &host_path(&host, "/encryption/recovery/rotate"),
            None,
        ),
        Cmd::ReplaceBoard { host, new_uuid } => {
            let body = serde_json::json!({ "new_uuid": new_uuid }).to_string();
            c.print(
                "POST",
                &host_path(&host, "/replace-board"),
                Some(body.into()),
            )
        }
        Cmd::Reboot { host, force } => {
            let body = serde_json::json!({ "force": force }).to_string();
            c.print("POST", &host_path(&host, "/reboot"), Some(body.into()))
        }
        Cmd::Stateless { host, state } => {
            let body = serde_json::json!({ "enabled": state == "on" }).to_string();
            c.print("PUT", &host_path(&host, "/stateless"), Some(body.into()))
        }
        Cmd::Unreachable { host, duration } => {
            let body = serde_json::json!({ "for": duration }).to_string();
            c.print("POST", &host_path(&host, "/unreachable"), Some(body.into()))
        }
        Cmd::Reconnect { host } => c.print("DELETE", &host_path(&host, "/unreachable"), None),
        Cmd::Flash {
            host,
            read_only,
            full,
            torn_next_write,
            slow,
        } => {
            let mut body = serde_json::Map::new();
            if let Some(r) = read_only {
                body.insert("read_only".into(), (r == "on").into());
            }
            if let Some(f) = full {
                body.insert("full".into(), (f == "on").into());
            }
            if torn_next_write {
                body.insert("torn_next_write".into(), true.into());
            }
            if let Some(s) = slow {
                let v = if s == "off" {
                    serde_json::Value::Null
                } else {
                    s.into()
                };
                body.insert("slow".into(), v);
            }
            if body.is_empty() {
                c.print("GET", &host_path(&host, "/flash"), None)
            } else {
                let b = serde_json::Value::Object(body).to_string();
                c.print("PUT", &host_path(&host, "/flash"), Some(b.into()))
            }
        }
        Cmd::Reinstall { host } => c.print("POST", &host_path(&host, "/reinstall"), None),
        Cmd::Ca => c.print("GET", "/v1/ca.pem", None),
        Cmd::Clock => c.print("GET", "/v1/clock", None),
        Cmd::Advance { by } => {
            let body = serde_json::json!({ "by": by }).to_string();
            c.print("POST", "/v1/clock/advance", Some(body.into()))
        }
        Cmd::Speed { speed } => {
            let body = serde_json::json!({ "speed": speed }).to_string();
            c.print("PUT", "/v1/clock/speed", Some(body.into()))
        }
        Cmd::Events {
            host,
            kind,
            limit,
            follow,
        } => {
            let mut q = Vec::new();
            if let Some(h) = host {
                q.push(format!("host={}", enc(&h)));
            }
            if let Some(k) = kind {
                q.push(format!("kind={}", enc(&k)));
            }
            if let Some(l) = limit {
                q.push(format!("limit={l}"));
            }
            let qs = if q.is_empty() {
                String::new()
            } else {
                format!("?{}", q.join("&"))
            };
            if follow {
                c.follow(&format!("/v1/events/stream{qs}"))
            } else {
                c.print("GET", &format!("/v1/events{qs}"), None)
            }
        }
        Cmd::Faults => c.print("GET", "/v1/faults", None),
        Cmd::FaultAdd { rule } => c.print("POST", "/v1/faults", Some(rule.into_bytes())),
        Cmd::FaultRm { id } if id == "all" => c.print("DELETE", "/v1/faults", None),
        Cmd::FaultRm { id } => c.print("DELETE", &format!("/v1/faults/{}", enc(&id)), None),
    }
}

/// `esxcli system settings encryption recovery list`'s table, as VMware's documentation shows
/// it (facts 6.5): the heading's rule is as wide as the braced GUID, then `---`.
fn recovery_list(id: &str, key: &str) -> String {
    let rule = "-".repeat(id.len().max("Recovery ID".len()));
    format!(
        "{:<w$}  Key\n{rule}  ---\n{id}  {key}\n",
        "Recovery ID",
        w = rule.len()
    )
}

struct Client {
    addr: String,
    host: String,
    token: Option<String>,
}

impl Client {
    fn new(url: &str, token: Option<String>) -> Result<Client, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: the control API is plain http://"))?;
        let hostport = rest.split('/').next().unwrap_or(rest).to_string();
        let addr = if hostport.contains(':') {
            hostport.clone()
        } else {
            format!("{hostport}:80")
        };
        Ok(Client {
            addr,
            host: hostport,
            token,
        })
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<BufReader<TcpStream>, String> {
        let mut s = TcpStream::connect(&self.addr)
            .map_err(|e| format!("cannot reach the control API at {}: {e}", self.addr))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(600)));
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: esxi-sim-ctl\r\n",
            self.host
        );
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        let body = body.unwrap_or_default();
        if !body.is_empty() || method != "GET" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        if method == "POST" || method == "PUT" {
            // A file's contents are bytes; everything else the API takes is JSON.
            let ty = if path.contains("/files/") {
                "application/octet-stream"
            } else {
                "application/json"
            };
            head.push_str(&format!("Content-Type: {ty}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes())
            .and_then(|_| s.write_all(body))
            .map_err(|e| format!("sending to {}: {e}", self.addr))?;
        Ok(BufReader::new(s))
    }

    /// The status and headers of a response.
    fn head(r: &mut BufReader<TcpStream>) -> Result<(u16, Vec<(String, String)>), String> {
        let mut line = String::new();
        r.read_line(&mut line).map_err(|e| e.to_string())?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP answer: {line:?}"))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            r.read_line(&mut line).map_err(|e| e.to_string())?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        Ok((status, headers))
    }

    fn call(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<Vec<u8>, String> {
        let mut r = self.send(method, path, body.as_deref())?;
        let (status, headers) = Self::head(&mut r)?;
        let mut data = Vec::new();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        if chunked {
            loop {
                let mut size = String::new();
                r.read_line(&mut size).map_err(|e| e.to_string())?;
                let n = usize::from_str_radix(size.trim(), 16).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                let mut chunk = vec![0; n + 2];
                r.read_exact(&mut chunk).map_err(|e| e.to_string())?;
                data.extend_from_slice(&chunk[..n]);
            }
        } else {
            r.read_to_end(&mut data).map_err(|e| e.to_string())?;
        }
        if status >= 400 {
            let msg = serde_json::from_slice::<serde_json::Value>(&data)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&data).into_owned());
            return Err(format!("HTTP {status}: {msg}"));
        }
        Ok(data)
    }

    fn print(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let data = self.call(method, path, body)?;
        std::io::stdout().write_all(&data)?;
        Ok(())
    }

    /// Prints each event of a Server-Sent Events stream as one JSON line, until interrupted.
    fn follow(&self, path: &str) -> Result<(), Box<dyn std::error::Error>> {
        let mut r = self.send("GET", path, None)?;
        let (status, _) = Self::head(&mut r)?;
        if status >= 400 {
            return Err(format!("HTTP {status}").into());
        }
        let mut line = String::new();
        let mut out = std::io::stdout();
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            // Chunk-size lines are hex digits; SSE data lines start with `data: `.
            if let Some(d) = line.trim_end().strip_prefix("data: ") {
                writeln!(out, "{d}")?;
                out.flush()?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recovery_key_prints_as_esxcli_does() {
        let id = "{2DDD5424-7F3F-406A-8DA8-D62630F6C8BC}";
        let out = recovery_list(id, "478269-039194");
        assert_eq!(
            out,
            "Recovery ID                             Key\n\
             --------------------------------------  ---\n\
             {2DDD5424-7F3F-406A-8DA8-D62630F6C8BC}  478269-039194\n"
        );
    }
}
