//! Probabilistic matching of source records: normalisation, phonetic code, blocking and
//! Fellegi–Sunter scoring. Pure functions; the store and the interfaces call them.

pub mod blocking;
pub mod defaults;
pub mod first_names;
pub mod model;
pub mod normalize;
pub mod phonetic;

pub use blocking::blocking_keys;
pub use model::{Comparison, Decision, MatchConfig, MatchRecord, compare};
