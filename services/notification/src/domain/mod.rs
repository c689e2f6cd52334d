//! What a citizen is told, and how it is written. Pure functions of the
//! event and of the centre details, in French by default, English on
//! request.

mod render;
mod time;

pub use render::{CentreDetails, Channel, Rendered, render};
pub use time::paris_local;
