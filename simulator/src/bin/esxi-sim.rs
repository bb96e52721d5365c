//! `esxi-sim`: the simulator's command line. The API server arrives with `serve`; today it lists
//! profiles and runs a host model for a span of virtual time, printing its event log.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use esxi_sim::profile::{Profile, Schedule};
use esxi_sim::HostConfig;

#[derive(Parser)]
#[command(
    name = "esxi-sim",
    version,
    about = "A mock ESXi host for configuration backup/restore testing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the build profiles.
    Profiles,
    /// Run one host model for a span of virtual time and print its event log.
    Simulate {
        #[arg(long, default_value = "6.7U3")]
        profile: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Virtual hours to run.
        #[arg(long, default_value_t = 3)]
        hours: u64,
        /// Override the auto-backup schedule (`every-10-minutes`, `1 * * * *`, ...).
        #[arg(long)]
        schedule: Option<String>,
        /// Edit /etc/hosts every this many minutes (0: never).
        #[arg(long, default_value_t = 25)]
        edit_every: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("esxi-sim: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cmd: Command) -> Result<(), Box<dyn std::error::Error>> {
    match cmd {
        Command::Profiles => {
            println!(
                "{:<8} {:<10} {:<10} {:<34} schedule",
                "name", "build", "api", "release level"
            );
            for p in Profile::all() {
                println!(
                    "{:<8} {:<10} {:<10} {:<34} {}",
                    p.name, p.build, p.api_version, p.release_level, p.schedule
                );
            }
        }
        Command::Simulate {
            profile,
            seed,
            hours,
            schedule,
            edit_every,
        } => {
            let mut cfg = HostConfig::new(Profile::named(&profile)?).seed(seed);
            if let Some(s) = schedule {
                cfg = cfg.schedule(Schedule::parse(&s)?);
            }
            let mut host = cfg.build()?;
            let end = host.now().plus(Duration::from_secs(hours * 3600));
            let mut n = 0;
            while host.now() < end {
                let step = if edit_every == 0 {
                    hours * 60
                } else {
                    edit_every
                };
                host.advance(Duration::from_secs(step * 60));
                if edit_every > 0 && host.now() < end {
                    n += 1;
                    host.write_file("/etc/hosts", format!("10.0.0.{n} nas\n"))?;
                }
            }
            host.advance_to(end);
            for e in host.events().iter() {
                println!("{e}");
            }
            println!("boot bank: {}", host.bootbank_writes());
        }
    }
    Ok(())
}
