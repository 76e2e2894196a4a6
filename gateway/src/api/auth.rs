//! Who may do what through the admin API: the authorization table (pure), and the
//! extractor that authenticates the bearer token and checks the role on every request.
//!
//! Each handler names its permission in its type, `Authorized<ManageDevices>`, and
//! the extractor runs before the body is read, so a wrong role gets 403 even for a
//! malformed request and nothing is parsed or changed. The OpenAPI document lists the
//! same permission as the operation's security scope; a test checks that the two
//! agree for every route and every role.
//!
//! Tokens travel only in the `Authorization: Bearer` header, never in a URL, and are
//! never logged: only their SHA-256 is looked up, on every request, so a revoked token
//! fails on its very next request.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::state::GatewayState;
use store::{OperatorRole, OperatorToken};

/// What an endpoint lets its caller do. Every route requires exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Ask who the token belongs to (any valid token).
    Identify,
    /// Make and revoke operator tokens.
    ManageTokens,
    /// Read agencies, officers and devices.
    ReadRegistry,
    /// Create agencies and set their class.
    ManageAgencies,
    /// Import the roster; withdraw, revoke or restore certificates.
    ManageOfficers,
    /// Enroll, assign, suspend, mark lost, revoke and retire devices.
    ManageDevices,
    /// Read reports (allocation, later uploads).
    ReadReports,
    /// Take the daily allocation snapshot now.
    TakeSnapshots,
    /// Read the audit log.
    ReadAudit,
    /// Read the content of a case: its records and recordings (DOMAIN R3). Only
    /// supervisors (legal reviewers) and admins.
    ReadCaseContent,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 10] = [
        Permission::Identify,
        Permission::ManageTokens,
        Permission::ReadRegistry,
        Permission::ManageAgencies,
        Permission::ManageOfficers,
        Permission::ManageDevices,
        Permission::ReadReports,
        Permission::TakeSnapshots,
        Permission::ReadAudit,
        Permission::ReadCaseContent,
    ];

    /// The scope name written into the OpenAPI document.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Identify => "identify",
            Permission::ManageTokens => "manage_tokens",
            Permission::ReadRegistry => "read_registry",
            Permission::ManageAgencies => "manage_agencies",
            Permission::ManageOfficers => "manage_officers",
            Permission::ManageDevices => "manage_devices",
            Permission::ReadReports => "read_reports",
            Permission::TakeSnapshots => "take_snapshots",
            Permission::ReadAudit => "read_audit",
            Permission::ReadCaseContent => "read_case_content",
        }
    }

    /// The permission with this scope name.
    pub fn from_scope(scope: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == scope)
    }

    /// The authorization table: the roles that hold this permission.
    ///
    /// Finance reads reports and changes nothing in the fleet; equipment managers run
    /// the fleet but never read case content; supervisors read reports, the audit log
    /// and case content; admins do everything.
    pub fn roles(self) -> &'static [OperatorRole] {
        use OperatorRole::*;
        match self {
            Permission::Identify => &[Admin, EquipmentManager, Finance, Supervisor],
            Permission::ManageTokens => &[Admin],
            Permission::ReadRegistry => &[Admin, EquipmentManager, Supervisor],
            Permission::ManageAgencies | Permission::ManageOfficers | Permission::ManageDevices => {
                &[Admin, EquipmentManager]
            }
            Permission::ReadReports => &[Admin, EquipmentManager, Finance, Supervisor],
            Permission::TakeSnapshots => &[Admin, Finance],
            Permission::ReadAudit => &[Admin, Supervisor],
            Permission::ReadCaseContent => &[Admin, Supervisor],
        }
    }

    /// True when `role` holds this permission.
    pub fn allows(self, role: OperatorRole) -> bool {
        self.roles().contains(&role)
    }
}

/// A permission named as a type, so a handler's signature says what it requires.
pub trait Guard: Send + Sync + 'static {
    /// The permission.
    const PERMISSION: Permission;
}

