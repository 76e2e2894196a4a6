//! How many upload chunks are being received at once, gateway-wide and per device.
//!
//! Each chunk in flight holds a stream, an upload slot and, while its bytes are written,
//! the writer pool's time: a cap per device keeps one device (a stolen certificate, say)
//! from taking the gateway's share of all of them, and the gateway-wide cap bounds the
//! whole. A chunk over a cap is refused at once rather than queued: a queue would hold
//! the stream anyway, and the device retries after its backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use protocol::DeviceId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Which cap a chunk ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadCap {
    /// The gateway receives `media.max_uploads_in_flight` chunks already.
    Gateway,
    /// This device sends `media.max_uploads_per_device` chunks already.
    Device,
}

/// The counters of chunks in flight.
#[derive(Debug)]
pub struct UploadCaps {
    total: Arc<Semaphore>,
    per_device: u32,
    devices: Arc<Mutex<HashMap<DeviceId, u32>>>,
}

/// One chunk in flight; counted until dropped.
#[derive(Debug)]
pub struct UploadPermit {
    _total: OwnedSemaphorePermit,
    device: DeviceId,
    devices: Arc<Mutex<HashMap<DeviceId, u32>>>,
}

impl Drop for UploadPermit {
    fn drop(&mut self) {
        let mut devices = self.devices.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = devices.get_mut(&self.device) {
            *n -= 1;
            if *n == 0 {
                devices.remove(&self.device);
            }
        }
    }
}

impl UploadCaps {
    /// Caps of `total` chunks gateway-wide and `per_device` per device.
    pub fn new(total: u32, per_device: u32) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total as usize)),
            per_device,
            devices: Arc::default(),
        }
    }

    /// Counts a chunk of `device`, or says which cap is full.
    pub fn try_begin(&self, device: &DeviceId) -> Result<UploadPermit, UploadCap> {
        let mut devices = self.devices.lock().unwrap_or_else(PoisonError::into_inner);
        let count = devices.get(device).copied().unwrap_or(0);
        if count >= self.per_device {
            return Err(UploadCap::Device);
        }
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| UploadCap::Gateway)?;
        devices.insert(device.clone(), count + 1);
        Ok(UploadPermit {
            _total: total,
            device: device.clone(),
            devices: self.devices.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_gets_its_share_and_the_gateway_its_total() {
        let caps = UploadCaps::new(3, 2);
        let a = DeviceId::new("dev-a").unwrap();
        let b = DeviceId::new("dev-b").unwrap();
        let a1 = caps.try_begin(&a).unwrap();
        let _a2 = caps.try_begin(&a).unwrap();
        assert_eq!(caps.try_begin(&a).unwrap_err(), UploadCap::Device);
        let _b1 = caps.try_begin(&b).unwrap();
        assert_eq!(caps.try_begin(&b).unwrap_err(), UploadCap::Gateway);
        drop(a1);
        let _b2 = caps.try_begin(&b).unwrap();
        assert_eq!(caps.devices.lock().unwrap().len(), 2);
    }
}
