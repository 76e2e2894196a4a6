//! Allocation classes (DOMAIN R1, 配备标准): how many recorders and handheld terminals an
//! agency must hold for its certified officers, and how many it is short.
//!
//! Finance funds the shortfall from the budget, so the arithmetic must be exact and the
//! same everywhere: who counts as an officer, which devices count, how the ratio rounds.
//! The caller gathers the officers and devices of one agency; this module counts and
//! assesses them. Nothing here reads a clock or a store.

use serde::{Deserialize, Serialize};

use crate::domain::{AgencyClass, DeviceKind, DeviceStatus, Standing};

/// The allocation ratios of DOMAIN R1, read from deployment configuration: one device
/// per `ratio` certified officers.
///
/// The defaults are those of document 000 (A 1:2, B 1:3); other cities use A 1:3 and
/// B 1:5, which is why the ratios are configuration and not constants. Class C has no
/// ratio: each class-C agency has its own target number of devices, set by need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AllocationPolicy {
    /// Officers per device for class A agencies (default 2).
    pub ratio_a: u32,
    /// Officers per device for class B agencies (default 3).
    pub ratio_b: u32,
}

impl Default for AllocationPolicy {
    fn default() -> Self {
        AllocationPolicy {
            ratio_a: 2,
            ratio_b: 3,
        }
    }
}

/// Why an [`AllocationPolicy`] read from configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationPolicyError {
    /// A ratio of zero officers per device has no meaning (and would divide by zero).
    #[error("ratio_{class} must be at least 1 (officers per device)")]
    ZeroRatio {
        /// The class whose ratio is zero.
        class: AgencyClass,
    },
}

/// Why an agency cannot be assessed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssessError {
    /// A class-C agency has no target number of devices. Its requirement is "set per
    /// agency by need", so without a target there is nothing to compare against, and
    /// guessing (zero, or a class-B ratio) would hide the gap from finance.
    #[error("class C agency has no target number of devices; set one before assessing it")]
    MissingClassCTarget,
    /// The policy is invalid (see [`AllocationPolicy::validate`]).
    #[error(transparent)]
    Policy(#[from] AllocationPolicyError),
}

impl AllocationPolicy {
    /// Checks the ratios before the service starts, so a bad config fails at startup.
    pub fn validate(&self) -> Result<(), AllocationPolicyError> {
        for class in [AgencyClass::A, AgencyClass::B] {
            if self.ratio(class) == Some(0) {
                return Err(AllocationPolicyError::ZeroRatio { class });
            }
        }
        Ok(())
    }

    /// Officers per device for a class, or `None` for class C (which has a per-agency
    /// target instead of a ratio).
    pub fn ratio(&self, class: AgencyClass) -> Option<u32> {
        match class {
            AgencyClass::A => Some(self.ratio_a),
            AgencyClass::B => Some(self.ratio_b),
            AgencyClass::C => None,
        }
    }
}

/// What the allocation rule needs to know about one officer of the agency: what the
/// certificate is worth at the report's time ([`Standing::at`], the same answer the
/// two-officer rule and identity checks use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfficerStanding {
    /// The certificate's standing at the report's time.
    pub standing: Standing,
}

impl OfficerStanding {
    /// True when this officer counts towards the requirement: a valid, unexpired
    /// certificate held by an enforcement officer. Withdrawn, revoked and expired
    /// certificates and auxiliary staff (协管/辅助人员, 003) do not count.
    pub fn is_counted(&self) -> bool {
        self.standing == Standing::Certified
    }
}

/// What the allocation rule needs to know about one device of the agency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceStanding {
    /// Recorder or handheld terminal; both count towards the requirement.
    pub kind: DeviceKind,
    /// The device's status in the fleet.
    pub status: DeviceStatus,
}

impl DeviceStanding {
    /// True when this device counts: in service. Lost, revoked and retired devices do
    /// not count (DOMAIN R1), and neither do suspended ones: a device under repair
    /// records nothing and is not admitted by the gateway, so counting it would let an
    /// agency meet the standard with devices nobody can use. A suspended device counts
    /// again as soon as it returns to service.
    pub fn is_counted(&self) -> bool {
        self.status.is_admitted()
    }
}

