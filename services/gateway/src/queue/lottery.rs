//! The lottery that orders a scheduled opening's pre-queue: everyone who
//! joined before the opening is equally early, so their order is drawn.
//! Before the opening the room publishes a commitment (the SHA-256 of a
//! secret seed); after it, the seed. Each ticket's draw is the SHA-256 of
//! the seed and the ticket id, and the line is ordered by draw: anyone can
//! check that the seed matches the commitment and recompute every place,
//! and nobody, the operator included, could pick the seed to favour a
//! ticket once the commitment was out.

use sha2::{Digest, Sha256};

use super::tokens::TicketId;

pub struct Lottery {
    seed: [u8; 32],
}

impl Lottery {
    pub fn new(seed: [u8; 32]) -> Self {
        Self { seed }
    }

    pub fn random() -> Self {
        Self::new(rand::random())
    }

    /// Published before the opening.
    pub fn commitment(&self) -> [u8; 32] {
        Sha256::digest(self.seed).into()
    }

    /// Published after the opening.
    pub fn seed(&self) -> [u8; 32] {
        self.seed
    }

    pub fn draw(&self, ticket: &TicketId) -> [u8; 32] {
        Sha256::new().chain_update(self.seed).chain_update(ticket.as_bytes()).finalize().into()
    }

    /// The pre-queue in the order it is admitted.
    pub fn order(&self, tickets: &[TicketId]) -> Vec<TicketId> {
        let mut drawn: Vec<([u8; 32], TicketId)> = tickets.iter().map(|t| (self.draw(t), *t)).collect();
        drawn.sort_unstable();
        drawn.into_iter().map(|(_, t)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn anyone_with_the_published_seed_recomputes_the_order() {
        let tickets: Vec<TicketId> = (0..1000).map(|_| TicketId::random()).collect();
        let room = Lottery::random();
        let commitment = room.commitment();
        let order = room.order(&tickets);
        // An auditor, from what was published.
        let seed = room.seed();
        assert_eq!(<[u8; 32]>::from(Sha256::digest(seed)), commitment);
        assert_eq!(Lottery::new(seed).order(&tickets), order);
        // The same tickets, joined in another order, draw the same places.
        let mut reversed = tickets.clone();
        reversed.reverse();
        assert_eq!(Lottery::new(seed).order(&reversed), order);
        // And the draw does shuffle: joining first is no advantage.
        let first_half_first = order.iter().take(500).filter(|t| tickets[..500].contains(t)).count();
        assert!((200..300).contains(&first_half_first), "{first_half_first} of the first 500 joined first");
        assert_ne!(Lottery::random().order(&tickets), order);
    }
}
