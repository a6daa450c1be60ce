//! The HTTP server over a fake engine, for the browser tests and for
//! looking at the pages without hardware:
//!
//! ```text
//! cargo run --example http_fake -- --listen 127.0.0.1:0 --pin 4711 --token tech-token
//! ```
//! Prints `URL http://…` first, then one `COMMAND {json}` line per request the
//! fake engine receives. Reads test controls from stdin, one per line:
//! `scene NAME` (state changes as if applied over MQTT), `offline DEVICE REASON…`,
//! `online DEVICE`, `fail DEVICE REASON…` (commands touching it fail),
//! `heal DEVICE`, `slow MS` (scene replies wait MS ms for their cameras; a
//! newer scene within that supersedes the older: its cameras read
//! "cancelled"; `slow 0` answers at once again), `addscene NAME ORDER LABEL…`
//! (a copy of `house` under a new name, label and order, as if saved and
//! reloaded: the pages get the new model), `delscene NAME`, `quit`. Loopback only.
#![deny(unsafe_code)]

#[path = "../tests/http_support/mod.rs"]
mod http_support;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

use studiod::adapters::http::{Metrics, Options, Secret, Server};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Booth config (default: the repository's studiod.example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    pin: Option<String>,
    #[arg(long)]
    token: Option<String>,
    #[arg(long)]
    pin_file: Option<PathBuf>,
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Keep cookie sessions in DIR/sessions.json, as the daemon does in its
    /// state_dir (a restart on the same port keeps creators signed in).
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

fn secret(value: Option<String>, file: Option<PathBuf>, what: &'static str) -> Option<Secret> {
    match (value, file) {
        (Some(v), _) => Some(Secret::from_string(v)),
        (None, Some(f)) => Some(Secret::read(what, &f).unwrap_or_else(|e| panic!("{e}"))),
        _ => None,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        eprintln!("http_fake: loopback addresses only");
        std::process::exit(2);
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(std::env::var("STUDIOD_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let cfg = match &args.config {
        Some(p) => Arc::new(studiod::config::load(p).unwrap_or_else(|d| panic!("{d}"))),
        None => http_support::example_config(),
    };
    let mut fake = http_support::spawn(cfg.clone());
    let (cfg_tx, cfg_rx) = tokio::sync::watch::channel(cfg);
    let pin = secret(args.pin, args.pin_file, "creator PIN");
    let token = secret(args.token, args.token_file, "technician token");
    let opts = Options { session_file: args.state_dir.map(|d| d.join("sessions.json")), ..Options::default() };
    let server = Server::bind_with_secrets(args.listen, pin, token, cfg_rx, fake.handle.clone(), Metrics::new(), opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!("URL {}", server.url());
    let _ = std::io::stdout().flush();
    let cancel = CancellationToken::new();
    let server = tokio::spawn(server.run(cancel.clone()));

    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            Some(req) = fake.requests.recv() => {
                println!("COMMAND {}", http_support::describe(&req));
                let _ = std::io::stdout().flush();
            }
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(l)) => if !control(&fake, &cfg_tx, l.trim()) { break },
                // stdin closed (e.g. started with </dev/null): keep serving until killed.
                _ => stdin_open = false,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    cancel.cancel();
    let _ = server.await;
}

/// Apply one stdin control line; false to quit.
fn control(fake: &http_support::Fake, cfg: &tokio::sync::watch::Sender<Arc<studiod::config::model::Config>>, line: &str) -> bool {
    let mut parts = line.splitn(3, ' ');
    let (verb, dev, rest) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    match verb {
        "quit" => return false,
        "scene" => fake.state.send_modify(|s| {
            s.scene = Some(dev.to_string());
            s.scene_label = Some(if rest.is_empty() { dev.to_string() } else { rest.to_string() });
            s.applied_at = Some(std::time::SystemTime::now());
        }),
        "offline" => http_support::set_online(fake, dev, false, if rest.is_empty() { "no answer" } else { rest }),
        "online" => http_support::set_online(fake, dev, true, ""),
        "fail" => {
            fake.failing.lock().unwrap().insert(dev.to_string(), if rest.is_empty() { "no answer".into() } else { rest.to_string() });
        }
        "slow" => {
            *fake.scene_time.lock().unwrap() = std::time::Duration::from_millis(dev.parse().unwrap_or(0));
        }
        "addscene" => cfg.send_modify(|c| {
            let mut next = (**c).clone();
            let (order, label) = rest.split_once(' ').unwrap_or((rest, dev));
            if let Some(mut sc) = next.scenes.get("house").cloned() {
                sc.name = dev.to_string();
                sc.label = label.to_string();
                sc.order = order.parse().ok();
                next.scenes.insert(dev.to_string(), sc);
            }
            *c = Arc::new(next);
        }),
        "delscene" => cfg.send_modify(|c| {
            let mut next = (**c).clone();
            next.scenes.remove(dev);
            *c = Arc::new(next);
        }),
        "heal" => {
            fake.failing.lock().unwrap().remove(dev);
        }
        "" => {}
        other => eprintln!("http_fake: unknown control `{other}`"),
    }
    println!("OK {line}");
    let _ = std::io::stdout().flush();
    true
}
