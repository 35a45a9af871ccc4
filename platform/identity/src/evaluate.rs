//! Matching quality against a known truth: runs blocking and pair decisions over a synthetic
//! population, clusters automatic links (transitively, as the index would), and counts.
//!
//! Counting is over pairs of records: a predicted link is any pair of records that end in the
//! same cluster; a true link any pair of records of the same person. A *false merge* is a pair of
//! records of different persons in one cluster (twins counted apart). The review queue is the
//! number of pairs decided "review" whose records did not end in the same cluster.

use std::collections::HashMap;

use serde::Serialize;

use crate::matching::blocking_keys;
use crate::matching::model::{Comparison, Decision, MatchConfig, MatchRecord};
use crate::synth::SynthRecord;

/// Candidate pairs `(i, j)`, `i < j`, of records sharing a blocking key, each once.
pub fn candidate_pairs(features: &[MatchRecord]) -> Vec<(u32, u32)> {
    let mut blocks: HashMap<String, Vec<u32>> = HashMap::new();
    for (i, f) in features.iter().enumerate() {
        for key in blocking_keys(f) {
            blocks.entry(key).or_default().push(i as u32);
        }
    }
    let mut per_record: Vec<Vec<u32>> = vec![Vec::new(); features.len()];
    for members in blocks.values() {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                per_record[i as usize].push(j);
            }
        }
    }
    let mut pairs = Vec::new();
    for (i, mut js) in per_record.into_iter().enumerate() {
        js.sort_unstable();
        js.dedup();
        pairs.extend(js.into_iter().map(|j| (i as u32, j)));
    }
    pairs
}

/// Labelled comparisons of every candidate pair (for weight estimation).
pub fn labelled_comparisons(records: &[SynthRecord]) -> Vec<(Comparison, bool)> {
    let features: Vec<MatchRecord> = records
        .iter()
        .map(|r| MatchRecord::from_source(&r.record))
        .collect();
    candidate_pairs(&features)
        .into_iter()
        .map(|(i, j)| {
            let c = crate::matching::compare(&features[i as usize], &features[j as usize]);
            (c, records[i as usize].person == records[j as usize].person)
        })
        .collect()
}

/// Quality figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Quality {
    pub records: usize,
    pub persons: usize,
    pub candidate_pairs: usize,
    pub true_links: u64,
    pub predicted_links: u64,
    pub correct_links: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub review_pairs: u64,
    pub review_true: u64,
    pub false_merges: u64,
    pub false_twin_merges: u64,
    /// True links the matcher neither linked nor sent to review: missed duplicates.
    pub missed_links: u64,
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        parent[x as usize] = parent[parent[x as usize] as usize];
        x = parent[x as usize];
    }
    x
}

