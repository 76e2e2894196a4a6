//! How many bytes the next upload request carries (pure).
//!
//! Why not a fixed size: each chunk ends with a round trip in which the gateway flushes,
//! fsyncs and commits the offset before it replies, and nothing flows meanwhile. On a
//! fast link a fixed 16 MiB chunk takes tens of milliseconds and those pauses cost a
//! noticeable share of the time; on a slow link it takes many seconds and they cost
//! nothing. So the first chunk of a recording is the configured size, and each later
//! one is what the previous chunk's rate moves in [`CHUNK_TIME`], never smaller than
//! the configured size and never larger than [`MAX_CHUNK_BYTES`]. A chunk is also what
//! the gateway may have to receive again after a crash (bytes it has not yet fsync'd),
//! so bounding its duration bounds that loss on any link.

use std::time::Duration;

/// About how long one chunk should take at the rate measured.
pub const CHUNK_TIME: Duration = Duration::from_secs(1);

/// The largest chunk, whatever the rate.
pub const MAX_CHUNK_BYTES: u64 = 256 << 20;

/// The length of the next chunk, after a chunk that moved `sent` bytes in `took`;
/// `configured` is the agent's `upload_chunk_bytes` (the first chunk and the least).
pub fn next_chunk_bytes(configured: u64, sent: u64, took: Duration) -> u64 {
    let ceiling = MAX_CHUNK_BYTES.max(configured);
    if took.is_zero() {
        return ceiling;
    }
    let at_rate = sent as f64 / took.as_secs_f64() * CHUNK_TIME.as_secs_f64();
    // `as` saturates: a rate beyond u64 becomes u64::MAX, then the ceiling.
    (at_rate as u64).clamp(configured, ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_fast_link_gets_chunks_of_about_a_second() {
        // 16 MiB in 40 ms is 400 MiB/s: a second is more than the cap.
        let fast = next_chunk_bytes(16 * MIB, 16 * MIB, Duration::from_millis(40));
        assert_eq!(fast, MAX_CHUNK_BYTES);
        // 16 MiB in 250 ms is 64 MiB/s.
        let medium = next_chunk_bytes(16 * MIB, 16 * MIB, Duration::from_millis(250));
        assert_eq!(medium, 64 * MIB);
    }

    #[test]
    fn a_slow_link_keeps_the_configured_size() {
        // 16 MiB in 16 s is 1 MiB/s: a second's worth is below the configured size.
        let slow = next_chunk_bytes(16 * MIB, 16 * MIB, Duration::from_secs(16));
        assert_eq!(slow, 16 * MIB);
        // Nothing moved (a chunk cut short at once): the configured size.
        assert_eq!(
            next_chunk_bytes(16 * MIB, 0, Duration::from_secs(3)),
            16 * MIB
        );
    }

    #[test]
    fn a_configured_size_above_the_cap_is_kept() {
        let huge = 512 * MIB;
        assert_eq!(next_chunk_bytes(huge, MIB, Duration::from_secs(10)), huge);
        assert_eq!(next_chunk_bytes(huge, u64::MAX, Duration::ZERO), huge);
    }
}
