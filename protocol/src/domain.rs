//! The domain vocabulary shared by every crate (DOMAIN.md, "Words used in the code"):
//! agency classes, device kinds and statuses, certificate statuses and case stages.
//!
//! Each enum has one stable lowercase spelling, used on the wire, in the store and in
//! CSV files, so that an equipment manager sees the same word everywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Millis;

/// Why a word is not one of an enum's spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {what}; expected one of: {expected}")]
pub struct UnknownWord {
    /// What was being parsed ("agency class", "device status", ...).
    pub what: &'static str,
    /// The rejected input.
    pub value: String,
    /// The accepted spellings, comma-separated.
    pub expected: &'static str,
}

macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal { $( $(#[$vmeta:meta])* $variant:ident => $word:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable spelling used on the wire, in the store and in CSV files.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($word => Ok($name::$variant),)+
                    _ => Err(UnknownWord {
                        what: $what,
                        value: s.to_owned(),
                        expected: concat!($($word, " "),+),
                    }),
                }
            }
        }
    };
}

vocabulary! {
    /// An agency's allocation class (DOMAIN R1): how many devices it must hold per
    /// certified officer.
    AgencyClass, "agency class" {
        /// Many officers, many tasks, many recorded stages (default 1 device per 2).
        A => "a",
        /// Fairly many (default 1 device per 3).
        B => "b",
        /// Few: a target number of devices set per agency by need.
        C => "c",
    }
}

vocabulary! {
    /// What kind of field device this is.
    DeviceKind, "device kind" {
        /// A body-worn recorder (执法记录仪).
        Recorder => "recorder",
        /// A handheld enforcement terminal (手持执法终端).
        Terminal => "terminal",
    }
}

vocabulary! {
    /// A device's status in the fleet. Only `InService` devices are admitted by the
    /// gateway and counted by the allocation report.
    DeviceStatus, "device status" {
        /// Working and admitted.
        InService => "in_service",
        /// Temporarily not admitted (for example, under repair); may return to service.
        Suspended => "suspended",
        /// Reported lost or stolen; its key may be in other hands.
        Lost => "lost",
        /// Its certificate is revoked for good.
        Revoked => "revoked",
        /// Taken out of the fleet at the end of its life.
        Retired => "retired",
    }
}

/// Why a device status change is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a device cannot go from {from} to {to}: {why}")]
pub struct StatusChangeError {
    /// The current status.
    pub from: DeviceStatus,
    /// The requested status.
    pub to: DeviceStatus,
    /// The rule that forbids it.
    pub why: &'static str,
}

impl DeviceStatus {
    /// True when the gateway admits a device in this status.
    pub fn is_admitted(self) -> bool {
        self == DeviceStatus::InService
    }

    /// True when no later status change is possible: the certificate is dead and a
    /// returning device needs a new enrollment (a new certificate).
    pub fn is_final(self) -> bool {
        matches!(self, DeviceStatus::Revoked | DeviceStatus::Retired)
    }

    /// Validates a status change.
    ///
    /// Revoked and retired are final. A lost device's key may have been copied, so it
    /// never returns to service on the same certificate either: it can only be revoked
    /// or retired, and a found device is enrolled again with a new certificate.
    pub fn check_change(self, to: DeviceStatus) -> Result<(), StatusChangeError> {
        let err = |why| {
            Err(StatusChangeError {
                from: self,
                to,
                why,
            })
        };
        if self == to {
            // Setting the status a device has changes nothing: a retry is harmless.
            return Ok(());
        }
        match self {
            DeviceStatus::Revoked | DeviceStatus::Retired => {
                err("the certificate is dead; enroll the device again with a new certificate")
            }
            DeviceStatus::Lost
                if matches!(to, DeviceStatus::InService | DeviceStatus::Suspended) =>
            {
                err(
                    "a lost device's key may have been copied; enroll it again with a new certificate",
                )
            }
            _ => Ok(()),
        }
    }
}

