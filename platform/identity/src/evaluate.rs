//! Matching quality against a known truth: runs blocking and pair decisions over a synthetic
//! population, clusters automatic links (transitively, as the index would), and counts.
//!
//! Counting is over pairs of records: a predicted link is any pair of records that end in the
//! same cluster; a true link any pair of records of the same person. A *false merge* is a pair of
//! records of different persons in one cluster (twins counted apart). The review queue is the
//! number of pairs decided "review" whose records did not end in the same cluster.
//!
//! Everything streams, so that a population of a million records fits in a few GB: candidate
//! pairs are generated block by block and never stored (a pair sharing several blocking keys is
//! visited once, in the block of its smallest common key), only the pairs decided "link" or
//! "review" are kept; clusters are a union–find over record indices, and the pairs of a cluster
//! are counted from its size and its persons' record counts, never enumerated. Blocks are shared
//! among the machine's cores.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;

use serde::Serialize;

use crate::matching::blocking_keys;
use crate::matching::model::{
    Comparison, Decision, MatchConfig, MatchRecord, choose_thresholds_counted,
    estimate_weights_counted,
};
use crate::synth::SynthRecord;

/// The comparison features of every record, computed on all cores.
pub fn features(records: &[SynthRecord]) -> Vec<MatchRecord> {
    let threads = threads();
    let chunk = records.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = records
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|r| MatchRecord::from_source(&r.record))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("feature thread"))
            .collect()
    })
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn key_hash(key: &str) -> u64 {
    // SipHash with fixed keys: the same on every run. Two keys colliding on 64 bits only merge
    // two blocks (a few more candidate pairs), never lose one.
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// The blocking index: `(key hash, record)` sorted, and each record's own key hashes.
struct Blocks {
    entries: Vec<(u64, u32)>,
    keys: Vec<u64>,
    offsets: Vec<u32>,
}

impl Blocks {
    fn new(features: &[MatchRecord]) -> Self {
        let mut keys = Vec::with_capacity(features.len() * 3);
        let mut offsets = Vec::with_capacity(features.len() + 1);
        offsets.push(0u32);
        for f in features {
            let mut own: Vec<u64> = blocking_keys(f).iter().map(|k| key_hash(k)).collect();
            own.sort_unstable();
            own.dedup();
            keys.extend(own);
            offsets.push(keys.len() as u32);
        }
        let mut entries = Vec::with_capacity(keys.len());
        for i in 0..features.len() {
            for &k in &keys[offsets[i] as usize..offsets[i + 1] as usize] {
                entries.push((k, i as u32));
            }
        }
        entries.sort_unstable();
        Blocks {
            entries,
            keys,
            offsets,
        }
    }

    fn keys_of(&self, i: u32) -> &[u64] {
        &self.keys[self.offsets[i as usize] as usize..self.offsets[i as usize + 1] as usize]
    }

    /// The smallest key two records share (their key lists are sorted).
    fn first_common_key(&self, i: u32, j: u32) -> Option<u64> {
        let (a, b) = (self.keys_of(i), self.keys_of(j));
        a.iter().copied().find(|k| b.contains(k))
    }

    /// The ranges of `entries` that are blocks of two records or more.
    fn ranges(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < self.entries.len() {
            let key = self.entries[start].0;
            let mut end = start + 1;
            while end < self.entries.len() && self.entries[end].0 == key {
                end += 1;
            }
            if end - start > 1 {
                out.push((start, end));
            }
            start = end;
        }
        out
    }
}

/// Visits every candidate pair `(i, j)`, `i < j`, of records sharing a blocking key, each once,
/// on all cores: each thread gets its own state from `init`, and the states are returned.
pub fn scan_candidate_pairs<S, I, V>(features: &[MatchRecord], init: I, visit: V) -> Vec<S>
where
    S: Send,
    I: Fn() -> S + Sync,
    V: Fn(&mut S, u32, u32) + Sync,
{
    let blocks = Blocks::new(features);
    let ranges = blocks.ranges();
    let threads = threads();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (blocks, ranges, init, visit) = (&blocks, &ranges, &init, &visit);
                s.spawn(move || {
                    let mut state = init();
                    for &(start, end) in ranges.iter().skip(t).step_by(threads) {
                        let members = &blocks.entries[start..end];
                        let key = members[0].0;
                        for (x, &(_, i)) in members.iter().enumerate() {
                            for &(_, j) in &members[x + 1..] {
                                if blocks.first_common_key(i, j) == Some(key) {
                                    visit(&mut state, i, j);
                                }
                            }
                        }
                    }
                    state
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("pair thread"))
            .collect()
    })
}

