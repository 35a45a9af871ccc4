"""Splink (DuckDB backend) as the reference matcher on the synthetic population exported by
`matching_quality --export FILE.csv`, scored with the same pairwise metrics as
`megalis_identity::evaluate` (pairs of records after transitive clustering, against the truth).

Usage: python bench/splink_reference.py FILE.csv [LINK_PROBABILITY ...]

Splink is trained unsupervised, as its documentation recommends: u by random sampling, the
prior from a deterministic rule with an assumed recall, m by EM on two blocking rules (each rule
trains the fields it does not block on). It sees the same normalised fields and phonetic codes
as our matcher (the export is the output of our normalisation), with term-frequency adjustments
on names. Blocking rules for prediction are ours: phonetic birth name + birth year, birth date +
sex, INS prefix, used name (both ways) + birth year.
"""

import sys
import time

import duckdb
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

NAME_CROSS = (
    "(used_name_l = birth_name_r OR birth_name_l = used_name_r "
    "OR used_phonetic_l = birth_phonetic_r OR birth_phonetic_l = used_phonetic_r)"
)


def settings():
    birth_name = cl.CustomComparison(
        output_column_name="birth_name",
        comparison_levels=[
            cll.NullLevel("birth_name"),
            cll.Or(
                cll.ExactMatchLevel("birth_name", term_frequency_adjustments=True),
                cll.ExactMatchLevel("birth_core"),
            ),
            cll.ExactMatchLevel("birth_phonetic"),
            cll.Or(
                cll.JaroWinklerLevel("birth_name", 0.9),
                cll.DamerauLevenshteinLevel("birth_name", 1),
            ),
            cll.CustomLevel(NAME_CROSS, "used name / birth name"),
            cll.ElseLevel(),
        ],
    )
    first_names = cl.CustomComparison(
        output_column_name="first_name",
        comparison_levels=[
            cll.NullLevel("first_name"),
            cll.And(
                cll.ExactMatchLevel("first_name", term_frequency_adjustments=True),
                cll.CustomLevel("other_first_names_l = other_first_names_r"),
            ),
            cll.ExactMatchLevel("first_name"),
            cll.Or(
                cll.ExactMatchLevel("first_phonetic"),
                cll.JaroWinklerLevel("first_name", 0.88),
                cll.DamerauLevenshteinLevel("first_name", 1),
            ),
            cll.ElseLevel(),
        ],
    )
    birth_date = cl.CustomComparison(
        output_column_name="birth_date",
        comparison_levels=[
            cll.NullLevel("birth_date"),
            cll.ExactMatchLevel("birth_date"),
            cll.CustomLevel(
                "substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4) "
                "AND substr(birth_date_l, 6, 2) = substr(birth_date_r, 9, 2) "
                "AND substr(birth_date_l, 9, 2) = substr(birth_date_r, 6, 2)",
                "day and month swapped",
            ),
            cll.DamerauLevenshteinLevel("birth_date", 1),
            cll.ElseLevel(),
        ],
    )
    birthplace = cl.CustomComparison(
        output_column_name="birthplace",
        comparison_levels=[
            cll.NullLevel("birthplace"),
            cll.ExactMatchLevel("birthplace"),
            cll.ExactMatchLevel("birth_department"),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        comparisons=[
            birth_name,
            first_names,
            birth_date,
            cl.ExactMatch("sex"),
            birthplace,
            cl.ExactMatch("ins"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("birth_phonetic", "birth_year"),
            block_on("birth_date", "sex"),
            block_on("ins_prefix"),
            "l.used_phonetic = r.birth_phonetic AND l.birth_year = r.birth_year",
            "l.birth_phonetic = r.used_phonetic AND l.birth_year = r.birth_year",
        ],
        retain_intermediate_calculation_columns=False,
    )


def metrics(con, clusters_table, threshold_label):
    """Pairwise precision/recall/F1 after clustering, false (twin) merges, as our evaluator."""
    q = f"""
    WITH c AS (
        SELECT t.record_id, t.person, t.twin_of, k.cluster_id
        FROM records t JOIN {clusters_table} k USING (record_id)
    ),
    cs AS (SELECT cluster_id, count(*) AS n FROM c GROUP BY cluster_id),
    cp AS (SELECT cluster_id, person, count(*) AS n FROM c GROUP BY cluster_id, person),
    tp AS (SELECT person, count(*) AS n FROM records GROUP BY person),
    tw AS (
        SELECT sum(a.n * b.n) AS pairs
        FROM cp a
        JOIN (SELECT DISTINCT person, twin_of FROM records WHERE twin_of IS NOT NULL) t
          ON a.person = t.person
        JOIN cp b ON b.cluster_id = a.cluster_id AND b.person = t.twin_of
    )
    SELECT
        (SELECT sum(n * (n - 1) / 2) FROM cs) AS predicted,
        (SELECT sum(n * (n - 1) / 2) FROM cp) AS correct,
        (SELECT sum(n * (n - 1) / 2) FROM tp) AS true_links,
        (SELECT coalesce(pairs, 0) FROM tw) AS twin_pairs
    """
    predicted, correct, true_links, twins = con.execute(q).fetchone()
    precision = correct / predicted if predicted else 1.0
    recall = correct / true_links if true_links else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "threshold": threshold_label,
        "predicted": int(predicted),
        "correct": int(correct),
        "true_links": int(true_links),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "false_merges": int(predicted - correct),
        "false_twin_merges": int(twins),
    }


def main():
    path = sys.argv[1]
    thresholds = [float(x) for x in sys.argv[2:]] or [0.5, 0.9, 0.99, 0.999, 0.9999]
    started = time.time()
    con = duckdb.connect()
    con.execute(
        f"""CREATE TABLE records AS
        SELECT record_id::BIGINT AS record_id, person::BIGINT AS person,
               TRY_CAST(twin_of AS BIGINT) AS twin_of,
               nullif(birth_name, '') AS birth_name, nullif(birth_core, '') AS birth_core,
               nullif(birth_phonetic, '') AS birth_phonetic,
               nullif(used_name, '') AS used_name, nullif(used_phonetic, '') AS used_phonetic,
               nullif(first_name, '') AS first_name, nullif(first_phonetic, '') AS first_phonetic,
               coalesce(other_first_names, '') AS other_first_names,
               birth_date, birth_year, sex,
               nullif(birthplace, '') AS birthplace,
               nullif(birth_department, '') AS birth_department,
               nullif(ins, '') AS ins, nullif(ins_prefix, '') AS ins_prefix
        FROM read_csv('{path}', all_varchar = true, header = true)"""
    )
    n = con.execute("SELECT count(*) FROM records").fetchone()[0]
    db_api = DuckDBAPI(connection=con)
    linker = Linker("records", settings(), db_api, set_up_basic_logging=False)
    t = time.time()
    # Prior: records with the same INS are the same person; INS is missing on about half of
    # the records, so such a rule finds about a third of the true pairs.
    linker.training.estimate_probability_two_random_records_match(
        [block_on("ins")], recall=0.35
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("birth_date", "sex")
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("birth_phonetic", "first_phonetic")
    )
    trained = time.time() - t
    t = time.time()
    lowest = min(thresholds + [0.5])
    predictions = linker.inference.predict(threshold_match_probability=lowest)
    predicted_pairs = con.execute(
        f"SELECT count(*) FROM {predictions.physical_name}"
    ).fetchone()[0]
    predict_time = time.time() - t
    rows = []
    for p in thresholds:
        t = time.time()
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=p
        )
        m = metrics(con, clusters.physical_name, p)
        # Review band: pairs predicted with probability >= 0.5 but below the link threshold
        # whose records did not end in one cluster.
        review = con.execute(
            f"""SELECT count(*), count(*) FILTER (WHERE a.person = b.person)
            FROM {predictions.physical_name} p
            JOIN {clusters.physical_name} ca ON ca.record_id = p.record_id_l
            JOIN {clusters.physical_name} cb ON cb.record_id = p.record_id_r
            JOIN records a ON a.record_id = p.record_id_l
            JOIN records b ON b.record_id = p.record_id_r
            WHERE p.match_probability >= 0.5 AND p.match_probability < {p}
              AND ca.cluster_id <> cb.cluster_id"""
        ).fetchone()
        m["review_pairs"], m["review_true"] = int(review[0]), int(review[1])
        m["cluster_seconds"] = time.time() - t
        rows.append(m)
    total = time.time() - started
    print(
        f"splink {__import__('splink').__version__} duckdb {duckdb.__version__}: {n} records, "
        f"training {trained:.1f} s, predict {predict_time:.1f} s "
        f"({predicted_pairs} pairs with p >= {lowest}), total {total:.1f} s"
    )
    print(
        "threshold  precision  recall   F1      false_merges  twin  review(true)  cluster_s"
    )
    for m in rows:
        print(
            f"{m['threshold']:<10} {m['precision']:.4f}     {m['recall']:.4f}   "
            f"{m['f1']:.4f}  {m['false_merges']:<12}  {m['false_twin_merges']:<4}  "
            f"{m['review_pairs']} ({m['review_true']})  {m['cluster_seconds']:.1f}"
        )
    for m in rows:
        print(
            "SPLINK " + " ".join(f"{k}={v}" for k, v in m.items()) + f" total_seconds={total:.1f}"
        )


if __name__ == "__main__":
    main()
