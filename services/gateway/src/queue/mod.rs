//! The waiting room's building blocks, free of I/O: signed tickets and
//! passes that any gateway replica verifies in a microsecond, the
//! proof-of-work that makes joining cost a bot something, the auditable
//! lottery that orders a scheduled opening's pre-queue, the closed loop
//! that finds the admission rate the platform sustains, the admitter that
//! spends it in joining order without admitting more than a département
//! has places, and estimates of the wait that do not jump.

pub mod admission;
pub mod estimate;
pub mod keys;
pub mod lottery;
pub mod pow;
pub mod room;
pub mod tokens;
