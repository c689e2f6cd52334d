use std::time::Duration;

use creneau_kit::client::GrpcChannel;
use creneau_kit::entrypoint::ServiceSettings;
use creneau_kit::{DatabaseSettings, ServerSettings, TelemetrySettings};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::queue::admission::Limits;
use crate::queue::keys::Keyring;
use crate::queue::live::QueueConfig;
use crate::queue::pow::Difficulty;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The public HTTP listener.
    pub server: ServerSettings,
    pub telemetry: TelemetrySettings,
    pub gateway: GatewaySettings,
    #[serde(default)]
    pub queue: QueueSettings,
    /// The gateway's own tables (the waiting room's shared state); needed
    /// only while the room is on.
    #[serde(default)]
    pub database: Option<DatabaseSettings>,
}

/// The waiting room. Off, every request goes straight to the funnel; on,
/// eligibility, search, centres, slots, holds and bookings need a pass.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct QueueSettings {
    pub enabled: bool,
    /// `key-id:base64,…` (32 bytes or more each): the first seals tickets,
    /// passes and challenges, every one listed opens them (rotation).
    pub keys: SecretString,
    pub pass_minutes: u32,
    pub ticket_hours: u32,
    /// Admissions a second: never fewer, never more, whatever the loop finds.
    pub rate_floor: f64,
    pub rate_ceiling: f64,
    /// The loop slows admissions when holds and bookings take longer.
    pub target_latency_ms: f64,
    /// … or when more funnel calls than this are in flight (all replicas).
    pub max_in_flight: u32,
    /// Passes out at most, all départements together.
    pub max_passes: u32,
    /// Admitted beyond a département's places, as a share, for those who
    /// leave without booking.
    pub margin: f64,
    /// A pass not seen to book within this long is taken as abandoned, and
    /// its place offered to the next in line.
    pub abandon_after_s: u32,
    /// Proof-of-work bits: the floor while joins come at most at
    /// `comfortable_joins_per_s`, one more per doubling, up to the ceiling.
    pub difficulty_floor: u8,
    pub difficulty_ceiling: u8,
    pub comfortable_joins_per_s: f64,
    /// Joins a minute from one address; 0 for no limit.
    pub joins_per_ip_per_minute: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            keys: SecretString::default(),
            pass_minutes: 10,
            ticket_hours: 6,
            rate_floor: 2.0,
            rate_ceiling: 5_000.0,
            target_latency_ms: 400.0,
            max_in_flight: 400,
            max_passes: 20_000,
            margin: 0.2,
            abandon_after_s: 240,
            difficulty_floor: 12,
            difficulty_ceiling: 22,
            comfortable_joins_per_s: 200.0,
            joins_per_ip_per_minute: 30,
        }
    }
}

impl QueueSettings {
    fn parse(&self) -> Result<QueueConfig, String> {
        let keys = Keyring::parse(self.keys.expose_secret()).map_err(|e| format!("queue.keys: {e}"))?;
        let finite =
            [self.rate_floor, self.rate_ceiling, self.target_latency_ms, self.margin, self.comfortable_joins_per_s];
        if finite.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err("queue: rates, latency, margin and comfortable joins must be finite and not negative".into());
        }
        if self.rate_floor <= 0.0 || self.rate_floor > self.rate_ceiling {
            return Err("queue.rate_floor must be positive and at most queue.rate_ceiling".into());
        }
        if self.pass_minutes == 0 || self.ticket_hours == 0 || self.max_passes == 0 || self.max_in_flight == 0 {
            return Err("queue: pass_minutes, ticket_hours, max_passes and max_in_flight must be positive".into());
        }
        if self.difficulty_floor > self.difficulty_ceiling || self.difficulty_ceiling > 32 {
            return Err("queue: difficulty_floor ≤ difficulty_ceiling ≤ 32".into());
        }
        Ok(QueueConfig {
            keys,
            pass_ttl_ms: i64::from(self.pass_minutes) * 60_000,
            ticket_ttl_ms: i64::from(self.ticket_hours) * 3_600_000,
            limits: Limits {
                floor: self.rate_floor,
                ceiling: self.rate_ceiling,
                target_latency_ms: self.target_latency_ms,
                max_in_flight: self.max_in_flight,
            },
            max_passes: self.max_passes,
            margin: self.margin,
            abandon_after_s: i64::from(self.abandon_after_s.max(1)),
            difficulty: Difficulty {
                floor: self.difficulty_floor,
                ceiling: self.difficulty_ceiling,
                comfortable: self.comfortable_joins_per_s,
            },
            joins_per_ip_per_minute: self.joins_per_ip_per_minute,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct GatewaySettings {
    pub eligibility_url: String,
    pub centre_directory_url: String,
    pub slot_inventory_url: String,
    /// Deadline given to each backend call (sent as `grpc-timeout`).
    pub backend_timeout_ms: u64,
    /// Larger request bodies are refused with 413.
    pub max_body_bytes: usize,
}

impl ServiceSettings for Settings {
    const DEFAULTS: &'static str = r#"
[server]
port = 8080

[gateway]
eligibility_url = ""
centre_directory_url = ""
slot_inventory_url = ""
backend_timeout_ms = 5000
max_body_bytes = 65536
"#;

    fn telemetry(&self) -> &TelemetrySettings {
        &self.telemetry
    }

    type Config = Config;

    fn parse(self) -> Result<Config, String> {
        self.server.check()?;
        let g = &self.gateway;
        let channel = |name: &str, url: &str| {
            if url.trim().is_empty() {
                return Err(format!("gateway.{name} is required (CRENEAU__GATEWAY__{})", name.to_uppercase()));
            }
            creneau_kit::client::channel(url.trim()).map_err(|e| e.to_string())
        };
        let backend_timeout = Duration::from_millis(g.backend_timeout_ms);
        if backend_timeout.is_zero() || backend_timeout > self.server.request_timeout() {
            return Err("gateway.backend_timeout_ms must be positive and at most server.request_timeout_ms".into());
        }
        if g.max_body_bytes == 0 {
            return Err("gateway.max_body_bytes must be positive".into());
        }
        let queue = match (self.queue.enabled, self.database) {
            (false, _) => None,
            (true, None) => return Err("the waiting room needs the gateway's database (CRENEAU__DATABASE__URL)".into()),
            (true, Some(database)) => {
                database.check_against(&self.server)?;
                Some((self.queue.parse()?, database))
            }
        };
        Ok(Config {
            queue,
            eligibility: channel("eligibility_url", &g.eligibility_url)?,
            centre_directory: channel("centre_directory_url", &g.centre_directory_url)?,
            slot_inventory: channel("slot_inventory_url", &g.slot_inventory_url)?,
            backend_timeout,
            max_body_bytes: g.max_body_bytes,
            server: self.server,
        })
    }
}

/// What the gateway runs on, every value parsed.
pub struct Config {
    pub server: ServerSettings,
    pub eligibility: GrpcChannel,
    pub centre_directory: GrpcChannel,
    pub slot_inventory: GrpcChannel,
    /// Every backend call's deadline.
    pub backend_timeout: Duration,
    pub max_body_bytes: usize,
    /// The waiting room and the database its shared state lives in.
    pub queue: Option<(QueueConfig, DatabaseSettings)>,
}
