//! The binary's edge: argument parsing, logging set-up, exit codes.
//! Everything else lives in the library (`studiod::…`), except `studiod demo`
//! (feature `demo`, on by default): it runs the simulator (`studiod_sim`) and
//! an embedded broker, which the library must not depend on.
#![deny(unsafe_code)]

#[cfg(feature = "demo")]
mod demo;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "studiod", version, about = "Booth daemon: PTZ cameras over VISCA, lights over Art-Net, OSC cues, sell scenes")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon.
    Run {
        /// Config file (default: $STUDIOD_CONFIG, else /etc/studiod/studiod.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Log format (default: human on a terminal, JSON otherwise is *not* implied; pass `json` for JSON lines).
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Validate config, profiles and scenes; print every problem as file:line:col: message.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Technician CLI against a running daemon (over its HTTP API).
    Ctl(studiod::adapters::ctl::CtlArgs),
    /// Every booth on a site broker, live (read-only): online, scene, slot, offline devices, scene set, clock.
    Fleet(studiod::adapters::fleet::FleetArgs),
    /// Find the cameras on a VISCA chain (--port) or one IP camera (--url), or ask one Art-Net node (--artnet); print [[camera]] / [[artnet]] TOML.
    Discover(studiod::adapters::discover::DiscoverArgs),
    /// Run a complete simulated booth on this machine (loopback only).
    #[cfg(feature = "demo")]
    Demo {
        /// Folder for the demo's generated config, ptys and state (default: a temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Use this MQTT broker (mqtt://host:port) instead of the embedded one.
        #[arg(long, value_name = "URL")]
        mqtt: Option<String>,
        /// Also forward every Art-Net packet the demo's monitor receives to this loopback address.
        #[arg(long, value_name = "ADDR")]
        artnet_copy: Option<std::net::SocketAddr>,
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

fn init_logging(format: Option<LogFormat>, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("STUDIOD_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format.unwrap_or(LogFormat::Human) {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Check { config } => {
            let path = config.unwrap_or_else(studiod::config::default_path);
            match studiod::config::load(&path) {
                Ok(c) => {
                    println!(
                        "{}: ok ({} cameras, {} fixtures, {} artnet outputs, {} sacn outputs, {} osc targets, {} scenes)",
                        path.display(),
                        c.cameras.len(),
                        c.fixtures.len(),
                        c.artnet.len(),
                        c.sacn.len(),
                        c.osc.len(),
                        c.scenes.len()
                    );
                    // Warnings never change the exit code.
                    for w in &c.warnings {
                        println!("{w}");
                    }
                    ExitCode::SUCCESS
                }
                Err(diags) => {
                    let n = diags.len();
                    print!("{diags}");
                    eprintln!("{n} problem{} found", if n == 1 { "" } else { "s" });
                    ExitCode::from(1)
                }
            }
        }
        Cmd::Run { config, log_format } => {
            init_logging(log_format, "info");
            let path = config.unwrap_or_else(studiod::config::default_path);
            let config = match studiod::config::load(&path) {
                Ok(c) => c,
                Err(diags) => {
                    eprint!("{diags}");
                    eprintln!("studiod: invalid configuration ({} problems); not starting", diags.len());
                    return ExitCode::from(2);
                }
            };
            for w in &config.warnings {
                tracing::warn!("{w}");
            }
            run_runtime(studiod::daemon::run(config))
        }
        Cmd::Ctl(args) => studiod::adapters::ctl::main(args),
        Cmd::Fleet(args) => studiod::adapters::fleet::main(args),
        Cmd::Discover(args) => ExitCode::from(studiod::adapters::discover::main(args)),
        #[cfg(feature = "demo")]
        Cmd::Demo { dir, mqtt, artnet_copy, log_format } => {
            // The demo narrates on stdout; logs only for problems unless
            // STUDIOD_LOG says otherwise. rumqttd logs every client disconnect
            // at error level, which is noise for a demo.
            init_logging(log_format, "warn,rumqttd=off");
            run_runtime(demo::run(demo::DemoOptions { dir, mqtt, artnet_copy }))
        }
    }
}

fn run_runtime(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("studiod: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(fut);
    // Everything was stopped in order inside `fut`; whatever is still parked
    // on the blocking pool must not hold the exit up.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("studiod: {e:#}");
            ExitCode::FAILURE
        }
    }
}
