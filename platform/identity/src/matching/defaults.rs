//! Default weights and thresholds, estimated on a synthetic population and scored on another.
//!
//! How they were made (see `docs/benchmarks.md`, "Patient identity (issue 4)"):
//! 1. error and duplicate rates fixed first ([`crate::synth::Rates::default`]);
//! 2. `cargo run --release -p megalis-identity --example matching_quality -- 100000 1 2`
//!    generates 100,000 persons with seed 1 (training), estimates `log2(m/u)` per field and level
//!    on the labelled candidate pairs of the blocking, and sets the link threshold 2 bits above
//!    the best-scoring non-match the rules allow to link, the review threshold where 99.9 % of
//!    true matches score at or above it ([`crate::evaluate::train`]);
//! 3. the same command scores those values on seed 2, never seen in training; the figures are in
//!    the benchmarks. The values below are the output of step 2, rounded to 0.01 bit.

use super::model::MatchConfig;

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            weights: [
                // birth name: same, same sound, close, used-name cross match, different
                [0.35, 1.78, 7.48, -3.15, -6.55, 0.0, 0.0],
                // first names: same list, prefix list, conflicting others, close, word, different
                [7.32, 3.73, -8.7, 4.31, -11.14, -12.28, 0.0],
                // birth date: same, day/month swapped, one digit, different
                [5.22, 3.48, -1.07, -14.11, 0.0, 0.0, 0.0],
                // sex: same, different
                [0.91, -14.13, 0.0, 0.0, 0.0, 0.0, 0.0],
                // birthplace: same, same department, different
                [4.32, -12.39, -14.77, 0.0, 0.0, 0.0, 0.0],
                // INS: same, different
                [15.08, -14.93, 0.0, 0.0, 0.0, 0.0, 0.0],
            ],
            link_threshold: 15.80,
            review_threshold: 6.72,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::evaluate;
    use crate::synth::{Rates, generate};

    #[test]
    fn defaults_are_valid_and_never_merge_on_a_fresh_seed() {
        let config = MatchConfig::default();
        config.validate().unwrap();
        // A small population of a seed used neither for training nor for the benchmark.
        let q = evaluate(&generate(5_000, 11, &Rates::default()), &config);
        assert_eq!(q.false_merges, 0, "{q:#?}");
        assert_eq!(q.false_twin_merges, 0);
        assert!(q.precision == 1.0 && q.recall > 0.8, "{q:#?}");
    }
}