/// Candidate pairs `(i, j)`, `i < j`, of records sharing a blocking key, each once, sorted.
/// (Holds them all: for small populations; [`scan_candidate_pairs`] streams.)
pub fn candidate_pairs(features: &[MatchRecord]) -> Vec<(u32, u32)> {
    let mut pairs: Vec<(u32, u32)> =
        scan_candidate_pairs(features, Vec::new, |v, i, j| v.push((i, j)))
            .into_iter()
            .flatten()
            .collect();
    pairs.sort_unstable();
    pairs
}

/// Labelled comparisons of every candidate pair (for weight estimation; holds them all).
pub fn labelled_comparisons(records: &[SynthRecord]) -> Vec<(Comparison, bool)> {
    let features = features(records);
    candidate_pairs(&features)
        .into_iter()
        .map(|(i, j)| {
            let c = crate::matching::compare(&features[i as usize], &features[j as usize]);
            (c, records[i as usize].person == records[j as usize].person)
        })
        .collect()
}

/// Each distinct comparison of the candidate pairs with its numbers of true matches and of
/// non-matches (a few thousand entries however many pairs: what training needs).
pub fn comparison_histogram(records: &[SynthRecord]) -> Vec<(Comparison, u64, u64)> {
    comparison_histogram_of(records, &features(records))
}

/// [`comparison_histogram`] with the features already computed.
pub fn comparison_histogram_of(
    records: &[SynthRecord],
    features: &[MatchRecord],
) -> Vec<(Comparison, u64, u64)> {
    let parts = scan_candidate_pairs(features, HashMap::new, |h, i, j| {
        let c = crate::matching::compare(&features[i as usize], &features[j as usize]);
        let counts: &mut [u64; 2] = h.entry(c.levels).or_default();
        let same = records[i as usize].person == records[j as usize].person;
        counts[usize::from(!same)] += 1;
    });
    let mut total: HashMap<[u8; 6], [u64; 2]> = HashMap::new();
    for part in parts {
        for (levels, [m, u]) in part {
            let t = total.entry(levels).or_default();
            t[0] += m;
            t[1] += u;
        }
    }
    let mut out: Vec<_> = total
        .into_iter()
        .map(|(levels, [m, u])| (Comparison { levels }, m, u))
        .collect();
    out.sort_by_key(|(c, _, _)| c.levels);
    out
}

/// The comparisons of `pairs` random pairs of distinct records of different persons, as a
/// histogram (all counted as non-matches): what non-matches look like in the population, not
/// only among the candidate pairs that blocking selects (which share a name or a birth date by
/// construction, so that agreement on those fields looks common among non-matches there).
pub fn random_pair_histogram(
    records: &[SynthRecord],
    features: &[MatchRecord],
    pairs: usize,
    seed: u64,
) -> Vec<(Comparison, u64, u64)> {
    use rand::{Rng, SeedableRng};
    let threads = threads();
    let n = records.len() as u32;
    if n < 2 {
        return Vec::new();
    }
    let parts: Vec<HashMap<[u8; 6], u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (t as u64) << 32);
                    let mut h: HashMap<[u8; 6], u64> = HashMap::new();
                    let mut done = 0;
                    while done < pairs / threads {
                        let (i, j) = (rng.random_range(0..n), rng.random_range(0..n));
                        if records[i as usize].person == records[j as usize].person {
                            continue;
                        }
                        let c =
                            crate::matching::compare(&features[i as usize], &features[j as usize]);
                        *h.entry(c.levels).or_default() += 1;
                        done += 1;
                    }
                    h
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("sampling thread"))
            .collect()
    });
    let mut total: HashMap<[u8; 6], u64> = HashMap::new();
    for part in parts {
        for (levels, u) in part {
            *total.entry(levels).or_default() += u;
        }
    }
    let mut out: Vec<_> = total
        .into_iter()
        .map(|(levels, u)| (Comparison { levels }, 0, u))
        .collect();
    out.sort_by_key(|(c, _, _)| c.levels);
    out
}

