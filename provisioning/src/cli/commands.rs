//! The registry commands (tokens, agencies, officers, devices): each calls the admin
//! API and shows the reply.

use std::fs;
use std::path::Path;

use anyhow::Context;
use provisioning::client::{ApiClient, segment};
use provisioning::csvfile;
use serde_json::{Value, json};

use super::args::{
    AgenciesCommand, DeviceChange, DevicesCommand, NewDeviceArgs, OfficersCommand, TokensCommand,
    Why,
};
use super::import::import;
use super::{Outcome, Show};

const DEVICE_COLUMNS: &[&str] = &[
    "id",
    "kind",
    "serial",
    "status",
    "agency",
    "officer",
    "connected",
];
const AGENCY_COLUMNS: &[&str] = &["name", "class", "class_c_target"];
const OFFICER_COLUMNS: &[&str] = &[
    "certificate_number",
    "name",
    "certificate_status",
    "auxiliary",
    "agency",
];
const TOKEN_COLUMNS: &[&str] = &["name", "role", "created_by", "revoked_at"];

pub(super) fn tokens(api: &ApiClient, show: Show, command: &TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::Create { name, role, why } => {
            let made = api.post(
                "/api/v1/tokens",
                &json!({ "name": name, "role": role, "reason": why.reason }),
            )?;
            show.record(&made, &["name", "role", "token"]);
            if !show.json {
                eprintln!("keep the token secret; it is not shown again");
            }
        }
        TokensCommand::List => show.list(&api.get("/api/v1/tokens")?, TOKEN_COLUMNS),
        TokensCommand::Revoke { name, why } => {
            let path = format!("/api/v1/tokens/{}/revoke", segment(name));
            let done = api.post(&path, &json!({ "reason": why.reason }))?;
            show.record(&done, TOKEN_COLUMNS);
        }
    }
    Ok(())
}

pub(super) fn agencies(
    api: &ApiClient,
    show: Show,
    command: &AgenciesCommand,
) -> anyhow::Result<Outcome> {
    match command {
        AgenciesCommand::List => show.list(&api.get("/api/v1/agencies")?, AGENCY_COLUMNS),
        AgenciesCommand::Create {
            name,
            class,
            target,
            why,
        } => {
            let body = json!({ "name": name, "class": class, "class_c_target": target,
                "reason": why.reason });
            show.record(&api.post("/api/v1/agencies", &body)?, AGENCY_COLUMNS);
        }
        AgenciesCommand::SetClass {
            name,
            class,
            target,
            why,
        } => {
            let body = json!({ "class": class, "class_c_target": target, "reason": why.reason });
            let path = format!("/api/v1/agencies/{}/class", segment(name));
            show.record(&api.put(&path, &body)?, AGENCY_COLUMNS);
        }
        AgenciesCommand::Import(args) => {
            return import(
                api,
                show,
                &csvfile::AGENCIES,
                "/api/v1/agencies/import",
                args,
                |_| {},
            );
        }
    }
    Ok(Outcome::Done)
}

pub(super) fn officers(
    api: &ApiClient,
    show: Show,
    command: &OfficersCommand,
) -> anyhow::Result<Outcome> {
    let certificate = |number: &str, status: &str, why: &Why| -> anyhow::Result<()> {
        let path = format!("/api/v1/officers/{}/certificate", segment(number));
        let done = api.post(&path, &json!({ "status": status, "reason": why.reason }))?;
        show.record(&done, OFFICER_COLUMNS);
        Ok(())
    };
    match command {
        OfficersCommand::List => show.list(&api.get("/api/v1/officers")?, OFFICER_COLUMNS),
        OfficersCommand::Import(args) => {
            return import(
                api,
                show,
                &csvfile::OFFICERS,
                "/api/v1/officers/import",
                args,
                |_| {},
            );
        }
        OfficersCommand::Withdraw { number, why } => certificate(number, "withdrawn", why)?,
        OfficersCommand::Revoke { number, why } => certificate(number, "revoked", why)?,
        OfficersCommand::Restore { number, why } => certificate(number, "valid", why)?,
    }
    Ok(Outcome::Done)
}

