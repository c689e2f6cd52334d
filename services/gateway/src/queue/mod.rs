//! The waiting room's building blocks, free of I/O: signed tickets and
//! passes that any gateway replica verifies in a microsecond, the
//! proof-of-work that makes joining cost a bot something, the auditable
//! lottery that orders a scheduled opening's pre-queue, the closed loop
//! that finds the admission rate the platform sustains, the admitter that
//! spends it in joining order without admitting more than a département
//! has places, and estimates of the wait that do not jump. `live` puts
//! them to work on a replica, `store` shares what replicas must share.

pub mod admission;
pub mod estimate;
pub mod keys;
pub mod live;
pub mod lottery;
pub mod meter;
pub mod postcode;
pub mod pow;
pub mod room;
pub mod store;
pub mod tokens;