/// The devices in service of one agency, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCounts {
    /// Body-worn recorders in service.
    pub recorders: u32,
    /// Handheld terminals in service.
    pub terminals: u32,
    /// Both kinds together: the figure compared with the requirement.
    pub total: u32,
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The number of officers who count towards the requirement (see
/// [`OfficerStanding::is_counted`]).
pub fn count_certified(officers: &[OfficerStanding]) -> u32 {
    count_u32(officers.iter().filter(|o| o.is_counted()).count())
}

/// The devices that count towards the requirement, by kind (see
/// [`DeviceStanding::is_counted`]).
pub fn count_in_service(devices: &[DeviceStanding]) -> DeviceCounts {
    let of_kind = |kind| {
        count_u32(
            devices
                .iter()
                .filter(|d| d.is_counted() && d.kind == kind)
                .count(),
        )
    };
    let recorders = of_kind(DeviceKind::Recorder);
    let terminals = of_kind(DeviceKind::Terminal);
    DeviceCounts {
        recorders,
        terminals,
        total: recorders.saturating_add(terminals),
    }
}

/// One agency's (or a total row's) standing against its allocation class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    /// Certified officers counted (the input, kept so a report row is self-contained).
    pub certified_officers: u32,
    /// Devices in service counted (the input, likewise).
    pub in_service: u32,
    /// Devices the agency must hold.
    pub required: u32,
    /// Devices missing: the number finance must fund. Never negative.
    pub shortfall: u32,
    /// True when nothing is missing.
    pub compliant: bool,
}

/// Assesses one agency: required = ceil(certified officers / ratio) for classes A and
/// B, the agency's own target for class C; shortfall = max(0, required − in service).
///
/// `class_c_target` is only read for class C; a class-C agency without one is an error
/// ([`AssessError::MissingClassCTarget`]), which a report shows as "target not set"
/// rather than as compliant. An invalid policy is an error rather than a panic.
pub fn assess(
    class: AgencyClass,
    class_c_target: Option<u32>,
    certified_officers: u32,
    devices_in_service: u32,
    policy: &AllocationPolicy,
) -> Result<Assessment, AssessError> {
    policy.validate()?;
    let required = match policy.ratio(class) {
        Some(ratio) => certified_officers.div_ceil(ratio),
        None => class_c_target.ok_or(AssessError::MissingClassCTarget)?,
    };
    let shortfall = required.saturating_sub(devices_in_service);
    Ok(Assessment {
        certified_officers,
        in_service: devices_in_service,
        required,
        shortfall,
        compliant: shortfall == 0,
    })
}

