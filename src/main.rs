//! The `webhooks` executable: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use webhooks::cli::{Cli, Command, run_client};

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    // `--data` names the file store and `--database` PostgreSQL: both at once is a mistake
    // (one would be silently ignored).
    if let Some(("serve", m)) = matches.subcommand()
        && m.value_source("data") != Some(ValueSource::DefaultValue)
        && m.value_source("database").is_some()
    {
        eprintln!(
            "error: --data (WEBHOOKS_DATA) and --database (WEBHOOKS_DATABASE) name two different stores: give one"
        );
        return ExitCode::from(2);
    }
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Serve(args) => webhooks::serve::run(args),
        Command::Import(args) => webhooks::cli::run_import(args),
        Command::Client(client) => run_client(client),
    }
}
