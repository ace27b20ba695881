//! The command line: one subcommand per job, every `serve` flag also read from `WEBHOOKS_*`.

use clap::{Parser, Subcommand};

use crate::config::ServeArgs;

#[derive(Debug, Parser)]
#[command(
    name = "webhooks",
    version,
    about = "A one-file webhook appliance for EnableNow events"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: API, portal and delivery workers
    Serve(ServeArgs),
}
