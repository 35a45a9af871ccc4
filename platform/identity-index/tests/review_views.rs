//! The read-only views of `review.rs` on both backends: a review task whatever its state, the
//! open count, the merges of a patient before and after undoing, dated source versions.

use megalis_audit::{Actor, AuditLog, AuditSettings, SigningKey};
use megalis_identity::{
    Attributes, Demographics, IdentityStatus, Sex, SourceId, SourceRecord, StrictTraits,
};
use megalis_identity_index::{Applied, Change, IndexSettings, PatientIndex, Resolution};
use megalis_store::Backend;
use megalis_testkit::fresh_database;
use time::macros::date;

fn record(ipp: &str, first: &[&str], birthplace: Option<&str>) -> SourceRecord {
    SourceRecord {
        id: SourceId {
            authority: "1.2.250.1.71.4.2.2.290000017".into(),
            local_id: ipp.into(),
        },
        ins: None,
        demographics: Demographics {
            traits: StrictTraits {
                birth_name: "CADIOU".into(),
                birth_first_names: first.iter().map(|f| f.to_string()).collect(),
                birth_date: date!(1990 - 01 - 15),
                sex: Sex::Male,
                birthplace: birthplace.map(str::to_string),
            },
            used_name: None,
            used_first_name: None,
            address: None,
            telecom: None,
        },
        status: if birthplace.is_some() {
            IdentityStatus::Vali
        } else {
            IdentityStatus::Prov
        },
        attributes: Attributes::default(),
        updated_us: 1,
    }
}

#[tokio::test]
async fn review_merge_and_version_views() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (_dir, db) = fresh_database(backend).await;
        let files = tempfile::tempdir().unwrap();
        let settings = AuditSettings::for_data_dir(files.path());
        let key = SigningKey::load_or_create(&settings.signing_key_path).unwrap();
        let index = PatientIndex::new(
            db.clone(),
            AuditLog::start(db, key, settings),
            IndexSettings::default(),
        )
        .unwrap();
        let actor = Actor::new("reviewer");
        let mut ids = vec![];
        // No birthplace and one first name less on the second record: a possible duplicate.
        for r in [
            record("B1", &["Erwan", "Yves"], Some("29019")),
            record("B2", &["Erwan"], None),
        ] {
            let Applied::Done(effects) = index
                .apply(&actor, &[Change::Upsert(r)], None)
                .await
                .unwrap()
            else {
                panic!("applied")
            };
            ids.push(effects[0].regional_id.clone());
        }
        assert_eq!(index.open_review_count().await.unwrap(), 1);
        let task = index.open_reviews(10).await.unwrap().remove(0);
        assert_eq!(task.candidate, ids[0]);
        index
            .resolve_review(&actor, task.id, Resolution::SamePatient)
            .await
            .unwrap();
        assert_eq!(index.open_review_count().await.unwrap(), 0);
        let closed = index.review_task(task.id).await.unwrap().unwrap();
        assert_eq!(closed.state, "same");
        assert!(index.review_task(task.id + 99).await.unwrap().is_none());

        let merges = index.merges_of(&ids[0]).await.unwrap();
        assert_eq!(merges.len(), 1);
        let m = &merges[0];
        assert_eq!(
            (m.survivor.as_str(), m.merged.as_str()),
            (ids[0].as_str(), ids[1].as_str())
        );
        assert_eq!(m.moved, vec![record("B2", &["Erwan"], None).id]);
        assert!(!m.is_undone() && m.merged_by == "reviewer");
        assert_eq!(index.merges_of(&ids[1]).await.unwrap().len(), 1);

        index.unmerge(&actor, m.id).await.unwrap();
        let undone = index.merge_entry(m.id).await.unwrap().unwrap();
        assert!(undone.is_undone() && undone.unmerged_by.as_deref() == Some("reviewer"));
        assert!(index.merge_entry(m.id + 1).await.unwrap().is_none());

        // Newest first, dated, with the patient of each version.
        let versions = index
            .source_versions(&record("B2", &["Erwan"], None).id)
            .await
            .unwrap();
        let changes: Vec<(&str, &str)> = versions
            .iter()
            .map(|v| (v.change.as_str(), v.regional_id.as_str()))
            .collect();
        let (unmerge, merge) = (format!("unmerge {}", m.id), format!("merge {}", m.id));
        assert_eq!(
            changes,
            [
                (unmerge.as_str(), ids[1].as_str()),
                (merge.as_str(), ids[0].as_str()),
                ("create", ids[1].as_str())
            ]
        );
        assert!(
            versions
                .windows(2)
                .all(|w| w[0].changed_at_us >= w[1].changed_at_us)
        );
        assert_eq!(versions[2].record.demographics.traits.birth_name, "CADIOU");
    }
}
