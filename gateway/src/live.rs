//! The devices connected right now, so that a revocation can close a device's live
//! connections at once and a shutdown can say "going away" to every one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use protocol::{CloseCode, DeviceId, Sha256Hash};

/// One admitted connection.
#[derive(Clone)]
pub struct LiveConnection {
    /// Unique per connection in this process.
    pub id: u64,
    /// The device.
    pub device_id: DeviceId,
    /// The SHA-256 of the certificate it presented (32 bytes, not its 64-character hex:
    /// every idle device holds one).
    pub fingerprint: Sha256Hash,
    /// The QUIC connection.
    pub connection: quinn::Connection,
}

/// The table of live connections, keyed by device.
#[derive(Default)]
pub struct LiveConnections {
    by_device: Mutex<HashMap<DeviceId, Vec<LiveConnection>>>,
    next_id: AtomicU64,
}

/// Removes its connection from the table when dropped.
pub struct LiveGuard {
    table: Arc<LiveConnections>,
    device_id: DeviceId,
    id: u64,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut map = self.table.by_device.lock().expect("live table lock");
        if let Some(list) = map.get_mut(&self.device_id) {
            list.retain(|c| c.id != self.id);
            if list.is_empty() {
                map.remove(&self.device_id);
            }
        }
    }
}

impl LiveGuard {
    /// Closes the device's connections registered before this one with
    /// [`CloseCode::Replaced`]; returns how many (issue 19: one live connection per
    /// device).
    ///
    /// Called once this connection is admitted, so a refused newcomer never closes an
    /// admitted one. "Older" is by registration order, so of two connections admitted
    /// at the same moment the later one stays, whichever finishes admission first.
    pub fn replace_older(&self) -> usize {
        let older: Vec<LiveConnection> = self
            .table
            .by_device
            .lock()
            .expect("live table lock")
            .get(&self.device_id)
            .map(|list| list.iter().filter(|c| c.id < self.id).cloned().collect())
            .unwrap_or_default();
        for c in &older {
            close(&c.connection, CloseCode::Replaced);
        }
        older.len()
    }
}

impl LiveConnections {
    /// Adds a connection; it stays until the guard is dropped.
    pub fn register(
        self: &Arc<Self>,
        device_id: DeviceId,
        fingerprint: Sha256Hash,
        connection: quinn::Connection,
    ) -> LiveGuard {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = LiveConnection {
            id,
            device_id: device_id.clone(),
            fingerprint,
            connection,
        };
        self.by_device
            .lock()
            .expect("live table lock")
            .entry(device_id.clone())
            // A device almost always has one connection: room for one, not the four a
            // first push would reserve.
            .or_insert_with(|| Vec::with_capacity(1))
            .push(entry);
        LiveGuard {
            table: self.clone(),
            device_id,
            id,
        }
    }

    /// Closes every connection of a device; returns how many were closed.
    pub fn close_device(&self, device_id: &DeviceId, code: CloseCode) -> usize {
        let list = self
            .by_device
            .lock()
            .expect("live table lock")
            .get(device_id)
            .cloned();
        let list = list.unwrap_or_default();
        for c in &list {
            close(&c.connection, code);
        }
        list.len()
    }

    /// Every live connection, for a re-check against the store.
    pub fn snapshot(&self) -> Vec<LiveConnection> {
        self.by_device
            .lock()
            .expect("live table lock")
            .values()
            .flatten()
            .cloned()
            .collect()
    }

    /// Number of live connections.
    pub fn len(&self) -> usize {
        self.by_device
            .lock()
            .expect("live table lock")
            .values()
            .map(Vec::len)
            .sum()
    }

    /// True when no device is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes every connection (shutdown).
    pub fn close_all(&self, code: CloseCode) {
        for c in self.snapshot() {
            close(&c.connection, code);
        }
    }
}

/// Closes a connection with a fieldsync close code and its reason phrase.
pub fn close(connection: &quinn::Connection, code: CloseCode) {
    connection.close(
        quinn::VarInt::from_u32(code.to_u32()),
        code.reason().as_bytes(),
    );
}
