//! What one operator connection has done lately, and whether it has overstayed its
//! request or idle timer.
//!
//! hyper bounds the time until a request's headers are complete (see
//! [`super::connection`]); it has no timer for what follows. [`Activity`] records when a
//! byte last moved either way ([`Tracked`] wraps the socket) and since when a request
//! has been answered ([`RequestGuard`] lives from the call of the router until hyper
//! drops the response body, that is until the reply is written). [`verdict`] turns that
//! into "wait until" or "close", without IO, so the rules are unit-tested.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// No request is being answered.
const NO_REQUEST: u64 = u64::MAX;

/// The recent activity of one connection, shared by its socket, its requests and its
/// watcher. Times are milliseconds since the connection was accepted.
#[derive(Debug)]
pub struct Activity {
    accepted: Instant,
    last_io_ms: AtomicU64,
    last_read_ms: AtomicU64,
    request_since_ms: AtomicU64,
    answered: AtomicU64,
    last_reply_ms: AtomicU64,
    request_began: Notify,
}

impl Activity {
    /// A connection accepted now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            accepted: Instant::now(),
            last_io_ms: AtomicU64::new(0),
            last_read_ms: AtomicU64::new(0),
            request_since_ms: AtomicU64::new(NO_REQUEST),
            answered: AtomicU64::new(0),
            last_reply_ms: AtomicU64::new(0),
            request_began: Notify::new(),
        })
    }

    fn elapsed(&self) -> Duration {
        self.accepted.elapsed()
    }

    fn touch(&self) {
        self.last_io_ms
            .store(millis(self.elapsed()), Ordering::Relaxed);
    }

    fn touch_read(&self) {
        let now = millis(self.elapsed());
        self.last_io_ms.store(now, Ordering::Relaxed);
        self.last_read_ms.store(now, Ordering::Relaxed);
    }

    /// True when the connection has answered a request and received nothing since:
    /// a kept-alive connection that simply had no next request, not a client that
    /// began one and never finished its headers.
    pub fn kept_alive_unused(&self) -> bool {
        self.answered.load(Ordering::Relaxed) > 0
            && self.last_read_ms.load(Ordering::Relaxed)
                <= self.last_reply_ms.load(Ordering::Relaxed)
    }

    /// A request's headers are complete and the router is called: its timer runs until
    /// the guard is dropped.
    pub fn begin_request(self: &Arc<Self>) -> RequestGuard {
        self.request_since_ms
            .store(millis(self.elapsed()), Ordering::Relaxed);
        // The watcher may be asleep until a later idle deadline.
        self.request_began.notify_one();
        RequestGuard {
            activity: self.clone(),
        }
    }

    /// The state now, for [`verdict`].
    pub fn snapshot(&self) -> Snapshot {
        let since = self.request_since_ms.load(Ordering::Relaxed);
        Snapshot {
            now: self.elapsed(),
            last_io: Duration::from_millis(self.last_io_ms.load(Ordering::Relaxed)),
            request_since: (since != NO_REQUEST).then(|| Duration::from_millis(since)),
        }
    }

    /// Waits until the connection overstays one of its timers, and says which.
    pub async fn overstayed(&self, request: Duration, idle: Duration) -> Overstay {
        loop {
            match verdict(self.snapshot(), request, idle) {
                Verdict::Close(why) => return why,
                Verdict::WaitUntil(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(self.accepted + at) => {}
                        () = self.request_began.notified() => {}
                    }
                }
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX - 1)
}

/// One connection's state at an instant (durations since it was accepted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Now.
    pub now: Duration,
    /// When a byte last moved either way (the accept counts).
    pub last_io: Duration,
    /// Since when a request has been answered, if one is.
    pub request_since: Option<Duration>,
}

/// What the watcher does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Look again at this time (since the accept), or when a request begins.
    WaitUntil(Duration),
    /// Close the connection.
    Close(Overstay),
}

/// Which timer a connection overstayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overstay {
    /// A request was not answered (body read, handler run, reply written) in time.
    Request,
    /// No byte moved while no request was being answered.
    Idle,
}

