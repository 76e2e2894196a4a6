//! Devices: enrollment (from a CSR, as a bundle, or in bulk from an enrollment
//! file's rows), assignment to an agency and officer, and status changes (suspend,
//! back in service, lost, revoked, retired). A status change that stops admitting a
//! device closes its live connection at once: the store announces the change and the
//! endpoint's revocation task acts on it (`server::enforce_revocations`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pki::{FleetCa, PkiError, Validity};
use protocol::domain::{DeviceKind, DeviceStatus};
use protocol::{DeviceId, Millis};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use super::auth::{Authorized, ManageDevices, ReadRegistry};
use super::error::{ApiError, ErrorBody, require_reason};
use super::{Body, ImportReport, checked_only};
use crate::state::GatewayState;
use store::{
    AssignmentChange, DeviceImportRow, DeviceRow, FieldChange, ImportMode, NewDevice, RowError,
};

/// Longest certificate life the API issues, in days.
pub const MAX_DEVICE_DAYS: u32 = 3650;

/// A device as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    /// Device id.
    #[schema(value_type = String)]
    pub id: DeviceId,
    /// `recorder` or `terminal`.
    #[schema(value_type = String)]
    pub kind: DeviceKind,
    /// Hardware serial.
    pub serial: String,
    /// Owning agency's name.
    pub agency: Option<String>,
    /// Certificate number of the officer it is issued to.
    pub officer: Option<String>,
    /// `in_service`, `suspended`, `lost`, `revoked` or `retired`.
    #[schema(value_type = String)]
    pub status: DeviceStatus,
    /// SHA-256 of its certificate.
    pub certificate_fingerprint: String,
    /// When its certificate expires (ms since the Unix epoch).
    pub certificate_not_after: Millis,
    /// Last accepted hello (gateway time).
    pub last_seen: Option<Millis>,
    /// Connected to this gateway now.
    pub connected: bool,
}

/// Everything a view needs besides the row.
struct ViewContext {
    agencies: HashMap<i64, String>,
    connected: HashSet<DeviceId>,
}

impl ViewContext {
    async fn load(state: &GatewayState) -> Result<Self, ApiError> {
        Ok(ViewContext {
            agencies: state
                .store
                .list_agencies()
                .await?
                .into_iter()
                .map(|a| (a.id, a.name))
                .collect(),
            connected: state
                .live
                .snapshot()
                .into_iter()
                .map(|c| c.device_id)
                .collect(),
        })
    }

    fn view(&self, d: DeviceRow) -> DeviceView {
        DeviceView {
            agency: d.agency_id.and_then(|id| self.agencies.get(&id).cloned()),
            connected: self.connected.contains(&d.id),
            id: d.id,
            kind: d.kind,
            serial: d.serial,
            officer: d.assigned_officer,
            status: d.status,
            certificate_fingerprint: d.certificate_fingerprint,
            certificate_not_after: d.certificate_not_after,
            last_seen: d.last_seen,
        }
    }
}

/// What every enrollment names — the device and why — and, alone, the request of the
/// bundle path, where the gateway makes the device's key (development, simulation,
/// devices that cannot make a CSR).
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct DeviceEnrollment {
    /// New device id.
    pub device_id: String,
    /// `recorder` or `terminal`.
    pub kind: String,
    /// Hardware serial (the certificate's CN).
    pub serial: String,
    /// Owning agency's name.
    #[serde(default)]
    pub agency: Option<String>,
    /// Certificate life in days (default 365).
    #[serde(default)]
    pub days: Option<u32>,
    /// Why (audited).
    pub reason: String,
}

/// Enrollment of one device from a CSR made on the device (its key never leaves it).
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct CsrEnrollment {
    /// The device and why.
    #[serde(flatten)]
    pub device: DeviceEnrollment,
    /// The CSR, PEM.
    pub csr_pem: String,
}

/// An enrollment request with its fields checked.
struct CheckedEnrollment<'a> {
    id: DeviceId,
    kind: DeviceKind,
    serial: &'a str,
    agency: Option<String>,
    validity: Validity,
    reason: &'a str,
}