pub(super) fn devices(
    api: &ApiClient,
    show: Show,
    command: &DevicesCommand,
) -> anyhow::Result<Outcome> {
    let status = |change: &DeviceChange, to: &str| -> anyhow::Result<()> {
        let path = format!("/api/v1/devices/{}/status", segment(&change.id));
        let done = api.post(&path, &json!({ "status": to, "reason": change.why.reason }))?;
        show.record(&done, DEVICE_COLUMNS);
        Ok(())
    };
    match command {
        DevicesCommand::List => show.list(&api.get("/api/v1/devices")?, DEVICE_COLUMNS),
        DevicesCommand::Show { id } => {
            let path = format!("/api/v1/devices/{}", segment(id));
            show.record(&api.get(&path)?, DEVICE_COLUMNS);
        }
        DevicesCommand::EnrollCsr { csr, device } => {
            let csr_pem = fs::read_to_string(csr)
                .with_context(|| format!("reading the CSR {}", csr.display()))?;
            let mut body = new_device_body(device);
            body["csr_pem"] = Value::from(csr_pem);
            let enrolled = api.post("/api/v1/devices/enroll-csr", &body)?;
            write_certificates(&device.out, &enrolled)?;
            show.record(&enrolled["device"], DEVICE_COLUMNS);
        }
        DevicesCommand::EnrollBundle { device } => {
            let enrolled = api.post("/api/v1/devices/bundle", &new_device_body(device))?;
            write_certificates(&device.out, &enrolled)?;
            show.record(&enrolled["device"], DEVICE_COLUMNS);
        }
        DevicesCommand::Import {
            import: args,
            agency,
        } => {
            return import(
                api,
                show,
                &csvfile::DEVICES,
                "/api/v1/devices/import",
                args,
                |row| {
                    let empty = row.get("agency").is_none_or(|a| a.as_str() == Some(""));
                    if let (Some(agency), true) = (agency, empty) {
                        row.insert("agency".into(), Value::from(agency.clone()));
                    }
                },
            );
        }
        DevicesCommand::Assign {
            id,
            agency,
            officer,
            clear_agency,
            clear_officer,
            force,
            why,
        } => {
            let path = format!("/api/v1/devices/{}/assign", segment(id));
            let body = json!({
                "agency": agency, "officer": officer, "clear_agency": clear_agency,
                "clear_officer": clear_officer, "force": force, "reason": why.reason,
            });
            show.record(&api.post(&path, &body)?, DEVICE_COLUMNS);
        }
        DevicesCommand::Suspend(c) => status(c, "suspended")?,
        DevicesCommand::Resume(c) => status(c, "in_service")?,
        DevicesCommand::Lost(c) => status(c, "lost")?,
        DevicesCommand::Revoke(c) => status(c, "revoked")?,
        DevicesCommand::Retire(c) => status(c, "retired")?,
    }
    Ok(Outcome::Done)
}

fn new_device_body(d: &NewDeviceArgs) -> Value {
    json!({
        "device_id": d.id, "kind": d.kind, "serial": d.serial, "agency": d.agency,
        "days": d.days, "reason": d.why.reason,
    })
}

/// Writes device.pem, ca.pem and (for a bundle) device.key with mode 0600.
fn write_certificates(out: &Path, enrolled: &Value) -> anyhow::Result<()> {
    fs::create_dir_all(out).with_context(|| format!("making {}", out.display()))?;
    let text = |field: &str| enrolled[field].as_str().map(str::to_owned);
    let cert = text("certificate_pem").context("the reply has no certificate")?;
    let ca = text("ca_pem").context("the reply has no CA certificate")?;
    fs::write(out.join("device.pem"), cert)?;
    fs::write(out.join("ca.pem"), ca)?;
    if let Some(key) = text("key_pem") {
        write_secret(&out.join("device.key"), key.as_bytes())?;
    }
    Ok(())
}

fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}
