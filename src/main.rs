//! The `fenghuo` binary: configuration, wiring and the command line.
//!
//! `fenghuo` with no arguments is `fenghuo serve`: a single node with data
//! in `./data`, listening on port 9800.

mod config;
mod logging;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "fenghuo",
    version,
    about = "Prometheus-compatible monitoring and alerting backend"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Validate fenghuo's configuration file.
    CheckConfig {
        /// fenghuo's YAML configuration file.
        file: PathBuf,
    },
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// fenghuo's YAML configuration file (all options have defaults).
    #[arg(long = "config.file", env = "FENGHUO_CONFIG")]
    config_file: Option<PathBuf>,
    /// Listen address, overriding `server.listen`.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Data directory, overriding `data_dir`.
    #[arg(long = "data-dir")]
    data_dir: Option<PathBuf>,
    /// Log level, overriding `log.level`.
    #[arg(long = "log.level")]
    log_level: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => run_serve(args),
        Command::CheckConfig { file } => Config::load(&file).map(|_| println!("{}: SUCCESS", file.display())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fenghuo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config_file {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(level) = args.log_level {
        config.log.level = level;
    }
    config.validate()?;
    logging::init(&config.log)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fenghuo")
        .build()?
        .block_on(server::serve(config))
}
