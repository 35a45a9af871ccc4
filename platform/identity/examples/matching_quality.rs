//! Matching quality benchmark: estimates weights and thresholds on one synthetic population
//! (training seed), scores them on another (test seed), and prints both configurations' figures.
//!
//! `cargo run --release -p megalis-identity --example matching_quality -- PERSONS [TRAIN_SEED TEST_SEED]`
//! With `--defaults`, scores the built-in default configuration instead of training one.

use std::time::Instant;

use megalis_identity::evaluate::{evaluate, train};
use megalis_identity::matching::MatchConfig;
use megalis_identity::synth::{Rates, generate};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let defaults = args.iter().any(|a| a == "--defaults");
    let nums: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let persons = nums.first().copied().unwrap_or(100_000) as usize;
    let train_seed = nums.get(1).copied().unwrap_or(1);
    let test_seed = nums.get(2).copied().unwrap_or(2);
    let rates = Rates::default();

    let config = if defaults {
        MatchConfig::default()
    } else {
        let t = Instant::now();
        let training = generate(persons, train_seed, &rates);
        let config = train(&training);
        eprintln!(
            "trained on {} records (seed {train_seed}) in {:.1?}",
            training.len(),
            t.elapsed()
        );
        config
    };
    println!("weights (bits, per level; last level = missing):");
    for (f, w) in megalis_identity::matching::model::FIELDS
        .iter()
        .zip(config.weights)
    {
        println!("  {f:12} {:?}", w.map(|x| (x * 100.0).round() / 100.0));
    }
    println!(
        "link threshold {:.2}, review threshold {:.2}",
        config.link_threshold, config.review_threshold
    );

    let t = Instant::now();
    let test = generate(persons, test_seed, &rates);
    let generated = t.elapsed();
    let t = Instant::now();
    let q = evaluate(&test, &config);
    println!(
        "test seed {test_seed}: generated {} records in {generated:.1?}, matched in {:.1?}",
        test.len(),
        t.elapsed()
    );
    println!("{}", serde_json_like(&q));
    if args.iter().any(|a| a == "--diagnose") {
        for line in megalis_identity::evaluate::diagnose(&test, &config, 15) {
            println!("{line}");
        }
    }
}

fn serde_json_like(q: &megalis_identity::evaluate::Quality) -> String {
    format!("{q:#?}")
}
