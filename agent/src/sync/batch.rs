//! Which queued items fit in one push: no more than the gateway's count limit, and no
//! bigger than its frame limit once encoded. Pure.

use protocol::message::encode_body;
use serde::Serialize;

/// Bytes kept free in a frame for the envelope (version, message tag, array header).
const ENVELOPE_MARGIN: usize = 1024;

/// How many of `items` (oldest first) go in the next push: at least one (a single
/// item too big for a frame is sent anyway and refused by the gateway with a typed
/// error, rather than silently skipped), at most `max_items`, and within
/// `max_frame_bytes` when encoded.
pub fn fit<T: Serialize>(items: &[T], max_items: u32, max_frame_bytes: u32) -> usize {
    let budget = (max_frame_bytes as usize).saturating_sub(ENVELOPE_MARGIN);
    let mut used = 0usize;
    let mut count = 0usize;
    for item in items.iter().take(max_items.max(1) as usize) {
        let size = encode_body(item).len();
        if count > 0 && used + size > budget {
            break;
        }
        used += size;
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_limit_holds() {
        let items: Vec<String> = (0..10).map(|i| format!("item {i}")).collect();
        assert_eq!(fit(&items, 4, 1 << 20), 4);
        assert_eq!(fit(&items, 100, 1 << 20), 10);
        assert_eq!(fit::<String>(&[], 4, 1 << 20), 0);
    }

    #[test]
    fn the_frame_limit_holds_when_encoded() {
        let items: Vec<String> = (0..10).map(|_| "x".repeat(1000)).collect();
        let n = fit(&items, 100, 4096);
        assert!((1..=3).contains(&n), "{n}");
        let sent = protocol::message::encode_body(&items[..n].to_vec()).len();
        assert!(sent <= 4096, "{sent}");
    }

    #[test]
    fn one_oversized_item_is_still_sent_alone() {
        let items = vec!["x".repeat(10_000), "y".into()];
        assert_eq!(fit(&items, 100, 2048), 1);
    }
}