macro_rules! guards {
    ($($name:ident),+ $(,)?) => {$(
        #[doc = concat!("Requires [`Permission::", stringify!($name), "`].")]
        #[derive(Debug)]
        pub struct $name;
        impl Guard for $name {
            const PERMISSION: Permission = Permission::$name;
        }
    )+};
}

guards!(
    Identify,
    ManageTokens,
    ReadRegistry,
    ManageAgencies,
    ManageOfficers,
    ManageDevices,
    ReadReports,
    TakeSnapshots,
    ReadAudit,
);

/// An authenticated operator whose role holds `G`'s permission.
#[derive(Debug)]
pub struct Authorized<G: Guard> {
    /// The token's record (name, role).
    pub operator: OperatorToken,
    _guard: PhantomData<G>,
}

impl<G: Guard> Authorized<G> {
    /// The audit actor for changes made with this token.
    pub fn actor(&self) -> String {
        actor(&self.operator)
    }
}

/// The audit actor of an operator token: `operator:<name>`.
pub fn actor(token: &OperatorToken) -> String {
    format!("operator:{}", token.name)
}

/// The bearer token of a request, if the header is present and well formed.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer header"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthorized(
            "the Authorization scheme must be Bearer",
        ));
    }
    Ok(token.trim())
}

impl<G: Guard> FromRequestParts<Arc<GatewayState>> for Authorized<G> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<GatewayState>,
    ) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let unknown = || ApiError::unauthorized("unknown or revoked token");
        if !pki::is_well_formed_token(token) {
            return Err(unknown());
        }
        let hash = pki::token_hash(token);
        let operator = state
            .store
            .operator_by_token_hash(&hash)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(unknown)?;
        if !G::PERMISSION.allows(operator.role) {
            return Err(ApiError::forbidden(format!(
                "the {} role may not {} (permission {})",
                operator.role,
                describe(G::PERMISSION),
                G::PERMISSION.as_str()
            )));
        }
        Ok(Authorized {
            operator,
            _guard: PhantomData,
        })
    }
}

/// What a permission allows, for a 403 message.
fn describe(p: Permission) -> &'static str {
    match p {
        Permission::Identify => "identify itself",
        Permission::ManageTokens => "manage operator tokens",
        Permission::ReadRegistry => "read the registry",
        Permission::ManageAgencies => "change agencies",
        Permission::ManageOfficers => "change officers or their certificates",
        Permission::ManageDevices => "enroll or change devices",
        Permission::ReadReports => "read reports",
        Permission::TakeSnapshots => "take allocation snapshots",
        Permission::ReadAudit => "read the audit log",
        Permission::ReadCaseContent => "read case content",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OperatorRole::*;

    #[test]
    fn finance_reads_reports_and_changes_nothing_in_the_fleet() {
        assert!(Permission::ReadReports.allows(Finance));
        for p in [
            Permission::ManageDevices,
            Permission::ManageOfficers,
            Permission::ManageAgencies,
            Permission::ManageTokens,
            Permission::ReadCaseContent,
        ] {
            assert!(!p.allows(Finance), "{p:?}");
        }
    }

    #[test]
    fn only_supervisors_and_admins_read_case_content() {
        let readers: Vec<_> = OperatorRole::ALL
            .into_iter()
            .filter(|r| Permission::ReadCaseContent.allows(*r))
            .collect();
        assert_eq!(readers, vec![Admin, Supervisor]);
        assert!(!Permission::ReadCaseContent.allows(EquipmentManager));
    }

    #[test]
    fn admins_hold_every_permission_and_scopes_round_trip() {
        for p in Permission::ALL {
            assert!(p.allows(Admin), "{p:?}");
            assert_eq!(Permission::from_scope(p.as_str()), Some(p));
        }
        assert_eq!(Permission::from_scope("root"), None);
    }
}
