//! The `webhooks` executable: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use webhooks::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => webhooks::serve::run(args),
    }
}
