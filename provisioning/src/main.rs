//! `provisioning`: agencies, officers, devices, certificates and bulk CSV imports
//! over the gateway's admin API. See `provisioning --help`.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use provisioning::client::ClientError;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(&args) {
        Ok(cli::Outcome::Done) => ExitCode::SUCCESS,
        Ok(cli::Outcome::BadRows) => ExitCode::from(cli::EXIT_BAD_ROWS),
        Ok(cli::Outcome::PartlyApplied) => ExitCode::from(cli::EXIT_PARTLY_APPLIED),
        Err(e) => {
            eprintln!(
                "provisioning: {}",
                protocol::error_text::one_line(e.as_ref())
            );
            let denied = e
                .downcast_ref::<ClientError>()
                .and_then(ClientError::status)
                .is_some_and(|s| s == 401 || s == 403);
            if denied {
                ExitCode::from(cli::EXIT_DENIED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
