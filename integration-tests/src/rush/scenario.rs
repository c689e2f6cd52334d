//! What a rush replays: how many citizens, centres and places, when
//! bookings open and how people arrive. Presets give the two runs we keep
//! comparing; every figure can be overridden on the command line.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Small enough for CI: the machine must hold it with no 5xx at all.
    Smoke,
    /// A country's first morning: the machine is expected to be overwhelmed.
    LaunchDay,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub preset: Preset,
    pub citizens: usize,
    pub centres: usize,
    /// First-dose places on offer; second-dose places are seeded beside
    /// them so that every first dose sold can be paired.
    pub places: usize,
    /// From the start of the run to the opening time T.
    #[serde(with = "secs")]
    pub opens_in: Duration,
    /// Share of citizens already waiting (and refreshing) before T.
    pub early_share: f64,
    /// Most of the rest arrive within this window after T, decaying.
    #[serde(with = "secs")]
    pub arrival_window: Duration,
    /// How long a citizen keeps trying before leaving.
    #[serde(with = "secs")]
    pub patience: Duration,
    /// Places a citizen tries (holds refused, bookings refused) before
    /// giving up.
    pub attempts: u32,
    /// Share of booked citizens who cancel a little later.
    pub cancel_share: f64,
    /// Every request's deadline, waiting for a connection included.
    #[serde(with = "millis")]
    pub request_timeout: Duration,
    /// Requests the generator keeps in flight at most: the connections a
    /// crowd of browsers would hold open through a load balancer.
    pub connections: usize,
    pub seed: u64,
    /// The crowd goes through the waiting room: join, wait, then the funnel.
    pub queue: bool,
    /// How long a citizen waits in the room at most.
    #[serde(with = "secs")]
    pub queue_patience: Duration,
    /// Share of waiters who leave early, at a random moment.
    pub abandon_share: f64,
    /// How long an admitted citizen keeps trying to book.
    #[serde(with = "secs")]
    pub admitted_patience: Duration,
}

impl Scenario {
    pub fn preset(preset: Preset) -> Self {
        match preset {
            Preset::Smoke => Self {
                preset,
                citizens: 2_000,
                centres: 40,
                places: 1_200,
                opens_in: Duration::from_secs(3),
                early_share: 0.2,
                arrival_window: Duration::from_secs(12),
                patience: Duration::from_secs(20),
                attempts: 8,
                cancel_share: 0.05,
                request_timeout: Duration::from_secs(10),
                connections: 1_024,
                seed: 2021,
                queue: true,
                queue_patience: Duration::from_secs(1_800),
                abandon_share: 0.1,
                admitted_patience: Duration::from_secs(180),
            },
            Preset::LaunchDay => Self {
                preset,
                citizens: 200_000,
                centres: 1_000,
                places: 50_000,
                opens_in: Duration::from_secs(10),
                early_share: 0.15,
                arrival_window: Duration::from_secs(60),
                patience: Duration::from_secs(120),
                attempts: 8,
                cancel_share: 0.03,
                request_timeout: Duration::from_secs(15),
                connections: 4_096,
                seed: 2021,
                queue: true,
                queue_patience: Duration::from_secs(1_800),
                abandon_share: 0.1,
                admitted_patience: Duration::from_secs(180),
            },
        }
    }

    /// When the last citizen has certainly left: the last arrival plus
    /// their patience, and a last request's timeout.
    pub fn horizon(&self) -> Duration {
        self.opens_in + self.arrival_window + self.patience + self.request_timeout
    }
}

mod secs {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

mod millis {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}
