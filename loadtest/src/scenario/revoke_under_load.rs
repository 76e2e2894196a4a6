//! `revoke-under-load`: a field day during which an equipment manager revokes some
//! devices through the gateway's admin API while they push. For each revoked device
//! the harness measures how long its connection stayed open after the revocation was
//! sent (an upper bound on "after it committed": the commit happens between the
//! request and its answer) and checks that its reconnect is refused. Verified at the
//! end, revoked devices included: what they saw acknowledged before must be kept.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use protocol::DeviceId;

use crate::options::{RunError, RunOptions};
use crate::report::{Figure, Report, Target};
use crate::runner::fleet_run::{Baselines, Director, field_day_plan, run_fleet};
use crate::sim::{Revoker, ops};

/// The goal: a revoked device's connection is closed within this, at p99.
pub const CLOSE_P99_TARGET_MS: f64 = 1000.0;

/// How long one admin request may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Revokes devices through `POST /api/v1/devices/{id}/status` with the PKI's admin
/// token, as the provisioning CLI does.
pub struct AdminApi {
    agent: ureq::Agent,
    base: String,
    token: String,
}

impl AdminApi {
    /// A client of the operator listener at `http`, with the admin token.
    pub fn new(http: SocketAddr, token: String) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(ADMIN_TIMEOUT))
            .build()
            .into();
        Self {
            agent,
            base: format!("http://{http}"),
            token,
        }
    }

    fn revoke_blocking(&self, device: &DeviceId) -> Result<(), String> {
        let url = format!("{}/api/v1/devices/{device}/status", self.base);
        let body = serde_json::json!({
            "status": "revoked",
            "reason": "loadtest: revoke-under-load",
        });
        let mut reply = self
            .agent
            .post(&url)
            .header("Authorization", format!("Bearer {}", self.token))
            .send_json(&body)
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = reply.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let text = reply.body_mut().read_to_string().unwrap_or_default();
        Err(format!("POST {url}: HTTP {status}: {}", text.trim()))
    }
}

impl Revoker for Arc<AdminApi> {
    fn revoke<'a>(
        &'a self,
        device: &'a DeviceId,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        let api = self.clone();
        let device = device.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || api.revoke_blocking(&device))
                .await
                .map_err(|e| e.to_string())?
        })
    }
}

/// Which devices are revoked, and when: spread over the middle half of the steady
/// phase, every `devices / count`-th device.
pub fn schedule(devices: usize, count: usize, steady: Duration) -> HashMap<usize, Duration> {
    let count = count.min(devices);
    if count == 0 {
        return HashMap::new();
    }
    let stride = devices / count;
    (0..count)
        .map(|k| {
            let at = steady / 4 + (steady / 2).mul_f64(k as f64 / count as f64);
            (k * stride + stride / 2, at)
        })
        .collect()
}

/// Runs the scenario.
pub async fn run(options: &RunOptions) -> Result<Report, RunError> {
    if options.gateway.is_some() {
        return Err(RunError::Options(
            "revoke-under-load revokes through the admin API of the gateway it starts; it cannot target --gateway".into(),
        ));
    }
    let count = match options.sim.revoke {
        0 => options.devices.div_ceil(20),
        n => n,
    };
    let revocations = schedule(options.devices, count, options.duration);
    let baselines = Baselines::default();
    let make_revoker = |g: &crate::target::OwnGateway| {
        let http = g.process().http_addr?;
        let token = std::fs::read_to_string(g.pki_dir.join(pki::layout::ADMIN_TOKEN_FILE)).ok()?;
        let api = Arc::new(AdminApi::new(http, token.trim().to_owned()));
        Some(Arc::new(api) as Arc<dyn Revoker>)
    };
    let run = run_fleet(
        options,
        field_day_plan(options),
        baselines,
        Director::None,
        make_revoker,
        revocations.clone(),
    )
    .await?;
    let (mut figures, mut failures) = run.common_figures(options.devices);
    figures.extend(run.ingest_figures(options));
    let seen: Vec<_> = run
        .outcomes
        .iter()
        .filter_map(|o| o.revocation.as_ref().map(|r| (&o.device, r)))
        .collect();
    let closed = seen.iter().filter(|(_, r)| r.close_after.is_some()).count();
    let refused = seen.iter().filter(|(_, r)| r.reconnect_refused).count();
    figures.push(Figure::new(
        "devices revoked",
        seen.len() as f64,
        "devices",
        None,
        Target::Equals(revocations.len() as f64),
    ));
    figures.push(Figure::new(
        "revoked connections closed",
        closed as f64,
        "devices",
        None,
        Target::Equals(revocations.len() as f64),
    ));
    figures.push(Figure::new(
        "revoked reconnects refused",
        refused as f64,
        "devices",
        None,
        Target::Equals(revocations.len() as f64),
    ));
    if let Some(p99) = run.stats.quantile_ms(ops::REVOCATION_CLOSE, 0.99) {
        figures.push(Figure::new(
            "revocation → connection closed, p99",
            p99,
            "ms",
            None,
            Target::AtMost(CLOSE_P99_TARGET_MS),
        ));
    }
    if seen.len() < revocations.len() {
        failures.push(format!(
            "{} of {} scheduled revocations did not happen (run too short?)",
            revocations.len() - seen.len(),
            revocations.len()
        ));
    }
    for (device, r) in &seen {
        if r.close_after.is_none() {
            failures.push(format!(
                "{device}: its connection stayed open after the revocation ({})",
                r.reconnect
            ));
        }
        if !r.reconnect_refused {
            failures.push(format!(
                "{device}: the reconnect after revocation was not refused: {}",
                r.reconnect
            ));
        }
    }
    Ok(run.report(options, figures, failures))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_are_spread_over_the_middle_of_the_run() {
        let s = schedule(100, 5, Duration::from_secs(40));
        assert_eq!(s.len(), 5);
        for (device, at) in &s {
            assert!(*device < 100);
            assert!(*at >= Duration::from_secs(10) && *at < Duration::from_secs(30));
        }
        assert!(schedule(3, 10, Duration::from_secs(1)).len() == 3);
        assert!(schedule(10, 0, Duration::from_secs(1)).is_empty());
    }
}
