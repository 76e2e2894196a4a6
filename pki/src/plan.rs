//! Which devices a development PKI holds: ids, kinds and serials, computed from the
//! count alone, so the same `--devices N` always names the same devices.
//!
//! Pure: no keys, no files.

use std::fmt;
use std::str::FromStr;

use protocol::DeviceId;
use protocol::domain::DeviceKind;

/// Which kinds of device to make.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KindMix {
    /// Every device is a body-worn recorder.
    Recorder,
    /// Every device is a handheld terminal.
    Terminal,
    /// Recorders and terminals alternate, starting with a recorder.
    #[default]
    Mixed,
}

impl KindMix {
    /// The kind of the device numbered `index` (1-based).
    pub fn kind_of(self, index: u32) -> DeviceKind {
        match self {
            KindMix::Recorder => DeviceKind::Recorder,
            KindMix::Terminal => DeviceKind::Terminal,
            KindMix::Mixed if index % 2 == 1 => DeviceKind::Recorder,
            KindMix::Mixed => DeviceKind::Terminal,
        }
    }

    /// The stable spelling (`recorder`, `terminal`, `mixed`).
    pub fn as_str(self) -> &'static str {
        match self {
            KindMix::Recorder => "recorder",
            KindMix::Terminal => "terminal",
            KindMix::Mixed => "mixed",
        }
    }
}

impl fmt::Display for KindMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a word is not a [`KindMix`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a device kind choice; expected recorder, terminal or mixed")]
pub struct UnknownKindMix(pub String);

impl FromStr for KindMix {
    type Err = UnknownKindMix;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "recorder" => Ok(KindMix::Recorder),
            "terminal" => Ok(KindMix::Terminal),
            "mixed" => Ok(KindMix::Mixed),
            _ => Err(UnknownKindMix(s.to_owned())),
        }
    }
}

/// One device of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedDevice {
    /// 1-based position in the plan.
    pub index: u32,
    /// `dev-` and the zero-padded index, for example `dev-00042`.
    pub id: DeviceId,
    /// Recorder or terminal.
    pub kind: DeviceKind,
    /// `SN-REC-`/`SN-TRM-` and the same padded index: the certificate's CN.
    pub serial: String,
}

/// The device numbered `index` (1-based) in a plan of `count` devices.
///
/// Numbers are padded to at least 5 digits, and to the width of `count` beyond that,
/// so that ids sort in plan order as text (file listings, CSV sorts).
pub fn planned_device(index: u32, count: u32, mix: KindMix) -> PlannedDevice {
    let width = count.max(index).to_string().len().max(5);
    let kind = mix.kind_of(index);
    let tag = match kind {
        DeviceKind::Recorder => "REC",
        DeviceKind::Terminal => "TRM",
    };
    // "dev-" and at most 10 digits: always a valid id.
    let id =
        DeviceId::new(format!("dev-{index:0width$}")).expect("dev-<digits> is a valid device id");
    PlannedDevice {
        index,
        id,
        kind,
        serial: format!("SN-{tag}-{index:0width$}"),
    }
}

/// All `count` devices, in order.
pub fn plan_devices(count: u32, mix: KindMix) -> impl ExactSizeIterator<Item = PlannedDevice> {
    (0..count).map(move |i| planned_device(i + 1, count, mix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_alternates_starting_with_a_recorder() {
        let plan: Vec<_> = plan_devices(3, KindMix::Mixed).collect();
        let ids: Vec<_> = plan.iter().map(|d| d.id.as_str()).collect();
        let serials: Vec<_> = plan.iter().map(|d| d.serial.as_str()).collect();
        assert_eq!(ids, ["dev-00001", "dev-00002", "dev-00003"]);
        assert_eq!(serials, ["SN-REC-00001", "SN-TRM-00002", "SN-REC-00003"]);
        assert_eq!(plan[1].kind, DeviceKind::Terminal);
    }

    #[test]
    fn single_kind_plans() {
        assert!(plan_devices(4, KindMix::Terminal).all(|d| d.kind == DeviceKind::Terminal));
        assert!(plan_devices(4, KindMix::Recorder).all(|d| d.serial.starts_with("SN-REC-")));
    }

    #[test]
    fn padding_grows_with_the_count() {
        assert_eq!(
            planned_device(7, 99_999, KindMix::Mixed).id.as_str(),
            "dev-00007"
        );
        assert_eq!(
            planned_device(7, 100_000, KindMix::Mixed).id.as_str(),
            "dev-000007"
        );
        assert_eq!(
            planned_device(u32::MAX, u32::MAX, KindMix::Terminal).serial,
            "SN-TRM-4294967295"
        );
        assert_eq!(plan_devices(0, KindMix::Mixed).len(), 0);
    }

    #[test]
    fn kind_mix_spellings_round_trip() {
        for mix in [KindMix::Recorder, KindMix::Terminal, KindMix::Mixed] {
            assert_eq!(mix.to_string().parse::<KindMix>().unwrap(), mix);
        }
        assert_eq!(" Mixed ".parse::<KindMix>().unwrap(), KindMix::Mixed);
        assert!(
            "both"
                .parse::<KindMix>()
                .unwrap_err()
                .to_string()
                .contains("\"both\"")
        );
    }
}