/// Scores `config` on `records`.
pub fn evaluate(records: &[SynthRecord], config: &MatchConfig) -> Quality {
    let features: Vec<MatchRecord> = records
        .iter()
        .map(|r| MatchRecord::from_source(&r.record))
        .collect();
    let pairs = candidate_pairs(&features);
    let mut parent: Vec<u32> = (0..records.len() as u32).collect();
    let mut reviews = Vec::new();
    for &(i, j) in &pairs {
        match config
            .decide(&features[i as usize], &features[j as usize])
            .0
        {
            Decision::Link => {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                if a != b {
                    parent[a as usize] = b;
                }
            }
            Decision::Review => reviews.push((i, j)),
            Decision::Distinct => {}
        }
    }
    // Pairs within clusters, split by truth.
    let mut clusters: HashMap<u32, Vec<u32>> = HashMap::new();
    for i in 0..records.len() as u32 {
        let root = find(&mut parent, i);
        clusters.entry(root).or_default().push(i);
    }
    let (mut predicted, mut correct, mut false_twin) = (0u64, 0u64, 0u64);
    for members in clusters.values() {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                predicted += 1;
                let (a, b) = (&records[i as usize], &records[j as usize]);
                if a.person == b.person {
                    correct += 1;
                } else if a.twin_of == Some(b.person) || b.twin_of == Some(a.person) {
                    false_twin += 1;
                }
            }
        }
    }
    let mut per_person: HashMap<u32, u64> = HashMap::new();
    for r in records {
        *per_person.entry(r.person).or_default() += 1;
    }
    let true_links: u64 = per_person.values().map(|&k| k * (k - 1) / 2).sum();
    let mut review_pairs = 0;
    let mut review_true = 0;
    let mut reviewed_true = std::collections::HashSet::new();
    for (i, j) in reviews {
        if find(&mut parent, i) != find(&mut parent, j) {
            review_pairs += 1;
            if records[i as usize].person == records[j as usize].person {
                review_true += 1;
                reviewed_true.insert((i, j));
            }
        }
    }
    let precision = if predicted == 0 {
        1.0
    } else {
        correct as f64 / predicted as f64
    };
    let recall = if true_links == 0 {
        1.0
    } else {
        correct as f64 / true_links as f64
    };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    Quality {
        records: records.len(),
        persons: per_person.len(),
        candidate_pairs: pairs.len(),
        true_links,
        predicted_links: predicted,
        correct_links: correct,
        precision,
        recall,
        f1,
        review_pairs,
        review_true,
        false_merges: predicted - correct,
        false_twin_merges: false_twin,
        missed_links: true_links - correct - review_true,
    }
}

/// Estimates a configuration on a training population (weights from labelled candidate pairs,
/// thresholds by [`crate::matching::model::choose_thresholds`] with a 2-bit margin and 99.9 % of
/// true matches kept at or above the review threshold).
pub fn train(records: &[SynthRecord]) -> MatchConfig {
    let labelled = labelled_comparisons(records);
    let weights = crate::matching::model::estimate_weights(labelled.iter().copied());
    let mut config = MatchConfig {
        weights,
        link_threshold: 0.0,
        review_threshold: 0.0,
    };
    let mut scored: Vec<(f64, bool, bool)> = labelled
        .iter()
        .map(|(c, m)| (config.score(c), MatchConfig::may_link(c), *m))
        .collect();
    let (link, review) = crate::matching::model::choose_thresholds(&mut scored, 2.0, 0.999);
    config.link_threshold = link;
    config.review_threshold = review;
    config
}

/// Human-readable descriptions of up to `limit` wrong automatic links and missed duplicates,
/// to understand the errors of a configuration.
pub fn diagnose(records: &[SynthRecord], config: &MatchConfig, limit: usize) -> Vec<String> {
    let features: Vec<MatchRecord> = records
        .iter()
        .map(|r| MatchRecord::from_source(&r.record))
        .collect();
    let mut out = Vec::new();
    let (mut wrong, mut missed) = (0, 0);
    let show = |r: &SynthRecord| {
        let t = &r.record.demographics.traits;
        format!(
            "[{} {:?} {:?} {} {:?} {:?} ins={:?} {:?}]",
            t.birth_name,
            r.record.demographics.used_name,
            t.birth_first_names,
            t.birth_date,
            t.sex,
            t.birthplace,
            r.record.ins.as_ref().map(|i| i.as_str()),
            r.errors
        )
    };
    for (i, j) in candidate_pairs(&features) {
        let (a, b) = (&records[i as usize], &records[j as usize]);
        let (d, score, c) = config.decide(&features[i as usize], &features[j as usize]);
        let same = a.person == b.person;
        if d == Decision::Link && !same && wrong < limit {
            wrong += 1;
            out.push(format!(
                "WRONG LINK {score:.1} {:?}\n  {}\n  {}",
                c.levels,
                show(a),
                show(b)
            ));
        } else if d == Decision::Distinct && same && missed < limit {
            missed += 1;
            out.push(format!(
                "MISSED {score:.1} {:?}\n  {}\n  {}",
                c.levels,
                show(a),
                show(b)
            ));
        }
    }
    out
}