vocabulary! {
    /// The status of an officer's enforcement certificate (行政执法证件).
    CertificateStatus, "certificate status" {
        /// The holder may enforce.
        Valid => "valid",
        /// Withdrawn on retirement, transfer or resignation.
        Withdrawn => "withdrawn",
        /// Revoked on dismissal or criminal penalty.
        Revoked => "revoked",
    }
}

/// What a certificate was worth at one instant (DOMAIN R4), the one answer the
/// allocation rule (R1), the two-officer rule and identity checks all use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// A valid enforcement certificate, not expired, held by an enforcement officer.
    Certified,
    /// Withdrawn (retirement, transfer, resignation) by then.
    Withdrawn,
    /// Revoked (dismissal, criminal penalty) by then.
    Revoked,
    /// Past its expiry date by then.
    Expired,
    /// Auxiliary staff (协管/辅助人员): never certified, whatever the row says (003).
    Auxiliary,
}

impl Standing {
    /// The word for it, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Certified => "certified",
            Standing::Withdrawn => "withdrawn",
            Standing::Revoked => "revoked",
            Standing::Expired => "expired",
            Standing::Auxiliary => "auxiliary",
        }
    }

    /// The standing of a certificate with this status, auxiliary mark and expiry at
    /// instant `at`. Auxiliary staff are never certified; a certificate counts as
    /// expired from its `valid_until` instant on.
    pub fn at(
        status: CertificateStatus,
        auxiliary: bool,
        valid_until: Option<Millis>,
        at: Millis,
    ) -> Standing {
        match status {
            _ if auxiliary => Standing::Auxiliary,
            CertificateStatus::Withdrawn => Standing::Withdrawn,
            CertificateStatus::Revoked => Standing::Revoked,
            CertificateStatus::Valid if valid_until.is_some_and(|end| at >= end) => {
                Standing::Expired
            }
            CertificateStatus::Valid => Standing::Certified,
        }
    }
}

impl std::fmt::Display for Standing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

vocabulary! {
    /// A stage of an enforcement action (DOMAIN R3, 全过程记录).
    Stage, "stage" {
        /// 启动.
        Initiation => "initiation",
        /// 调查取证.
        Investigation => "investigation",
        /// 审核决定.
        ReviewDecision => "review_decision",
        /// 送达执行.
        ServiceExecution => "service_execution",
        /// 归档.
        Archive => "archive",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for s in DeviceStatus::ALL {
            assert_eq!(s.as_str().parse::<DeviceStatus>().unwrap(), *s);
        }
        for s in Stage::ALL {
            assert_eq!(s.as_str().parse::<Stage>().unwrap(), *s);
        }
        assert_eq!(" A ".parse::<AgencyClass>().unwrap(), AgencyClass::A);
        let err = "d".parse::<AgencyClass>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"d\" is not a valid agency class; expected one of: a b c "
        );
    }

    #[test]
    fn revoked_never_comes_back() {
        use DeviceStatus::*;
        for to in DeviceStatus::ALL {
            assert_eq!(Revoked.check_change(*to).is_err(), *to != Revoked);
            assert_eq!(Retired.check_change(*to).is_err(), *to != Retired);
        }
        assert!(Lost.check_change(InService).is_err());
        assert!(Lost.check_change(Revoked).is_ok());
        assert!(InService.check_change(Suspended).is_ok());
        assert!(Suspended.check_change(InService).is_ok());
        assert!(InService.check_change(InService).is_ok());
        assert!(Revoked.check_change(Revoked).is_ok());
    }

    #[test]
    fn standing_at_an_instant() {
        use CertificateStatus as S;
        use Standing::*;
        assert_eq!(Standing::at(S::Valid, false, None, 5), Certified);
        assert_eq!(Standing::at(S::Valid, false, Some(10), 9), Certified);
        assert_eq!(Standing::at(S::Valid, false, Some(10), 10), Expired);
        assert_eq!(Standing::at(S::Valid, true, None, 5), Auxiliary);
        assert_eq!(Standing::at(S::Revoked, true, None, 5), Auxiliary);
        assert_eq!(Standing::at(S::Withdrawn, false, Some(1), 5), Withdrawn);
    }
}