impl DeviceEnrollment {
    /// Checks every field; the error names the first bad one.
    fn check(&self, now: Millis) -> Result<CheckedEnrollment<'_>, ApiError> {
        Ok(CheckedEnrollment {
            reason: require_reason(&self.reason)?,
            id: device_id(&self.device_id)?,
            kind: word(&self.kind)?,
            serial: self.serial.trim(),
            agency: self.agency.clone().filter(|a| !a.trim().is_empty()),
            validity: validity(now, self.days)?,
        })
    }
}

impl CheckedEnrollment<'_> {
    /// The registry row for the certificate with `fingerprint`.
    fn new_device(&self, fingerprint: String) -> NewDevice {
        NewDevice {
            id: self.id.clone(),
            kind: self.kind,
            serial: self.serial.to_owned(),
            certificate_fingerprint: fingerprint,
            certificate_not_after: self.validity.not_after.unix_timestamp() * 1000,
            agency: self.agency.clone(),
        }
    }
}

/// An enrolled device and what it needs to connect.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct EnrolledDevice {
    /// The device as enrolled.
    pub device: DeviceView,
    /// Its certificate, PEM.
    pub certificate_pem: String,
    /// The fleet CA certificate, PEM (the device trusts it).
    pub ca_pem: String,
    /// Its private key, PEM: only for a bundle. Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_pem: Option<String>,
}

/// One row of an enrollment file, as text, with its line number.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct DeviceImportRowText {
    /// Line in the operator's file.
    pub line: u64,
    /// Device id.
    pub device_id: String,
    /// `recorder` or `terminal`.
    pub kind: String,
    /// Hardware serial.
    pub serial: String,
    /// SHA-256 of the certificate (64 hex digits).
    pub fingerprint: String,
    /// Certificate end, RFC 3339.
    pub not_after: String,
    /// Owning agency's name, or empty.
    #[serde(default)]
    pub agency: String,
}

/// Devices to enroll from an enrollment file.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct DeviceImport {
    /// The rows.
    pub rows: Vec<DeviceImportRowText>,
    /// Enroll the good rows even if some are bad.
    #[serde(default)]
    pub partial: bool,
    /// Check every row and enroll nothing.
    #[serde(default)]
    pub check_only: bool,
    /// Why (audited).
    pub reason: String,
}

/// An assignment: only what it names changes. An absent or `null` field is kept;
/// `clear_agency` / `clear_officer` clear one explicitly.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct Assignment {
    /// Owning agency's name (absent: kept).
    #[serde(default)]
    pub agency: Option<String>,
    /// Certificate number of the officer (absent: kept).
    #[serde(default)]
    pub officer: Option<String>,
    /// Clear the agency.
    #[serde(default)]
    pub clear_agency: bool,
    /// Clear the officer.
    #[serde(default)]
    pub clear_officer: bool,
    /// Assign an officer who is not certified now (withdrawn, revoked, expired or
    /// auxiliary); the reason says why, and the audit entry says it was forced.
    #[serde(default)]
    pub force: bool,
    /// Why (audited).
    pub reason: String,
}

impl Assignment {
    /// The change it asks for; naming a field and clearing it at once is refused.
    fn change(&self) -> Result<AssignmentChange<'_>, ApiError> {
        fn field<'a>(
            name: &str,
            value: Option<&'a str>,
            clear: bool,
        ) -> Result<FieldChange<&'a str>, ApiError> {
            match (value.map(str::trim).filter(|v| !v.is_empty()), clear) {
                (Some(_), true) => Err(ApiError::invalid(format!(
                    "{name} is both given and cleared; say one"
                ))),
                (Some(v), false) => Ok(FieldChange::Set(v)),
                (None, true) => Ok(FieldChange::Clear),
                (None, false) => Ok(FieldChange::Keep),
            }
        }
        let change = AssignmentChange {
            agency: field("agency", self.agency.as_deref(), self.clear_agency)?,
            officer: field("officer", self.officer.as_deref(), self.clear_officer)?,
            force: self.force,
        };
        if change.agency == FieldChange::Keep && change.officer == FieldChange::Keep {
            return Err(ApiError::invalid(
                "the assignment names nothing: give an agency or an officer, or clear one",
            ));
        }
        Ok(change)
    }
}

