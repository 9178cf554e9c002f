//! Structured logs through `tracing`: text for people, JSON for log
//! pipelines.

use std::io::IsTerminal;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

pub fn init(config: &LogConfig) -> anyhow::Result<()> {
    // openraft narrates every election, vote and startup step of every
    // group at info (dozens of lines per shard per start); fenghuo logs the
    // events that matter itself. A level that names openraft wins.
    let level = if config.level.contains("openraft") {
        config.level.clone()
    } else {
        format!("{},openraft=warn", config.level)
    };
    let filter = EnvFilter::try_new(&level).with_context(|| format!("log level {:?}", config.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = if config.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| anyhow::anyhow!("initialising logging: {e}"))
}
