//! Running the tool: its command from its TOOL.toml's directory, the estate in its environment,
//! killed at its timeout (and reported so), its output kept for the report.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::spec::Command;

/// How a run of the tool ended.
#[derive(Clone, Debug)]
pub struct Ran {
    /// The exit code; None when it was killed (timeout) or died of a signal.
    pub code: Option<i32>,
    pub timed_out: bool,
    pub took: Duration,
    /// The last part of what it printed (stdout then stderr), for the report.
    pub output: String,
}

/// Most of a tool's output the report keeps.
const OUTPUT_TAIL: usize = 4000;

pub async fn run(cmd: &Command, dir: &Path, env: &[(String, String)]) -> Result<Ran, String> {
    let started = Instant::now();
    let mut c = tokio::process::Command::new(&cmd.argv[0]);
    c.args(&cmd.argv[1..])
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Its own process group, so that a timeout ends what it started too.
    #[cfg(unix)]
    c.process_group(0);
    let mut child = c
        .spawn()
        .map_err(|e| format!("cannot run {:?} in {}: {e}", cmd.argv[0], dir.display()))?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let read_all = async {
        let _ = tokio::join!(out.read_to_end(&mut o), err.read_to_end(&mut e));
    };
    let (code, timed_out) = match tokio::time::timeout(cmd.timeout, async {
        read_all.await;
        child.wait().await
    })
    .await
    {
        Ok(Ok(status)) => (status.code(), false),
        Ok(Err(e)) => return Err(format!("waiting for the tool: {e}")),
        Err(_) => {
            kill_group(&child);
            let _ = child.kill().await;
            (None, true)
        }
    };
    let mut output = String::from_utf8_lossy(&o).into_owned();
    output.push_str(&String::from_utf8_lossy(&e));
    if output.len() > OUTPUT_TAIL {
        let cut = output.len() - OUTPUT_TAIL;
        let cut = (cut..output.len())
            .find(|i| output.is_char_boundary(*i))
            .unwrap_or(cut);
        output = format!("...{}", &output[cut..]);
    }
    Ok(Ran {
        code,
        timed_out,
        took: started.elapsed(),
        output,
    })
}

/// Ends the tool's whole process group (a shell script's children too).
fn kill_group(child: &tokio::process::Child) {
    #[cfg(unix)]
    if let Some(pid) = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .filter(|p| *p > 1)
    {
        // Not the system's `kill -KILL -PGID`: procps-ng 4.0.2's kill misreads a negative pid
        // and signals every process it may (seen here: it ended the shell running the tests).
        // SAFETY: kill(2) with a negative pid signals that process group and touches no memory;
        // the group is the tool's own (process_group(0) at spawn), never ours.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(argv: &[&str], timeout_ms: u64) -> Command {
        Command {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[tokio::test]
    async fn a_tool_that_hangs_is_killed_at_its_timeout_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        // A shell that starts a long sleep and waits: the sleep is in its process group.
        let script = format!(
            "sleep 30 & echo $! > {}; echo started; wait",
            pidfile.display()
        );
        let r = run(&cmd(&["sh", "-c", &script], 500), dir.path(), &[])
            .await
            .unwrap();
        assert!(r.timed_out && r.code.is_none(), "{r:?}");
        assert!(r.took < Duration::from_secs(10), "{r:?}");
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        // The grandchild is gone too (kill -0 fails on a dead process).
        std::thread::sleep(Duration::from_millis(200));
        let pid: i32 = pid.trim().parse().unwrap();
        // SAFETY: signal 0 only asks whether the process exists.
        let exists = unsafe { libc::kill(pid, 0) } == 0;
        // A killed process nobody has reaped yet (a container's init may not) is a zombie.
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        });
        let alive = exists && !zombie;
        assert!(!alive, "the tool's child survived its timeout");
    }

    #[tokio::test]
    async fn exit_status_environment_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let env = [("ESXI_TOOL_TEST".to_string(), "hello".to_string())];
        let r = run(
            &cmd(
                &[
                    "sh",
                    "-c",
                    "echo $ESXI_TOOL_TEST; pwd; echo oops >&2; exit 3",
                ],
                10_000,
            ),
            dir.path(),
            &env,
        )
        .await
        .unwrap();
        assert_eq!((r.code, r.timed_out), (Some(3), false));
        assert!(r.output.starts_with("hello\n"), "{}", r.output);
        assert!(r.output.contains("oops"));
        let e = run(&cmd(&["/no/such/tool"], 1000), dir.path(), &[])
            .await
            .unwrap_err();
        assert!(e.contains("/no/such/tool"), "{e}");
    }
}
