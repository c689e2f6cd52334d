/// Where a hold is in its life. Only a live hold whose time has not run
/// out keeps a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    Live,
    /// Turned into a booking, which has the place now.
    Consumed,
    /// Given back by its holder, or replaced by a newer hold of theirs.
    Released,
    /// Replaced after its time ran out.
    Expired,
}

impl HoldState {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Live => "live",
            HoldState::Consumed => "consumed",
            HoldState::Released => "released",
            HoldState::Expired => "expired",
        }
    }
}
