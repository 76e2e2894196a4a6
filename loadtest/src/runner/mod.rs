//! What every scenario shares: the fleet's PKI made and enrolled (or an external
//! gateway's PKI read), and the bare quinn + rustls server of the baselines started on
//! it. The data-moving scenarios' common run is [`fleet_run`].

pub mod fleet_run;

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::child::{ChildError, ChildProcess, ChildSpec};
use crate::fleet::{self, SimDevice};
use crate::options::{RunError, RunOptions};
use crate::progress::Progress;
use crate::target::{OwnGateway, gateway_config};

/// The fleet of a run and where its gateway keeps its data.
pub struct Setup {
    /// The simulated devices.
    pub fleet: Vec<SimDevice>,
    /// Devices enrolled beside the fleet and not simulated (an attack's stolen
    /// certificates).
    pub spare: Vec<SimDevice>,
    /// Entries in the gateway's audit log once the fleet was enrolled (`None` for an
    /// external gateway), so that a run can tell how many it added.
    pub audit_entries_enrolled: Option<i64>,
    /// The PKI folder.
    pub pki_dir: PathBuf,
    /// The data folder of the gateway this harness starts (`None` for an external one).
    pub data_dir: Option<PathBuf>,
}

/// Makes the PKI and enrolls it (own gateway), or reads the external gateway's PKI;
/// then loads the devices' identities: the fleet, and `spare` more after it.
pub async fn setup(
    options: &RunOptions,
    progress: &Progress,
    spare: usize,
) -> Result<Setup, RunError> {
    let wanted = options.devices + spare;
    let (pki_dir, data_dir, audit_entries_enrolled) = match &options.pki {
        Some(pki) => (pki.clone(), None, None),
        None => {
            let pki = options.out_dir.join("pki");
            let data = options.out_dir.join("gateway-data");
            progress.set(format!("making a PKI with {wanted} device bundles"));
            let devices = u32::try_from(wanted)
                .map_err(|_| RunError::Options("--devices is too large".into()))?;
            fleet::make_pki(&pki, devices)?;
            progress.set("enrolling the fleet in the gateway's store");
            let entries = fleet::enroll(&gateway_config(&data, &pki)?, &pki).await?;
            (pki, Some(data), Some(entries))
        }
    };
    progress.set("loading device identities");
    let mut fleet = fleet::load(&pki_dir, wanted)?;
    let spare = fleet.split_off(options.devices);
    Ok(Setup {
        fleet,
        spare,
        pki_dir,
        data_dir,
        audit_entries_enrolled,
    })
}

/// Starts the gateway under test on the run's folders when the harness owns it;
/// returns it (`None` for an external gateway) and where devices connect.
pub async fn start_gateway(
    options: &RunOptions,
    setup: &Setup,
) -> Result<(Option<OwnGateway>, SocketAddr), RunError> {
    let own = match &setup.data_dir {
        Some(data) => Some(OwnGateway::start(&options.program, data, &setup.pki_dir).await?),
        None => None,
    };
    let addr = match (&own, options.gateway) {
        (Some(g), _) => g.device_addr(),
        (None, Some(addr)) => addr,
        (None, None) => {
            return Err(RunError::Options(
                "no gateway: --gateway (with --pki) names an external one, or none starts ours"
                    .into(),
            ));
        }
    };
    Ok((own, addr))
}

/// Starts the bare quinn + rustls server of the baseline on the run's PKI.
pub async fn start_bare_server(
    options: &RunOptions,
    pki_dir: &std::path::Path,
) -> Result<ChildProcess, ChildError> {
    ChildProcess::start(&ChildSpec {
        program: options.program.clone(),
        args: vec![
            "bare-server".into(),
            "--pki".into(),
            pki_dir.display().to_string(),
        ],
        env: vec![],
        name: "bare server".into(),
    })
    .await
}