/// Quality figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Quality {
    pub records: usize,
    pub persons: usize,
    pub candidate_pairs: usize,
    /// True links among the candidate pairs (the others were lost by blocking).
    pub candidate_true: u64,
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

#[derive(Default)]
struct Decided {
    pairs: usize,
    true_pairs: u64,
    links: Vec<(u32, u32)>,
    reviews: Vec<(u32, u32)>,
}

/// Pairwise counts of a clustering against the truth: `(predicted, correct, false twin)` pairs,
/// from the sizes of clusters and of their (cluster, person) groups.
fn count_pairs(records: &[SynthRecord], cluster: &[u32]) -> (u64, u64, u64) {
    let mut order: Vec<u32> = (0..records.len() as u32).collect();
    order.sort_unstable_by_key(|&i| (cluster[i as usize], records[i as usize].person));
    let (mut predicted, mut correct, mut false_twin) = (0u64, 0u64, 0u64);
    let pairs = |k: u64| k * k.saturating_sub(1) / 2;
    let mut start = 0;
    while start < order.len() {
        let c = cluster[order[start] as usize];
        let mut end = start;
        while end < order.len() && cluster[order[end] as usize] == c {
            end += 1;
        }
        predicted += pairs((end - start) as u64);
        if end - start > 1 {
            // Records per person in this cluster.
            let mut per_person: HashMap<u32, u64> = HashMap::new();
            for &i in &order[start..end] {
                *per_person.entry(records[i as usize].person).or_default() += 1;
            }
            correct += per_person.values().map(|&k| pairs(k)).sum::<u64>();
            for &i in &order[start..end] {
                // Each record of a twin counted against the records of its sibling here.
                if let Some(t) = records[i as usize].twin_of {
                    false_twin += per_person.get(&t).copied().unwrap_or(0);
                }
            }
        }
        start = end;
    }
    (predicted, correct, false_twin)
}

/// Scores `config` on `records`.
pub fn evaluate(records: &[SynthRecord], config: &MatchConfig) -> Quality {
    let features = features(records);
    evaluate_features(records, &features, config)
}

