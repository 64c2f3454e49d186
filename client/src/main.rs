//! `vaultctl`: the thin client scripts call.

mod cli;
mod commands;
mod curl;
mod exit;
mod import;
mod progress;
mod request;
mod scan;
mod secret_input;
mod writeout;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

/// Parses argv; `request`'s repeatable body flags also get their order.
fn parse() -> Result<cli::Cli, clap::Error> {
    let matches = cli::Cli::command().try_get_matches()?;
    let mut cli = cli::Cli::from_arg_matches(&matches)?;
    if let (cli::Command::Request(a), Some(("request", m))) =
        (&mut cli.command, matches.subcommand())
    {
        a.order_from(m);
    }
    Ok(cli)
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout with exit 0.
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // Usage errors: one line, like every other error.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("vaultctl: {first} (see `vaultctl --help`)");
            return ExitCode::from(exit::USAGE);
        }
    };
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            let _ = std::io::stdout().flush();
            eprintln!("vaultctl: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
