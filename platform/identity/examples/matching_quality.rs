//! Matching quality benchmark: estimates weights and thresholds on one synthetic population
//! (training seed), scores them on another (test seed), and prints the figures.
//!
//! `cargo run --release -p megalis-identity --example matching_quality -- PERSONS [TRAIN_SEED TEST_SEED]`
//! - `--defaults`: score the built-in default configuration instead of training one;
//! - `--export FILE.csv`: also write the test population (normalised fields and truth) as CSV,
//!   for `bench/splink.py`;
//! - `--diagnose`: print wrong automatic links and missed duplicates.
//!
//! 743,500 persons give ≈ 1,000,000 source records (1.345 records per person on average).

use std::time::Instant;

use megalis_identity::evaluate::{
    RANDOM_PAIRS, comparison_histogram_of, evaluate_features, export_csv, features,
    random_pair_histogram, train_from_histograms,
};
use megalis_identity::matching::MatchConfig;
use megalis_identity::synth::{Rates, generate};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let defaults = args.iter().any(|a| a == "--defaults");
    let export = args
        .iter()
        .position(|a| a == "--export")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let nums: Vec<u64> = args
        .iter()
        .filter(|a| Some(*a) != export.as_ref())
        .filter_map(|a| a.parse().ok())
        .collect();
    let persons = nums.first().copied().unwrap_or(100_000) as usize;
    let train_seed = nums.get(1).copied().unwrap_or(1);
    let test_seed = nums.get(2).copied().unwrap_or(2);
    let rates = Rates::default();
    let start = Instant::now();

    let config = if defaults {
        MatchConfig::default()
    } else {
        let t = Instant::now();
        let training = generate(persons, train_seed, &rates);
        let training_features = features(&training);
        let histogram = comparison_histogram_of(&training, &training_features);
        let random =
            random_pair_histogram(&training, &training_features, RANDOM_PAIRS, 0x7261_6e64);
        let config = train_from_histograms(&histogram, &random);
        let pairs: u64 = histogram.iter().map(|(_, m, u)| m + u).sum();
        eprintln!(
            "trained on {} records, {pairs} candidate pairs (seed {train_seed}) in {:.1?}",
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
    if let Some(path) = &export {
        let t = Instant::now();
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("export file"));
        export_csv(&test, &mut out).expect("write CSV");
        eprintln!(
            "exported {} records to {path} in {:.1?}",
            test.len(),
            t.elapsed()
        );
    }
    let t = Instant::now();
    let features = features(&test);
    let q = evaluate_features(&test, &features, &config);
    let matched = t.elapsed();
    println!(
        "test seed {test_seed}: generated {} records in {generated:.1?}, matched in {matched:.1?}",
        test.len(),
    );
    println!("{q:#?}");
    println!(
        "SUMMARY records={} persons={} true_pairs={} candidate_pairs={} candidate_true={} precision={:.4} recall={:.4} f1={:.4} \
         false_merges={} false_twin_merges={} review_pairs={} review_true={} missed={} match_seconds={:.1} total_seconds={:.1}",
        q.records,
        q.persons,
        q.true_links,
        q.candidate_pairs,
        q.candidate_true,
        q.precision,
        q.recall,
        q.f1,
        q.false_merges,
        q.false_twin_merges,
        q.review_pairs,
        q.review_true,
        q.missed_links,
        matched.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    if args.iter().any(|a| a == "--diagnose") {
        for line in megalis_identity::evaluate::diagnose(&test, &config, 15) {
            println!("{line}");
        }
    }
}
