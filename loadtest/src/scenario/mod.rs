//! The scenarios a run can play, one file each, and the choice between them. Each
//! scenario builds on the shared runner ([`crate::runner`]) and the run's options
//! ([`crate::options`]), never on another scenario.

pub mod baselines;
pub mod connect_storm;
pub mod field_day;
pub mod hostile;
pub mod ingest;
pub mod kill_restart;
pub mod revoke_under_load;
pub mod shift_end;
pub mod upload;

use crate::options::{RunError, RunOptions, Scenario};
use crate::report::Report;

/// Runs the chosen scenario.
pub async fn run(options: &RunOptions) -> Result<Report, RunError> {
    if options.gateway.is_some() != options.pki.is_some() {
        return Err(RunError::Options(
            "--gateway and --pki go together: an external gateway needs the PKI folder whose devices it enrolled".into(),
        ));
    }
    if !(options.sim.record_rate >= 0.0 && options.sim.record_rate <= 1000.0) {
        return Err(RunError::Options(
            "--record-rate must be between 0 and 1000 records per device per second".into(),
        ));
    }
    if options.devices == 0 {
        return Err(RunError::Options("--devices must be at least 1".into()));
    }
    std::fs::create_dir_all(&options.out_dir)?;
    match options.scenario {
        Scenario::ConnectStorm => connect_storm::run(options).await,
        Scenario::FieldDay => field_day::run(options).await,
        Scenario::Ingest => ingest::run(options).await,
        Scenario::ShiftEnd => shift_end::run(options).await,
        Scenario::RevokeUnderLoad => revoke_under_load::run(options).await,
        Scenario::KillRestart => kill_restart::run(options).await,
        Scenario::Hostile => hostile::run(options).await,
    }
}
