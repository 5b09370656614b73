//! `wasm_host.log`: a guest's lines into the host's `tracing`, bounded in
//! size and rate so a guest cannot flood the host's log or its disk.

use std::sync::Arc;
use std::time::Instant;

use wasm_abi::host::{LOG_DEBUG, LOG_DROPPED, LOG_ERROR, LOG_INFO, LOG_OK, LOG_WARN};

/// The `tracing` target of guests' lines (filter on it to see or hide them).
pub const TARGET: &str = "wasm_guest";
/// Bytes of one line kept; the rest is cut and said to be.
pub(crate) const MAX_LINE: usize = 1024;
/// Lines a guest may log at once after a quiet spell.
pub(crate) const BURST: f64 = 100.0;
/// Lines per second a guest may log over time.
pub(crate) const PER_SECOND: f64 = 50.0;

/// A token bucket per instance, and the count of lines it dropped.
pub(crate) struct LogLimiter {
    module: Arc<str>,
    tokens: f64,
    last: Instant,
    dropped: u64,
}

impl LogLimiter {
    pub(crate) fn new(module: &str) -> Self {
        LogLimiter {
            module: module.into(),
            tokens: BURST,
            last: Instant::now(),
            dropped: 0,
        }
    }

    /// Logs `line` at `level` (`wasm_abi::host::LOG_*`), or drops it.
    pub(crate) fn log(&mut self, level: i32, line: &[u8]) -> i32 {
        let now = Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * PER_SECOND;
        self.tokens = (self.tokens + earned).min(BURST);
        self.last = now;
        if self.tokens < 1.0 {
            self.dropped += 1;
            return LOG_DROPPED;
        }
        self.tokens -= 1.0;
        self.report_dropped();
        let shown = &line[..line.len().min(MAX_LINE)];
        let text = crate::text::guest_text_read(shown, (line.len() - shown.len()) as u64);
        let module = &*self.module;
        match level {
            LOG_ERROR => tracing::error!(target: TARGET, module, "{text}"),
            LOG_WARN => tracing::warn!(target: TARGET, module, "{text}"),
            LOG_INFO => tracing::info!(target: TARGET, module, "{text}"),
            LOG_DEBUG => tracing::debug!(target: TARGET, module, "{text}"),
            _ => tracing::trace!(target: TARGET, module, "{text}"),
        }
        LOG_OK
    }

    /// Says how many lines were dropped since the last line logged.
    fn report_dropped(&mut self) {
        if self.dropped > 0 {
            let (module, dropped) = (&*self.module, self.dropped);
            tracing::warn!(target: TARGET, module, "{dropped} lines dropped (log rate limit)");
            self.dropped = 0;
        }
    }

    /// Lines dropped and not yet reported.
    #[cfg(test)]
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Drop for LogLimiter {
    fn drop(&mut self) {
        self.report_dropped();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_burst_then_the_rate() {
        let mut l = LogLimiter::new("m");
        let logged = (0..10_000)
            .filter(|_| l.log(LOG_INFO, b"x") == LOG_OK)
            .count();
        // A loop of 10 000 lines takes far less than a second.
        assert!((100..=150).contains(&logged), "{logged}");
        assert_eq!(l.dropped() as usize, 10_000 - logged);
    }
}
