//! What the harness reads of the machine it runs on: the wall clock the simulated
//! devices keep and the cores the harness and the gateway share. A leaf module, so
//! that the simulation, the baselines and the runner can all use it.

/// Milliseconds since the Unix epoch on this machine's clock (the devices' clock).
pub fn device_now() -> protocol::Millis {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    protocol::Millis::try_from(ms).unwrap_or(protocol::Millis::MAX)
}

/// Cores on this machine.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
