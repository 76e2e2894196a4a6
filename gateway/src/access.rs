//! Who may do what: the permissions, the authorization table from roles to
//! permissions (pure), and each permission as a type ([`Guard`]) so that a handler's or
//! a page's signature says what it requires. The admin API (`api::auth`) and the pages
//! (`pages::session`) both check operators against this one table.

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
    ReadCaseContent,
);

/// The audit actor of an operator token: `operator:<name>`.
pub fn actor(token: &OperatorToken) -> String {
    format!("operator:{}", token.name)
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
