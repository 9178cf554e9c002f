//! The `fenghuo` binary: configuration, wiring and the command line.
//!
//! `fenghuo` with no arguments is `fenghuo serve`: a single node with data
//! in `./data`, listening on port 9800.

mod config;
mod logging;
mod security;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// The write path allocates many small, short-lived objects (labels, decode
/// buffers); mimalloc serves them several times faster than glibc's malloc,
/// which dominated CPU profiles under remote-write load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Validate configuration files: Alertmanager's `alertmanager.yml` (like
    /// `amtool check-config`) or fenghuo's own YAML, told apart by their keys.
    CheckConfig {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Validate Prometheus rule files, like `promtool check rules`.
    CheckRules {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run test files.
    #[command(subcommand)]
    Test(TestCommand),
    /// Alerting tools: route tests, template rendering, config checks.
    #[command(subcommand)]
    Alerting(fenghuo_alerting::cli::AlertingCommand),
    /// Cut a damaged shard log before its first bad entry, so fenghuo can
    /// start again (run it with fenghuo stopped). The damaged bytes and the
    /// segments after them are kept beside the log as `*.damaged` files.
    RepairLog {
        /// The data directory (`data_dir` of the configuration).
        #[arg(long = "data-dir", default_value = "./data")]
        data_dir: PathBuf,
        /// Only report what would be cut.
        #[arg(long = "dry-run")]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum TestCommand {
    /// Alerting scenarios: input alerts over time, expected notifications.
    Alerts {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Rule unit tests in promtool's format, like `promtool test rules`.
    Rules {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Only run test groups whose names match this regular expression (repeatable).
        #[arg(long)]
        run: Vec<String>,
        /// Write JUnit XML test results to this file.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Print when each test group starts and ends, and dump its data.
        #[arg(long)]
        debug: bool,
        /// Show differing alerts as a colored JSON difference.
        #[arg(long)]
        diff: bool,
        /// Ignore fields rule files do not have (custom metadata).
        #[arg(long = "ignore-unknown-fields")]
        ignore_unknown_fields: bool,
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
        Command::CheckConfig { files } => check_config(&files),
        Command::CheckRules { files } => {
            return promtool_exit(fenghuo_alerting::ruler::cli::check_rules(&files));
        }
        Command::Test(TestCommand::Rules {
            files,
            run,
            junit,
            debug,
            diff,
            ignore_unknown_fields,
        }) => {
            let opts = fenghuo_alerting::ruler::unittest::Options {
                run,
                diff,
                debug,
                ignore_unknown_fields,
            };
            return promtool_exit(fenghuo_alerting::ruler::cli::test_rules_with(
                &files,
                &opts,
                junit.as_deref(),
            ));
        }
        Command::Test(TestCommand::Alerts { files }) => {
            run_alerting(fenghuo_alerting::cli::AlertingCommand::TestAlerts { files })
        }
        Command::Alerting(cmd) => run_alerting(cmd),
        Command::RepairLog { data_dir, dry_run } => repair_log(&data_dir, dry_run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fenghuo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a rule command's output as promtool does and exits with its code.
fn promtool_exit(outcome: fenghuo_alerting::ruler::cli::Outcome) -> ExitCode {
    let code = fenghuo_alerting::ruler::cli::print(&outcome);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Keys only fenghuo's own configuration has at its top level.
const FENGHUO_CONFIG_KEYS: [&str; 8] = [
    "server", "data_dir", "log", "storage", "ingest", "query", "alerting", "ruler",
];

fn check_config(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut alertmanager_files = Vec::new();
    let mut failed = false;
    for file in files {
        let is_fenghuo = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| serde_yaml::from_str::<serde_yaml::Mapping>(&text).ok())
            .is_some_and(|m| {
                m.keys()
                    .any(|k| k.as_str().is_some_and(|k| FENGHUO_CONFIG_KEYS.contains(&k)))
            });
        if !is_fenghuo {
            alertmanager_files.push(file.clone());
            continue;
        }
        match Config::load(file) {
            Ok(_) => println!("Checking '{}'  SUCCESS", file.display()),
            Err(e) => {
                println!("Checking '{}'  FAILED: {e:#}", file.display());
                failed = true;
            }
        }
    }
    if !alertmanager_files.is_empty() {
        let (report, ok) = fenghuo_alerting::cli::check_config_files(&alertmanager_files);
        print!("{report}");
        failed |= !ok;
    }
    if failed {
        anyhow::bail!("configuration check failed");
    }
    Ok(())
}

fn repair_log(data_dir: &std::path::Path, dry_run: bool) -> anyhow::Result<()> {
    let tsdb_dir = data_dir.join("tsdb");
    let reports = fenghuo_storage::tsdb::Tsdb::repair_logs(&tsdb_dir, dry_run)?;
    if reports.is_empty() {
        anyhow::bail!("no shard logs under {}", tsdb_dir.display());
    }
    for (log, report) in reports {
        let Some((segment, damage)) = &report.damage else {
            println!("{}: sound", log.display());
            continue;
        };
        println!("{}: damaged: {}", log.display(), damage.describe(segment));
        let verb = if dry_run { "would move" } else { "moved" };
        for (path, bytes) in &report.set_aside {
            println!("  {verb} {bytes} bytes aside to {}", path.display());
        }
        println!(
            "  entries from {} on {} lost to the store",
            damage.index,
            if dry_run { "would be" } else { "are" }
        );
    }
    Ok(())
}

fn run_alerting(cmd: fenghuo_alerting::cli::AlertingCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (report, ok) = runtime.block_on(fenghuo_alerting::cli::run(cmd));
    print!("{report}");
    if !ok {
        anyhow::bail!("failed");
    }
    Ok(())
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
        .block_on(server::serve(config, args.config_file))
}
