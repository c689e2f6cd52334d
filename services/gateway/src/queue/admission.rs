//! How fast the room lets people in, found without hand tuning: a closed
//! loop on what the platform shows. Every interval the room reads the
//! booking latency, the calls in flight and the backends' refusals; while
//! all are comfortable the rate grows by a tenth (at least one a second),
//! at the first sign of strain it falls by a third. Between a floor (never
//! close the door) and a ceiling (never flood), it settles just under what
//! the platform sustains, on a small machine as on a large one, and follows
//! it when the platform slows.

/// What the platform showed over the last interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signals {
    /// A high percentile of booking latency, in milliseconds.
    pub booking_latency_ms: f64,
    /// Calls to the backends in flight at the end of the interval.
    pub in_flight: u32,
    /// Calls the backends refused as unavailable or overloaded.
    pub refused: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Admissions per second, whatever the signals say.
    pub floor: f64,
    pub ceiling: f64,
    /// Latency the platform should stay under.
    pub target_latency_ms: f64,
    /// In-flight calls the platform should stay under.
    pub max_in_flight: u32,
}

#[derive(Debug, Clone)]
pub struct Controller {
    limits: Limits,
    rate: f64,
}

impl Controller {
    /// Starts at the floor: a new room finds its rate from below.
    pub fn new(limits: Limits) -> Self {
        Self { limits, rate: limits.floor }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// An operator's setting, kept within the limits; the loop goes on from it.
    pub fn set_rate(&mut self, rate: f64) {
        self.rate = rate.clamp(self.limits.floor, self.limits.ceiling);
    }

    /// The rate for the next interval, after `signals`.
    pub fn adjust(&mut self, signals: Signals) -> f64 {
        let l = &self.limits;
        let strained = signals.refused > 0
            || signals.booking_latency_ms > l.target_latency_ms
            || signals.in_flight > l.max_in_flight
            || signals.booking_latency_ms.is_nan();
        let comfortable = signals.booking_latency_ms < 0.8 * l.target_latency_ms
            && f64::from(signals.in_flight) < 0.8 * f64::from(l.max_in_flight);
        if strained {
            self.rate *= 2.0 / 3.0;
        } else if comfortable {
            self.rate += (self.rate / 10.0).max(1.0);
        }
        self.rate = self.rate.clamp(l.floor, l.ceiling);
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A platform that serves `capacity` bookings a second: beyond it a
    /// backlog builds, latency grows with it and, past a point, calls are
    /// refused.
    struct Platform {
        capacity: f64,
        backlog: f64,
    }

    impl Platform {
        fn second(&mut self, admitted: f64) -> (Signals, f64) {
            let served = (self.backlog + admitted).min(self.capacity);
            self.backlog = (self.backlog + admitted - served).max(0.0);
            let latency = 50.0 + 1000.0 * self.backlog / self.capacity;
            let refused =
                if self.backlog > 2.0 * self.capacity { (self.backlog - 2.0 * self.capacity) as u32 } else { 0 };
            let in_flight = (self.backlog + served * 0.05) as u32;
            (Signals { booking_latency_ms: latency, in_flight, refused }, served)
        }
    }

    fn limits() -> Limits {
        Limits { floor: 5.0, ceiling: 5_000.0, target_latency_ms: 500.0, max_in_flight: 2_000 }
    }

    /// Ten minutes against `platform`: the mean admission rate over the last five.
    fn settle(controller: &mut Controller, platform: &mut Platform) -> f64 {
        let mut admitted = Vec::new();
        for _ in 0..600 {
            let rate = controller.rate();
            let (signals, _) = platform.second(rate);
            admitted.push(rate);
            controller.adjust(signals);
        }
        admitted[300..].iter().sum::<f64>() / 300.0
    }

    #[test]
    fn the_rate_settles_near_what_the_platform_sustains_small_or_large() {
        for capacity in [40.0, 400.0, 2_000.0] {
            let mut controller = Controller::new(limits());
            let mut platform = Platform { capacity, backlog: 0.0 };
            let rate = settle(&mut controller, &mut platform);
            assert!((0.6 * capacity..=1.05 * capacity).contains(&rate), "{rate:.0}/s for a platform of {capacity}/s");
            assert!(platform.backlog < capacity, "a backlog of {:.0} for {capacity}/s", platform.backlog);
        }
    }

    #[test]
    fn a_slowed_platform_is_followed_down_and_back_up() {
        let mut controller = Controller::new(limits());
        let mut platform = Platform { capacity: 400.0, backlog: 0.0 };
        settle(&mut controller, &mut platform);
        platform.capacity = 100.0;
        let slowed = settle(&mut controller, &mut platform);
        assert!((60.0..=105.0).contains(&slowed), "{slowed:.0}/s once the platform serves 100/s");
        platform.capacity = 400.0;
        let recovered = settle(&mut controller, &mut platform);
        assert!(recovered >= 240.0, "{recovered:.0}/s once it serves 400/s again");
    }

    #[test]
    fn the_rate_stays_within_the_limits_and_an_operator_can_set_it() {
        let mut controller = Controller::new(limits());
        let refused = Signals { booking_latency_ms: 5_000.0, in_flight: 10_000, refused: 100 };
        (0..100).for_each(|_| {
            controller.adjust(refused);
        });
        assert_eq!(controller.rate(), 5.0);
        let calm = Signals { booking_latency_ms: 10.0, in_flight: 0, refused: 0 };
        (0..1_000).for_each(|_| {
            controller.adjust(calm);
        });
        assert_eq!(controller.rate(), 5_000.0);
        controller.set_rate(1e9);
        assert_eq!(controller.rate(), 5_000.0);
        controller.set_rate(200.0);
        let after_nan = controller.adjust(Signals { booking_latency_ms: f64::NAN, ..calm });
        assert!((after_nan - 200.0 * 2.0 / 3.0).abs() < 1e-9, "no latency reading counts as strain: {after_nan}");
    }
}