/// The "in total" row of an allocation report: every figure summed (saturating).
///
/// The total shortfall is the sum of the agencies' shortfalls, not total required −
/// total in service: one agency's spare devices do not fill another's gap, because
/// each agency is funded by its own budget line. So the total is compliant only when
/// every agency is.
pub fn total<'a>(assessments: impl IntoIterator<Item = &'a Assessment>) -> Assessment {
    let mut sum = Assessment::default();
    for a in assessments {
        sum.certified_officers = sum.certified_officers.saturating_add(a.certified_officers);
        sum.in_service = sum.in_service.saturating_add(a.in_service);
        sum.required = sum.required.saturating_add(a.required);
        sum.shortfall = sum.shortfall.saturating_add(a.shortfall);
    }
    sum.compliant = sum.shortfall == 0;
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CertificateStatus;
    use proptest::prelude::*;

    fn officer(certificate_status: CertificateStatus, auxiliary: bool) -> OfficerStanding {
        OfficerStanding {
            standing: Standing::at(certificate_status, auxiliary, None, 0),
        }
    }

    fn device(kind: DeviceKind, status: DeviceStatus) -> DeviceStanding {
        DeviceStanding { kind, status }
    }

    fn assess_default(class: AgencyClass, officers: u32, devices: u32) -> Assessment {
        assess(class, None, officers, devices, &AllocationPolicy::default()).unwrap()
    }

    #[test]
    fn class_a_with_41_officers_needs_21_devices() {
        let a = assess_default(AgencyClass::A, 41, 15);
        assert_eq!((a.required, a.shortfall, a.compliant), (21, 6, false));
    }

    #[test]
    fn class_b_with_41_officers_needs_14_devices() {
        let a = assess_default(AgencyClass::B, 41, 14);
        assert_eq!((a.required, a.shortfall, a.compliant), (14, 0, true));
    }

    #[test]
    fn zero_officers_need_zero_devices() {
        let a = assess_default(AgencyClass::A, 0, 0);
        assert_eq!((a.required, a.shortfall, a.compliant), (0, 0, true));
    }

    #[test]
    fn surplus_devices_are_not_a_negative_shortfall() {
        let a = assess_default(AgencyClass::A, 4, 10);
        assert_eq!((a.required, a.shortfall, a.compliant), (2, 0, true));
    }

    #[test]
    fn a_configured_class_a_ratio_of_3_changes_the_answer() {
        let other_city = AllocationPolicy {
            ratio_a: 3,
            ratio_b: 5,
        };
        let a = assess(AgencyClass::A, None, 41, 0, &other_city).unwrap();
        assert_eq!(a.required, 14);
        let b = assess(AgencyClass::B, None, 41, 0, &other_city).unwrap();
        assert_eq!(b.required, 9);
    }

    #[test]
    fn class_c_uses_its_target_and_needs_one() {
        let p = AllocationPolicy::default();
        let a = assess(AgencyClass::C, Some(5), 41, 3, &p).unwrap();
        assert_eq!((a.required, a.shortfall), (5, 2));
        assert_eq!(
            assess(AgencyClass::C, None, 41, 3, &p),
            Err(AssessError::MissingClassCTarget)
        );
        // A target on a class A agency is ignored: its ratio decides.
        assert_eq!(
            assess(AgencyClass::A, Some(99), 4, 0, &p).unwrap().required,
            2
        );
    }

    #[test]
    fn a_zero_ratio_is_rejected_not_divided_by() {
        let p = AllocationPolicy {
            ratio_a: 1,
            ratio_b: 0,
        };
        let err = AllocationPolicyError::ZeroRatio {
            class: AgencyClass::B,
        };
        assert_eq!(p.validate(), Err(err.clone()));
        assert_eq!(
            err.to_string(),
            "ratio_b must be at least 1 (officers per device)"
        );
        assert_eq!(
            assess(AgencyClass::B, None, 3, 0, &p),
            Err(AssessError::Policy(err))
        );
        assert_eq!(AllocationPolicy::default().validate(), Ok(()));
    }

    #[test]
    fn missing_config_keys_take_the_defaults() {
        use serde::de::{IntoDeserializer, value::Error};
        let map = std::collections::BTreeMap::from([("ratio_b", 5u32)]);
        let p: Result<AllocationPolicy, Error> =
            AllocationPolicy::deserialize(map.into_deserializer());
        assert_eq!(
            p.unwrap(),
            AllocationPolicy {
                ratio_a: 2,
                ratio_b: 5
            }
        );
    }

    #[test]
    fn auxiliary_staff_and_withdrawn_or_expired_certificates_do_not_count() {
        use CertificateStatus::*;
        let expired = OfficerStanding {
            standing: Standing::at(Valid, false, Some(10), 10),
        };
        let officers = [
            officer(Valid, false),
            officer(Valid, false),
            officer(Valid, true),
            officer(Withdrawn, false),
            officer(Revoked, false),
            expired,
        ];
        assert_eq!(count_certified(&officers), 2);
        assert_eq!(count_certified(&[]), 0);
    }

    #[test]
    fn only_devices_in_service_count() {
        use DeviceKind::*;
        use DeviceStatus::*;
        let devices = [
            device(Recorder, InService),
            device(Recorder, InService),
            device(Terminal, InService),
            device(Recorder, Suspended),
            device(Recorder, Lost),
            device(Terminal, Revoked),
            device(Terminal, Retired),
        ];
        let counts = count_in_service(&devices);
        let expected = DeviceCounts {
            recorders: 2,
            terminals: 1,
            total: 3,
        };
        assert_eq!(counts, expected);
    }

    #[test]
    fn the_total_row_does_not_let_one_agency_cover_another() {
        let short = assess_default(AgencyClass::A, 41, 15);
        let spare = assess_default(AgencyClass::B, 9, 20);
        let sum = total([&short, &spare]);
        assert_eq!(
            (sum.certified_officers, sum.in_service, sum.required),
            (50, 35, 24)
        );
        assert_eq!((sum.shortfall, sum.compliant), (6, false));
        assert_eq!(
            total([]),
            Assessment {
                compliant: true,
                ..Assessment::default()
            }
        );
    }

    proptest! {
        #[test]
        fn required_is_the_ceiling(officers in any::<u32>(), ratio in 1u32.., devices in any::<u32>()) {
            let p = AllocationPolicy { ratio_a: ratio, ratio_b: ratio };
            let a = assess(AgencyClass::A, None, officers, devices, &p).unwrap();
            let (req, r, o) = (u64::from(a.required), u64::from(ratio), u64::from(officers));
            prop_assert!(req * r >= o);
            if officers > 0 {
                prop_assert!((req - 1) * r < o);
            } else {
                prop_assert_eq!(req, 0);
            }
            prop_assert!(a.shortfall <= a.required);
            prop_assert_eq!(u64::from(a.shortfall), req.saturating_sub(u64::from(devices)));
            prop_assert_eq!(a.compliant, a.required <= devices);
        }

        #[test]
        fn no_overflow_anywhere(
            class in prop::sample::select(AgencyClass::ALL),
            target in any::<Option<u32>>(), officers in any::<u32>(), devices in any::<u32>(),
            ratio_a in any::<u32>(), ratio_b in any::<u32>()
        ) {
            let p = AllocationPolicy { ratio_a, ratio_b };
            if let Ok(a) = assess(class, target, officers, devices, &p) {
                let sum = total([&a, &a, &a]);
                prop_assert!(sum.shortfall >= a.shortfall);
            }
        }
    }

    #[test]
    fn u32_max_officers() {
        let a = assess_default(AgencyClass::A, u32::MAX, 0);
        assert_eq!(a.required, u32::MAX / 2 + 1);
        let p = AllocationPolicy {
            ratio_a: 1,
            ratio_b: 1,
        };
        assert_eq!(
            assess(AgencyClass::A, None, u32::MAX, 0, &p)
                .unwrap()
                .shortfall,
            u32::MAX
        );
    }
}
