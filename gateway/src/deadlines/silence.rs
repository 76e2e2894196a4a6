//! Which devices to flag as silent (DOMAIN R2: a device that has not synced for
//! `silent_device_hours` may be holding recordings), and which flags to clear. Pure:
//! the caller reads the devices and open flags and applies the verdict.

use std::collections::BTreeMap;

use protocol::deadline::{DeadlinePolicy, is_silent};
use protocol::{DeviceId, Millis};

use store::recordings::{DeviceFlag, SilentDevice};

/// What to change in the silent-device flags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SilenceVerdict {
    /// Devices to flag, with the time since which they have been quiet.
    pub raise: Vec<(DeviceId, Millis)>,
    /// Devices whose flag no longer holds (they synced, or left service).
    pub clear: Vec<DeviceId>,
    /// How many devices in service are silent at `now`.
    pub silent: usize,
}

/// Compares the devices in service with the open flags at gateway time `now`.
pub fn judge(
    devices: &[SilentDevice],
    open: &[DeviceFlag],
    now: Millis,
    policy: &DeadlinePolicy,
) -> SilenceVerdict {
    let mut flagged: BTreeMap<&DeviceId, &DeviceFlag> =
        open.iter().map(|f| (&f.device_id, f)).collect();
    let mut verdict = SilenceVerdict::default();
    for device in devices {
        let silent = is_silent(device.last_seen, device.enrolled_at, now, policy);
        let had_flag = flagged.remove(&device.device_id).is_some();
        if silent {
            verdict.silent += 1;
            if !had_flag {
                let since = device
                    .last_seen
                    .map_or(device.enrolled_at, |seen| seen.max(device.enrolled_at));
                verdict.raise.push((device.device_id.clone(), since));
            }
        } else if had_flag {
            verdict.clear.push(device.device_id.clone());
        }
    }
    // Flags left over belong to devices no longer in service: nobody expects a sync.
    verdict.clear.extend(flagged.into_keys().cloned());
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Millis = 3_600_000;
    const T0: Millis = 1_790_000_000_000;

    fn device(n: u32, last_seen: Option<Millis>, enrolled_at: Millis) -> SilentDevice {
        SilentDevice {
            device_id: DeviceId::new(format!("dev-{n:05}")).unwrap(),
            last_seen,
            enrolled_at,
        }
    }

    fn flag(n: u32) -> DeviceFlag {
        DeviceFlag {
            device_id: DeviceId::new(format!("dev-{n:05}")).unwrap(),
            flag: "silent".into(),
            since: 0,
            raised_at: 0,
            cleared_at: None,
        }
    }

    #[test]
    fn raises_once_clears_when_heard_from_or_out_of_service() {
        let p = DeadlinePolicy::default();
        let devices = [
            device(1, Some(T0 - 25 * H), T0 - 100 * H), // silent, not flagged yet
            device(2, Some(T0 - 30 * H), T0 - 100 * H), // silent, flagged already
            device(3, Some(T0 - H), T0 - 100 * H),      // synced again
            device(4, None, T0 - H),                    // new, never synced
        ];
        let open = [flag(2), flag(3), flag(9)];
        let v = judge(&devices, &open, T0, &p);
        assert_eq!(v.silent, 2);
        assert_eq!(v.raise, vec![(devices[0].device_id.clone(), T0 - 25 * H)]);
        assert_eq!(
            v.clear,
            vec![devices[2].device_id.clone(), flag(9).device_id]
        );
    }
}
