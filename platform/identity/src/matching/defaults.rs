//! Default weights and thresholds (placeholder until estimated).
use super::model::{LEVELS, MatchConfig};

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            weights: [[0.0; LEVELS]; 6],
            link_threshold: 20.0,
            review_threshold: 10.0,
        }
    }
}
