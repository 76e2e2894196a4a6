//! The command line: [`args`] are the arguments (clap); the commands call the admin
//! API and show the reply, one module per kind of work ([`commands`] for the registry
//! and tokens, [`reports`], [`import`] for bulk CSV files). This module runs the chosen
//! command and decides how the answer is shown.

mod args;
mod commands;
mod import;
mod reports;

use std::fs;

use anyhow::{Context, bail};
use provisioning::client::ApiClient;
use provisioning::output;
use serde_json::Value;

pub(crate) use args::Cli;
use args::Command;

/// Exit code: bad rows in an import; nothing was applied.
pub(crate) const EXIT_BAD_ROWS: u8 = 3;
/// Exit code: the token is missing, unknown, revoked, or its role may not do this.
pub(crate) const EXIT_DENIED: u8 = 4;
/// Exit code: a `--partial` import applied the good rows and rejected others.
pub(crate) const EXIT_PARTLY_APPLIED: u8 = 5;

/// How a command ended, for the exit code.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done.
    Done,
    /// An import had bad rows and applied nothing.
    BadRows,
    /// A `--partial` import applied the good rows and rejected others.
    PartlyApplied,
}

fn read_token(cli: &Cli) -> anyhow::Result<String> {
    if let Some(path) = &cli.token_file {
        let text = fs::read_to_string(path)
            .with_context(|| format!("reading the token file {}", path.display()))?;
        return Ok(text.trim().to_owned());
    }
    match std::env::var("FIELDSYNC_TOKEN") {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_owned()),
        _ => bail!("no token: set FIELDSYNC_TOKEN or pass --token-file"),
    }
}

/// Connects to the gateway the arguments name.
pub(crate) fn client(cli: &Cli) -> anyhow::Result<ApiClient> {
    let token = read_token(cli)?;
    let ca = match &cli.ca {
        Some(path) => Some(
            fs::read(path).with_context(|| format!("reading the CA file {}", path.display()))?,
        ),
        None => None,
    };
    Ok(ApiClient::new(&cli.gateway, token, ca.as_deref())?)
}

/// Runs the command.
pub(crate) fn run(cli: &Cli) -> anyhow::Result<Outcome> {
    let api = client(cli)?;
    let show = Show { json: cli.json };
    match &cli.command {
        Command::Whoami => {
            let me = api.get("/api/v1/whoami")?;
            show.record(&me, &["name", "role", "permissions"]);
        }
        Command::Tokens(c) => commands::tokens(&api, show, c)?,
        Command::Agencies(c) => return commands::agencies(&api, show, c),
        Command::Officers(c) => return commands::officers(&api, show, c),
        Command::Devices(c) => return commands::devices(&api, show, c),
        Command::Reports(c) => reports::reports(&api, show, c)?,
    }
    Ok(Outcome::Done)
}

/// How replies are shown: the gateway's JSON as it came (`--json`), or a table.
#[derive(Clone, Copy)]
struct Show {
    json: bool,
}

impl Show {
    fn list(self, value: &Value, columns: &[&str]) {
        if self.json {
            println!("{}", output::json(value));
        } else {
            let rows = value.as_array().cloned().unwrap_or_default();
            println!("{}", output::table(&rows, columns));
        }
    }

    fn record(self, value: &Value, fields: &[&str]) {
        if self.json {
            println!("{}", output::json(value));
        } else {
            println!("{}", output::record(value, fields));
        }
    }
}