/// A status change.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct StatusChange {
    /// `in_service`, `suspended`, `lost`, `revoked` or `retired`.
    pub status: String,
    /// Why (audited).
    pub reason: String,
}

fn word<T: std::str::FromStr<Err = protocol::domain::UnknownWord>>(
    text: &str,
) -> Result<T, ApiError> {
    text.parse()
        .map_err(|e: protocol::domain::UnknownWord| ApiError::invalid(e.to_string()))
}

fn device_id(text: &str) -> Result<DeviceId, ApiError> {
    DeviceId::new(text.trim()).map_err(|e| ApiError::invalid(format!("device_id: {e}")))
}

/// Checks one enrollment row. Public for the device-file fuzz target, which feeds it
/// the rows the provisioning CLI reads from CSV.
pub fn parse_row(row: &DeviceImportRowText) -> Result<NewDevice, String> {
    let id = DeviceId::new(row.device_id.trim()).map_err(|e| format!("device_id: {e}"))?;
    let kind: DeviceKind = row.kind.parse().map_err(|e| format!("kind: {e}"))?;
    if row.serial.trim().is_empty() {
        return Err("serial is empty".into());
    }
    let not_after = OffsetDateTime::parse(row.not_after.trim(), &Rfc3339)
        .map_err(|e| format!("not_after {:?} is not RFC 3339: {e}", row.not_after))?;
    Ok(NewDevice {
        id,
        kind,
        serial: row.serial.trim().to_owned(),
        certificate_fingerprint: row.fingerprint.trim().to_owned(),
        certificate_not_after: (not_after.unix_timestamp_nanos() / 1_000_000) as Millis,
        agency: Some(row.agency.trim().to_owned()).filter(|a| !a.is_empty()),
    })
}

fn now_utc(now: Millis) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(now) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The fleet CA, when this gateway holds its key (a development PKI does).
fn fleet_ca(state: &GatewayState) -> Result<FleetCa, ApiError> {
    pki::load_pki_dir(&state.config.pki_dir()).map_err(|e| {
        ApiError::unavailable(format!(
            "this gateway cannot sign device certificates ({e}); sign offline with the fleet CA \
             and import the enrollment file"
        ))
    })
}

fn pki_error(e: PkiError) -> ApiError {
    match e {
        PkiError::BadCsr { .. }
        | PkiError::CsrNamesOtherDevice { .. }
        | PkiError::InvalidSerial { .. }
        | PkiError::InvalidValidity { .. } => ApiError::invalid(e.to_string()),
        other => ApiError::internal(&other),
    }
}

fn validity(now: Millis, days: Option<u32>) -> Result<Validity, ApiError> {
    let days = days.unwrap_or(pki::DEFAULT_DEVICE_DAYS);
    if days > MAX_DEVICE_DAYS {
        return Err(ApiError::invalid(format!(
            "days must be at most {MAX_DEVICE_DAYS}"
        )));
    }
    Validity::days_from(now_utc(now), days, "days").map_err(pki_error)
}

/// Enrolls one device (one transaction, reason audited) and shows it.
async fn enroll_one(
    state: &GatewayState,
    new: NewDevice,
    actor: &str,
    reason: &str,
) -> Result<DeviceView, ApiError> {
    if let Some(agency) = &new.agency
        && state.store.agency_by_name(agency).await?.is_none()
    {
        return Err(ApiError::not_found(format!(
            "no agency is named {agency:?}"
        )));
    }
    let rows = [DeviceImportRow {
        line: 0,
        device: new,
    }];
    let outcome = state
        .store
        .enroll_devices(
            &rows,
            ImportMode::AllOrNothing,
            actor,
            reason,
            state.clock.now(),
        )
        .await?;
    if let Some(bad) = outcome.rejected.into_iter().next() {
        // The agency was checked above; what remains is a conflict with the registry
        // (id, certificate or live serial already enrolled).
        return Err(ApiError::conflict(bad.reason));
    }
    let row = outcome
        .enrolled
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal(&"enrollment returned no device"))?;
    Ok(ViewContext::load(state).await?.view(row))
}

