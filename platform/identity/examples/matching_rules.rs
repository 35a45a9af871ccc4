//! Design aid for the rules of `MatchConfig::may_link`: trains on one seed (weights as
//! `evaluate::train`) and, for several candidate rule sets, prints in sample the link threshold
//! the documented rule gives (2 bits above the best non-match allowed to link), the true
//! candidate pairs linked, the comparison patterns of the true pairs each rule stops from
//! linking, the true pairs not linked, the best-scoring non-matches it allows, and the expected
//! number of false links per linked pattern under field independence: the non-matching pairs of
//! the population times u(P) = m(P) · 2^-score (an underestimate for frequent names, which the
//! weights do not distinguish). Pair counts, before clustering.
//!
//! `cargo run --release -p megalis-identity --example matching_rules -- PERSONS SEED`

use megalis_identity::evaluate::{
    RANDOM_PAIRS, comparison_histogram_of, features, random_pair_histogram, train_from_histograms,
};
use megalis_identity::matching::MatchConfig;
use megalis_identity::matching::model::{
    Comparison, FIRST_NAMES_DIFFERENT, FIRST_NAMES_OTHER_CLOSE_NAME, MISSING,
};
use megalis_identity::synth::{Rates, generate};

/// Strict traits (birth name, first names, birth date, sex, birthplace) that are compared but
/// not identical.
fn approximate(c: &Comparison) -> usize {
    c.levels[..5]
        .iter()
        .filter(|&&l| l != 0 && l != MISSING)
        .count()
}

/// The rules of `MatchConfig::may_link` before the one-digit-date rule.
fn before(c: &Comparison) -> bool {
    let [name, first, date, sex, place, ins] = c.levels;
    first != FIRST_NAMES_DIFFERENT
        && name != 4
        && !(first == FIRST_NAMES_OTHER_CLOSE_NAME && ins != 0)
        && !(place == MISSING && ins == MISSING && (name, first, date, sex) != (0, 0, 0, 0))
}

fn main() {
    let nums: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let persons = nums.first().copied().unwrap_or(100_000) as usize;
    let seed = nums.get(1).copied().unwrap_or(1);
    let training = generate(persons, seed, &Rates::default());
    let f = features(&training);
    let hist = comparison_histogram_of(&training, &f);
    let random = random_pair_histogram(&training, &f, RANDOM_PAIRS, 0x7261_6e64);
    let config = train_from_histograms(&hist, &random);
    let true_total: u64 = hist.iter().map(|(_, m, _)| m).sum();
    println!(
        "seed {seed}: {} records, {true_total} true candidate pairs",
        training.len()
    );
    type Rule = fn(&Comparison) -> bool;
    let rules: Vec<(&str, Rule)> = vec![
        ("MatchConfig::may_link", |c| MatchConfig::may_link(c)),
        ("before the one-digit-date rule", before),
        // Alternatives considered, stricter (more true pairs stopped, see the output).
        ("at most one approximate strict trait w/o same INS", |c| {
            MatchConfig::may_link(c) && (c.levels[5] == 0 || approximate(c) <= 1)
        }),
        ("date or list identical w/o same INS", |c| {
            before(c) && (c.levels[5] == 0 || c.levels[1] == 0 || c.levels[2] == 0)
        }),
        (
            "and a used-name cross match needs an identical list w/o same INS",
            |c| {
                MatchConfig::may_link(c)
                    && (c.levels[5] == 0 || c.levels[0] != 3 || c.levels[1] == 0)
            },
        ),
    ];
    for (name, rule) in rules {
        let max_nm = hist
            .iter()
            .filter(|(c, _, u)| *u > 0 && rule(c))
            .map(|(c, _, _)| config.score(c))
            .fold(f64::NEG_INFINITY, f64::max);
        let link = max_nm + 2.0;
        let linked: u64 = hist
            .iter()
            .filter(|(c, _, _)| rule(c) && config.score(c) >= link)
            .map(|(_, m, _)| m)
            .sum();
        println!(
            "\n== {name}: link threshold {link:.2}, true pairs linked {linked} ({:.4})",
            linked as f64 / true_total as f64
        );
        let mut stopped: Vec<_> = hist
            .iter()
            .filter(|(c, m, _)| *m > 0 && before(c) && !rule(c))
            .collect();
        stopped.sort_by_key(|(_, m, _)| std::cmp::Reverse(*m));
        let total_stopped: u64 = stopped.iter().map(|(_, m, _)| m).sum();
        let nm_stopped: u64 = stopped.iter().map(|(_, _, u)| u).sum();
        println!(
            "  allowed before the one-digit-date rule, not by this one: {total_stopped} true, \
             {nm_stopped} non-matches"
        );
        for (c, m, u) in stopped.iter().take(12) {
            println!(
                "    {:?} score {:.1}: {m} true, {u} non",
                c.levels,
                config.score(c)
            );
        }
        let mut unlinked: Vec<_> = hist
            .iter()
            .filter(|(c, m, _)| *m > 0 && !(rule(c) && config.score(c) >= link))
            .collect();
        unlinked.sort_by_key(|(_, m, _)| std::cmp::Reverse(*m));
        println!("  true pairs not linked, by pattern:");
        for (c, m, u) in unlinked.iter().take(10) {
            println!(
                "    {:?} score {:.1} may_link {}: {m} true, {u} non",
                c.levels,
                config.score(c),
                rule(c)
            );
        }
        // Expected non-matching pairs per linked pattern under field independence:
        // u(P) · non-match pairs = m(P) · 2^-score · non-match pairs, m(P) = true count / true total.
        let n = training.len() as f64;
        let nonmatch_pairs = n * (n - 1.0) / 2.0 - true_total as f64;
        let mut risk: Vec<_> = hist
            .iter()
            .filter(|(c, m, _)| *m > 0 && rule(c) && config.score(c) >= link)
            .map(|(c, m, u)| {
                let e = *m as f64 / true_total as f64 * (-config.score(c)).exp2() * nonmatch_pairs;
                (e, c, m, u)
            })
            .collect();
        risk.sort_by(|a, b| b.0.total_cmp(&a.0));
        let total_risk: f64 = risk.iter().map(|r| r.0).sum();
        println!("  expected false links (independence): {total_risk:.2}; top patterns:");
        for (e, c, m, u) in risk.iter().take(12) {
            println!(
                "    {:?} score {:.1}: {m} true, {u} non, expected false {e:.3}",
                c.levels,
                config.score(c)
            );
        }
        let mut near: Vec<_> = hist.iter().filter(|(c, _, u)| *u > 0 && rule(c)).collect();
        near.sort_by(|a, b| config.score(&b.0).total_cmp(&config.score(&a.0)));
        println!("  best non-matches allowed:");
        for (c, m, u) in near.iter().take(8) {
            println!(
                "    {:?} score {:.1}: {m} true, {u} non",
                c.levels,
                config.score(c)
            );
        }
    }
}