/// [`evaluate`] with the features already computed.
pub fn evaluate_features(
    records: &[SynthRecord],
    features: &[MatchRecord],
    config: &MatchConfig,
) -> Quality {
    let parts = scan_candidate_pairs(features, Decided::default, |d, i, j| {
        d.pairs += 1;
        d.true_pairs += u64::from(records[i as usize].person == records[j as usize].person);
        match config
            .decide(&features[i as usize], &features[j as usize])
            .0
        {
            Decision::Link => d.links.push((i, j)),
            Decision::Review => d.reviews.push((i, j)),
            Decision::Distinct => {}
        }
    });
    let mut parent: Vec<u32> = (0..records.len() as u32).collect();
    let (mut candidate, mut candidate_true) = (0, 0);
    let mut reviews = Vec::new();
    for part in parts {
        candidate += part.pairs;
        candidate_true += part.true_pairs;
        for (i, j) in part.links {
            let (a, b) = (find(&mut parent, i), find(&mut parent, j));
            if a != b {
                parent[a as usize] = b;
            }
        }
        reviews.extend(part.reviews);
    }
    let cluster: Vec<u32> = (0..records.len() as u32)
        .map(|i| find(&mut parent, i))
        .collect();
    let (predicted, correct, false_twin) = count_pairs(records, &cluster);
    let mut per_person: HashMap<u32, u64> = HashMap::new();
    for r in records {
        *per_person.entry(r.person).or_default() += 1;
    }
    let true_links: u64 = per_person.values().map(|&k| k * (k - 1) / 2).sum();
    let mut review_pairs = 0;
    let mut review_true = 0;
    for (i, j) in reviews {
        if cluster[i as usize] != cluster[j as usize] {
            review_pairs += 1;
            if records[i as usize].person == records[j as usize].person {
                review_true += 1;
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
        candidate_pairs: candidate,
        candidate_true,
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

/// Random pairs sampled for the u probabilities in [`train`].
pub const RANDOM_PAIRS: usize = 10_000_000;

/// Estimates a configuration on a training population: m probabilities from the true matches
/// among the candidate pairs, u probabilities from [`RANDOM_PAIRS`] random pairs of different
/// persons (weights `log2(m/u)` per field and level); thresholds by
/// [`crate::matching::model::choose_thresholds`] on the candidate pairs, with a 2-bit margin
/// above the best-scoring non-match the rules allow to link and 99.9 % of true matches kept at or
/// above the review threshold.
pub fn train(records: &[SynthRecord]) -> MatchConfig {
    let features = features(records);
    let candidates = comparison_histogram_of(records, &features);
    let random = random_pair_histogram(records, &features, RANDOM_PAIRS, 0x7261_6e64);
    train_from_histograms(&candidates, &random)
}

/// [`train`] from the histograms of the candidate pairs and of random pairs.
pub fn train_from_histograms(
    candidates: &[(Comparison, u64, u64)],
    random: &[(Comparison, u64, u64)],
) -> MatchConfig {
    let m = candidates.iter().map(|(c, m, _)| (*c, *m, 0));
    let u = random.iter().map(|(c, _, u)| (*c, 0, *u));
    let weights = estimate_weights_counted(m.chain(u));
    thresholds_on(candidates, weights)
}

/// Weights and thresholds both from the labelled candidate pairs (u conditioned on blocking).
pub fn train_from_histogram(histogram: &[(Comparison, u64, u64)]) -> MatchConfig {
    thresholds_on(
        histogram,
        estimate_weights_counted(histogram.iter().copied()),
    )
}

fn thresholds_on(
    candidates: &[(Comparison, u64, u64)],
    weights: [[f64; crate::matching::model::LEVELS]; 6],
) -> MatchConfig {
    let mut config = MatchConfig {
        weights,
        link_threshold: 0.0,
        review_threshold: 0.0,
    };
    let mut scored: Vec<(f64, bool, u64, u64)> = candidates
        .iter()
        .map(|(c, m, u)| (config.score(c), MatchConfig::may_link(c), *m, *u))
        .collect();
    let (link, review) = choose_thresholds_counted(&mut scored, 2.0, 0.999);
    config.link_threshold = link;
    config.review_threshold = review;
    config
}

/// Writes a population as CSV with its truth, for other matchers (Splink): one line per record,
/// the fields the comparators look at, already normalised (upper-case ASCII letters; phonetic
/// codes of this crate), and `person` (the truth cluster) and `twin_of`.
pub fn export_csv(records: &[SynthRecord], out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "record_id,person,twin_of,birth_name,birth_core,birth_phonetic,used_name,used_phonetic,\
         first_name,first_phonetic,other_first_names,birth_date,birth_year,sex,birthplace,\
         birth_department,ins,ins_prefix,ins_retrieved"
    )?;
    let features = features(records);
    for (i, (r, f)) in records.iter().zip(&features).enumerate() {
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        writeln!(
            out,
            "{i},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.person,
            r.twin_of.map(|t| t.to_string()).unwrap_or_default(),
            f.birth_joined,
            f.birth_core,
            f.birth_phonetic,
            opt(&f.used_joined),
            opt(&f.used_phonetic),
            f.first_first,
            f.first_phonetic,
            f.other_first_names.join(" "),
            f.birth_date,
            f.birth_date.year(),
            f.sex.hl7(),
            opt(&f.birthplace),
            f.birthplace.as_deref().map(|b| &b[..2]).unwrap_or_default(),
            opt(&f.ins),
            f.ins.as_deref().map(|i| &i[..10]).unwrap_or_default(),
            u8::from(f.ins_retrieved),
        )?;
    }
    Ok(())
}

/// Human-readable descriptions of up to `limit` wrong automatic links and missed duplicates,
/// to understand the errors of a configuration.
pub fn diagnose(records: &[SynthRecord], config: &MatchConfig, limit: usize) -> Vec<String> {
    let features = features(records);
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
    let mut near: Vec<(f64, String)> = Vec::new();
    // Per comparison: (true matches reviewed, non-matches reviewed, true matches left distinct).
    let mut patterns: HashMap<[u8; 6], (u64, u64, u64, f64)> = HashMap::new();
    for (i, j) in candidate_pairs(&features) {
        let (a, b) = (&records[i as usize], &records[j as usize]);
        let (d, score, c) = config.decide(&features[i as usize], &features[j as usize]);
        let same = a.person == b.person;
        if d == Decision::Review || (d == Decision::Distinct && same) {
            let p = patterns.entry(c.levels).or_insert((0, 0, 0, score));
            match (d, same) {
                (Decision::Review, true) => p.0 += 1,
                (Decision::Review, false) => p.1 += 1,
                _ => p.2 += 1,
            }
        }
        if !same && d != Decision::Link && MatchConfig::may_link(&c) {
            near.push((
                score,
                format!(
                    "NEAR NON-MATCH {score:.1} {:?} {d:?}\n  {}\n  {}",
                    c.levels,
                    show(a),
                    show(b)
                ),
            ));
            near.sort_by(|x, y| y.0.total_cmp(&x.0));
            near.truncate(limit);
        }
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
    out.extend(near.into_iter().map(|(_, line)| line));
    let mut patterns: Vec<_> = patterns.into_iter().collect();
    patterns.sort_by_key(|(_, (r, n, m, _))| std::cmp::Reverse(r + n + m));
    for (levels, (reviewed_true, reviewed_false, missed, score)) in patterns.into_iter().take(limit)
    {
        out.push(format!(
            "PATTERN {levels:?} score {score:.1} may_link {}: review {reviewed_true} true \
             {reviewed_false} false, missed {missed}",
            MatchConfig::may_link(&Comparison { levels })
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{Rates, generate};

    /// The streaming scan visits exactly the pairs of the naive all-pairs-per-block method.
    #[test]
    fn streaming_pairs_equal_naive_pairs() {
        let records = generate(3_000, 3, &Rates::default());
        let features = features(&records);
        let mut blocks: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, f) in features.iter().enumerate() {
            for key in blocking_keys(f) {
                blocks.entry(key).or_default().push(i as u32);
            }
        }
        let mut naive: Vec<(u32, u32)> = blocks
            .values()
            .flat_map(|m| {
                m.iter()
                    .enumerate()
                    .flat_map(move |(x, &i)| m[x + 1..].iter().map(move |&j| (i, j)))
            })
            .collect();
        naive.sort_unstable();
        naive.dedup();
        assert_eq!(candidate_pairs(&features), naive);
    }

    /// Training from the histogram gives the same weights as from the labelled pairs.
    #[test]
    fn histogram_training_equals_pairwise_training() {
        let records = generate(3_000, 4, &Rates::default());
        let pairwise = crate::matching::model::estimate_weights(labelled_comparisons(&records));
        let config = train_from_histogram(&comparison_histogram(&records));
        assert_eq!(pairwise, config.weights);
        config.validate().unwrap();
        // Unconditional u from random pairs (a small sample: debug builds are slow).
        let features = features(&records);
        let random = random_pair_histogram(&records, &features, 20_000, 1);
        let config = train_from_histograms(&comparison_histogram(&records), &random);
        config.validate().unwrap();
        assert!(config.weights[2][0] > 10.0, "{config:?}");
    }
}