/// Every device, by id.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices",
    security(("bearer" = ["read_registry"])),
    responses((status = 200, body = Vec<DeviceView>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_devices(
    _auth: Authorized<ReadRegistry>,
    State(state): State<Arc<GatewayState>>,
) -> Result<Json<Vec<DeviceView>>, ApiError> {
    let context = ViewContext::load(&state).await?;
    let devices = state.store.list_devices().await?;
    Ok(Json(devices.into_iter().map(|d| context.view(d)).collect()))
}

/// One device.
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices",
    params(("id" = String, Path, description = "the device id")),
    security(("bearer" = ["read_registry"])),
    responses((status = 200, body = DeviceView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_device(
    _auth: Authorized<ReadRegistry>,
    State(state): State<Arc<GatewayState>>,
    Path(id): Path<String>,
) -> Result<Json<DeviceView>, ApiError> {
    let id = device_id(&id)?;
    let row = state
        .store
        .device(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no device has id {id}")))?;
    Ok(Json(ViewContext::load(&state).await?.view(row)))
}

/// Signs a device's CSR with the fleet CA and enrolls the certificate.
#[utoipa::path(post, path = "/api/v1/devices/enroll-csr", tag = "devices",
    request_body = CsrEnrollment,
    security(("bearer" = ["manage_devices"])),
    responses((status = 201, body = EnrolledDevice), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn enroll_csr(
    auth: Authorized<ManageDevices>,
    State(state): State<Arc<GatewayState>>,
    Body(req): Body<CsrEnrollment>,
) -> Result<(StatusCode, Json<EnrolledDevice>), ApiError> {
    let checked = req.device.check(state.clock.now())?;
    let ca = fleet_ca(&state)?;
    let signed = ca
        .sign_device_csr(&req.csr_pem, &checked.id, checked.serial, checked.validity)
        .map_err(pki_error)?;
    let new = checked.new_device(signed.fingerprint());
    let reason = checked.reason;
    let device = enroll_one(&state, new, &auth.actor(), reason).await?;
    Ok((
        StatusCode::CREATED,
        Json(EnrolledDevice {
            device,
            certificate_pem: signed.cert_pem,
            ca_pem: ca.cert_pem().to_owned(),
            key_pem: None,
        }),
    ))
}

/// Makes a key and certificate for a device and enrolls it (the bundle path).
#[utoipa::path(post, path = "/api/v1/devices/bundle", tag = "devices",
    request_body = DeviceEnrollment,
    security(("bearer" = ["manage_devices"])),
    responses((status = 201, body = EnrolledDevice), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn enroll_bundle(
    auth: Authorized<ManageDevices>,
    State(state): State<Arc<GatewayState>>,
    Body(req): Body<DeviceEnrollment>,
) -> Result<(StatusCode, Json<EnrolledDevice>), ApiError> {
    let checked = req.check(state.clock.now())?;
    let ca = fleet_ca(&state)?;
    let issued = ca
        .issue_device_bundle(&checked.id, checked.serial, checked.validity)
        .map_err(pki_error)?;
    let new = checked.new_device(issued.fingerprint());
    let reason = checked.reason;
    let device = enroll_one(&state, new, &auth.actor(), reason).await?;
    Ok((
        StatusCode::CREATED,
        Json(EnrolledDevice {
            device,
            certificate_pem: issued.cert_pem.clone(),
            ca_pem: ca.cert_pem().to_owned(),
            key_pem: Some(issued.key_pem.clone()),
        }),
    ))
}

/// Enrolls many devices from an enrollment file's rows, in one transaction: bad rows
/// are reported by line and nothing is enrolled unless all are good (or `partial`).
#[utoipa::path(post, path = "/api/v1/devices/import", tag = "devices",
    request_body = DeviceImport,
    security(("bearer" = ["manage_devices"])),
    responses((status = 200, body = ImportReport), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn import_devices(
    auth: Authorized<ManageDevices>,
    State(state): State<Arc<GatewayState>>,
    Body(req): Body<DeviceImport>,
) -> Result<Json<ImportReport>, ApiError> {
    let reason = require_reason(&req.reason)?;
    let mut rows = Vec::with_capacity(req.rows.len());
    let mut rejected = Vec::new();
    for row in &req.rows {
        match parse_row(row) {
            Ok(device) => rows.push(DeviceImportRow {
                line: row.line,
                device,
            }),
            Err(reason) => rejected.push(RowError {
                line: row.line,
                reason,
            }),
        }
    }
    let mode = match (req.partial, rejected.is_empty()) {
        _ if req.check_only => ImportMode::CheckOnly,
        (true, _) => ImportMode::Partial,
        (false, true) => ImportMode::AllOrNothing,
        (false, false) => ImportMode::CheckOnly,
    };
    let outcome = state
        .store
        .enroll_devices(&rows, mode, &auth.actor(), reason, state.clock.now())
        .await?;
    rejected.extend(outcome.rejected);
    rejected.sort_by_key(|r| r.line);
    if req.check_only {
        return checked_only(rejected);
    }
    if !rejected.is_empty() && !req.partial {
        return Err(ApiError::bad_rows(rejected));
    }
    Ok(Json(ImportReport {
        applied: outcome.enrolled.len(),
        unchanged: 0,
        rejected,
    }))
}

/// Assigns a device to an agency and/or an officer, changing only what is named. An
/// officer who is not certified now is refused (409) unless `force`.
#[utoipa::path(post, path = "/api/v1/devices/{id}/assign", tag = "devices",
    request_body = Assignment,
    params(("id" = String, Path, description = "the device id")),
    security(("bearer" = ["manage_devices"])),
    responses((status = 200, body = DeviceView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn assign_device(
    auth: Authorized<ManageDevices>,
    State(state): State<Arc<GatewayState>>,
    Path(id): Path<String>,
    Body(req): Body<Assignment>,
) -> Result<Json<DeviceView>, ApiError> {
    let reason = require_reason(&req.reason)?;
    let id = device_id(&id)?;
    let change = req.change()?;
    let row = state
        .store
        .assign_device(&id, change, &auth.actor(), reason, state.clock.now())
        .await?;
    Ok(Json(ViewContext::load(&state).await?.view(row)))
}

/// Changes a device's status: `suspended`, `in_service`, `lost`, `revoked` or
/// `retired`. Any status but `in_service` closes its live connection at once.
/// Setting the status it has is accepted and changes nothing.
#[utoipa::path(post, path = "/api/v1/devices/{id}/status", tag = "devices",
    request_body = StatusChange,
    params(("id" = String, Path, description = "the device id")),
    security(("bearer" = ["manage_devices"])),
    responses((status = 200, body = DeviceView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_status(
    auth: Authorized<ManageDevices>,
    State(state): State<Arc<GatewayState>>,
    Path(id): Path<String>,
    Body(req): Body<StatusChange>,
) -> Result<Json<DeviceView>, ApiError> {
    let reason = require_reason(&req.reason)?;
    let id = device_id(&id)?;
    let status: DeviceStatus = word(&req.status)?;
    let row = state
        .store
        .set_device_status(&id, status, &auth.actor(), reason, state.clock.now())
        .await?;
    Ok(Json(ViewContext::load(&state).await?.view(row)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> DeviceImportRowText {
        DeviceImportRowText {
            line: 3,
            device_id: "dev-00001".into(),
            kind: "recorder".into(),
            serial: "SN1".into(),
            fingerprint: "ab".repeat(32),
            not_after: "2030-01-01T00:00:00Z".into(),
            agency: String::new(),
        }
    }

    #[test]
    fn enrollment_rows_are_checked_field_by_field() {
        let d = parse_row(&row()).unwrap();
        assert_eq!(d.certificate_not_after, 1_893_456_000_000);
        assert_eq!(d.agency, None);
        let bad_kind = DeviceImportRowText {
            kind: "drone".into(),
            ..row()
        };
        assert!(parse_row(&bad_kind).unwrap_err().starts_with("kind:"));
        let bad_time = DeviceImportRowText {
            not_after: "tomorrow".into(),
            ..row()
        };
        assert!(parse_row(&bad_time).unwrap_err().contains("RFC 3339"));
        let bad_id = DeviceImportRowText {
            device_id: "dev/1".into(),
            ..row()
        };
        assert!(parse_row(&bad_id).unwrap_err().starts_with("device_id"));
    }
}
