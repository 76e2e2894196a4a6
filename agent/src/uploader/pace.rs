//! Bandwidth limiting, as a token bucket ([`RateLimiter`], pure: the caller passes the
//! time) and a reader that paces a file through it ([`Paced`]), so the upload streams
//! from disk at the configured rate without ever holding the file in memory.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Instant;

/// Bytes handed out per grant (and the reader's scratch buffer).
const PIECE: usize = 64 << 10;

/// A token bucket: at most `rate` bytes per second on average, in bursts of at most
/// one second's worth. Pure: the caller passes the time and sleeps for the delay.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    rate: u64,
    tokens: f64,
    last: Option<Instant>,
}

impl RateLimiter {
    /// A limiter of `rate` bytes per second; 0 means unlimited.
    pub fn new(rate: u64) -> Self {
        Self {
            rate,
            tokens: rate as f64,
            last: None,
        }
    }

    /// Takes `bytes` at `now`; returns how long to wait before sending them.
    pub fn take(&mut self, bytes: usize, now: Instant) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        let rate = self.rate as f64;
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * rate).min(rate);
        }
        self.last = Some(now);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

/// Reads `inner` no faster than `limiter` allows, counting the bytes handed out.
pub struct Paced<'a, R> {
    inner: R,
    limiter: &'a mut RateLimiter,
    granted: usize,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    scratch: Vec<u8>,
    read: Arc<AtomicU64>,
}

impl<'a, R> Paced<'a, R> {
    /// Paces `inner`; `read` counts the bytes handed out.
    pub fn new(inner: R, limiter: &'a mut RateLimiter, read: Arc<AtomicU64>) -> Self {
        Self {
            inner,
            limiter,
            granted: 0,
            sleep: None,
            scratch: vec![0; PIECE],
            read,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Paced<'_, R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                this.sleep = None;
            }
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if this.granted > 0 {
                let want = this.granted.min(buf.remaining()).min(this.scratch.len());
                let mut piece = ReadBuf::new(&mut this.scratch[..want]);
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut piece))?;
                let n = piece.filled().len();
                buf.put_slice(piece.filled());
                this.granted -= n;
                this.read.fetch_add(n as u64, Ordering::Relaxed);
                return Poll::Ready(Ok(()));
            }
            let want = buf.remaining().min(PIECE);
            let wait = this.limiter.take(want, Instant::now());
            this.granted = want;
            if !wait.is_zero() {
                this.sleep = Some(Box::pin(tokio::time::sleep(wait)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn the_rate_limiter_holds_the_average_and_allows_one_second_of_burst() {
        let start = Instant::now();
        let mut l = RateLimiter::new(1000);
        assert_eq!(l.take(1000, start), Duration::ZERO, "one second of burst");
        assert_eq!(l.take(500, start), Duration::from_millis(500));
        // Sending 10 000 bytes in 100-byte pieces, honouring each wait, takes ~10 s of
        // simulated time.
        let mut l = RateLimiter::new(1000);
        let mut now = start;
        l.take(1000, now);
        for _ in 0..100 {
            now += l.take(100, now);
        }
        let spent = now - start;
        assert!(
            spent >= Duration::from_millis(9_900) && spent <= Duration::from_millis(10_100),
            "{spent:?}"
        );
        let mut unlimited = RateLimiter::new(0);
        assert_eq!(unlimited.take(usize::MAX, start), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_paced_reader_hands_out_every_byte_at_the_rate() {
        let data: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let mut limiter = RateLimiter::new(100_000);
        let read = Arc::new(AtomicU64::new(0));
        let started = tokio::time::Instant::now();
        let mut out = Vec::new();
        Paced::new(&data[..], &mut limiter, read.clone())
            .read_to_end(&mut out)
            .await
            .unwrap();
        assert_eq!(out, data);
        assert_eq!(read.load(Ordering::Relaxed), 300_000);
        // One second of burst, then 200 000 bytes at 100 000 bytes/s (paused clock).
        let spent = started.elapsed();
        assert!(spent >= Duration::from_millis(1_900), "{spent:?}");
    }
}