/// The timer rules: while a request is answered only the request timer runs (a slow
/// handler moves no bytes and is not idle; a client that trickles a body or reads the
/// reply slowly is bounded all the same); otherwise the idle timer runs from the last
/// byte moved.
pub fn verdict(state: Snapshot, request: Duration, idle: Duration) -> Verdict {
    let (deadline, why) = match state.request_since {
        Some(since) => (since.saturating_add(request), Overstay::Request),
        None => (state.last_io.saturating_add(idle), Overstay::Idle),
    };
    if state.now >= deadline {
        Verdict::Close(why)
    } else {
        Verdict::WaitUntil(deadline)
    }
}

/// A request being answered; dropping it ends the request timer.
#[derive(Debug)]
pub struct RequestGuard {
    activity: Arc<Activity>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let activity = &self.activity;
        activity
            .request_since_ms
            .store(NO_REQUEST, Ordering::Relaxed);
        activity.answered.fetch_add(1, Ordering::Relaxed);
        // The reply's last bytes moved just now: the idle timer starts from here.
        activity.touch();
        activity.last_reply_ms.store(
            activity.last_io_ms.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }
}

/// A response body that holds its request's [`RequestGuard`] until hyper has written
/// it (or dropped it with the connection).
#[derive(Debug)]
pub struct GuardedBody {
    body: axum::body::Body,
    _guard: RequestGuard,
}

impl GuardedBody {
    /// `body`, answering the request of `guard`.
    pub fn new(body: axum::body::Body, guard: RequestGuard) -> Self {
        Self {
            body,
            _guard: guard,
        }
    }
}

impl HttpBody for GuardedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A socket that records in its [`Activity`] every time bytes move.
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: Duration = Duration::from_secs(60);
    const IDLE: Duration = Duration::from_secs(30);

    fn at(now: u64, last_io: u64, request_since: Option<u64>) -> Snapshot {
        Snapshot {
            now: Duration::from_secs(now),
            last_io: Duration::from_secs(last_io),
            request_since: request_since.map(Duration::from_secs),
        }
    }

    #[test]
    fn the_idle_timer_runs_from_the_last_byte_while_no_request_is_answered() {
        assert_eq!(
            verdict(at(10, 5, None), REQUEST, IDLE),
            Verdict::WaitUntil(Duration::from_secs(35))
        );
        assert_eq!(
            verdict(at(35, 5, None), REQUEST, IDLE),
            Verdict::Close(Overstay::Idle)
        );
    }

    #[test]
    fn a_request_being_answered_is_not_idle_but_has_its_own_timer() {
        // A slow handler moves no bytes for 40 s: not idle, within the request timer.
        assert_eq!(
            verdict(at(45, 5, Some(5)), REQUEST, IDLE),
            Verdict::WaitUntil(Duration::from_secs(65))
        );
        // A trickled body or a slowly read reply moves bytes, yet the request ends.
        assert_eq!(
            verdict(at(65, 64, Some(5)), REQUEST, IDLE),
            Verdict::Close(Overstay::Request)
        );
    }

    #[tokio::test]
    async fn the_watcher_wakes_for_a_request_that_began_during_an_idle_wait() {
        let activity = Activity::new();
        let short_request = Duration::from_millis(50);
        let long_idle = Duration::from_secs(3600);
        let watcher = {
            let activity = activity.clone();
            tokio::spawn(async move { activity.overstayed(short_request, long_idle).await })
        };
        tokio::task::yield_now().await;
        let guard = activity.begin_request();
        // Asleep until the idle deadline an hour away, the watcher would miss this.
        let why = tokio::time::timeout(Duration::from_secs(120), watcher)
            .await
            .expect("closed for the request, not at the idle deadline")
            .unwrap();
        assert_eq!(why, Overstay::Request);
        drop(guard);
        assert_eq!(activity.snapshot().request_since, None);
        assert!(activity.kept_alive_unused());
    }
}
