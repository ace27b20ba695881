//! The `webhooks` executable: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use webhooks::cli::{Cli, Command, run_client};

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => webhooks::serve::run(args),
        Command::Import(args) => webhooks::cli::run_import(args),
        Command::Client(client) => run_client(client),
    }
}
