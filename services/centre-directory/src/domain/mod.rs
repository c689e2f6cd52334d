//! Centre-directory domain: what a centre is, and how a search near a
//! place is asked and answered.

pub mod availability;
mod centre;
pub mod departments;
mod geo;
pub mod import;
pub mod index;
mod numbers;
pub mod search;

pub use centre::{CentreId, NewCentre};
pub use geo::{BoundingBox, Point, distance_km};
pub use index::{Directory, Gazetteer};
pub use numbers::Numbers;
pub use search::{Near, RawSearch, SearchQuery, Sort};

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{0}")]
    Invalid(String),
    #[error("unknown postcode {0:?}")]
    UnknownPostcode(String),
    #[error("no published centre with id {0:?}")]
    NotFound(String),
    #[error("storage: {0}")]
    Storage(#[from] sea_orm::DbErr),
}
