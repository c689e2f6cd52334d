//! What one replica sees of the platform, second by second: how long
//! holds and bookings take, how many funnel calls are in flight, how many
//! were refused (503) or timed out (504). The leader's closed loop reads
//! every replica's last second.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::admission::Signals;

#[derive(Debug, Default)]
pub struct Meter {
    in_flight: AtomicU32,
    refused: AtomicU32,
    /// Milliseconds, since the last reading.
    latencies: Mutex<Vec<u32>>,
}

/// Counts a call in flight until dropped.
pub struct InFlight<'a>(&'a Meter);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Latencies kept per second at most: a sample is enough for a percentile.
const MAX_SAMPLES: usize = 4_096;

impl Meter {
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// A funnel call answered with `status` after `elapsed`; `booking`
    /// when it held or booked a place.
    pub fn record(&self, status: u16, elapsed: Duration, booking: bool) {
        if status == 503 || status == 504 {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        if booking {
            let mut latencies = self.latencies.lock().expect("meter lock");
            if latencies.len() < MAX_SAMPLES {
                latencies.push(elapsed.as_millis().min(u128::from(u32::MAX)) as u32);
            }
        }
    }

    /// The signals since the last reading, and a fresh start.
    pub fn read(&self) -> Signals {
        let mut latencies = std::mem::take(&mut *self.latencies.lock().expect("meter lock"));
        let booking_latency_ms = if latencies.is_empty() {
            0.0
        } else {
            let at = (latencies.len() * 9 / 10).min(latencies.len() - 1);
            f64::from(*latencies.select_nth_unstable(at).1)
        };
        Signals {
            booking_latency_ms,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            refused: self.refused.swap(0, Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_gives_the_ninetieth_percentile_refusals_and_calls_in_flight() {
        let meter = Meter::default();
        let a = meter.start();
        let _b = meter.start();
        for ms in 1..=100 {
            meter.record(201, Duration::from_millis(ms), true);
        }
        meter.record(200, Duration::from_secs(9), false);
        meter.record(503, Duration::ZERO, false);
        meter.record(504, Duration::ZERO, false);
        drop(a);
        let s = meter.read();
        assert_eq!((s.booking_latency_ms, s.in_flight, s.refused), (91.0, 1, 2));
        let s = meter.read();
        assert_eq!((s.booking_latency_ms, s.in_flight, s.refused), (0.0, 1, 0));
    }
}
