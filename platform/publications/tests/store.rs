//! Articles on both backends: lifecycle and who sees what at which instant, slugs, search
//! (accents, prefixes, tags), paging, the feed's selection and concurrent edits.

use megalis_publications::article::visibility;
use megalis_publications::{
    Action, ArticleInput, Audience, ListQuery, PublicationError, Publications, Status, Viewer,
    Visibility,
};
use megalis_store::Backend;
use megalis_testkit::fresh_database;

const T0: i64 = 1_780_000_000_000_000;
const HOUR: i64 = 3_600_000_000;

const ANONYMOUS: Viewer = Viewer::ANONYMOUS;
const MEMBER: Viewer = Viewer {
    signed_in: true,
    editor: false,
};

fn input(title: &str, body: &str, audience: &str, tags: &str) -> ArticleInput {
    ArticleInput::parse(title, body, audience, tags).unwrap()
}

fn query(viewer: Viewer, now_us: i64, text: &str, tag: Option<&str>) -> ListQuery {
    ListQuery {
        viewer,
        audiences: vec![],
        now_us,
        text: text.into(),
        tag: tag.map(str::to_string),
        offset: 0,
        limit: 20,
    }
}

async fn titles(p: &Publications, q: &ListQuery) -> Vec<String> {
    p.list(q)
        .await
        .unwrap()
        .articles
        .into_iter()
        .map(|a| a.title)
        .collect()
}

async fn lifecycle(backend: Backend) {
    let (_dir, db) = fresh_database(backend).await;
    let p = Publications::new(db);
    let public = p
        .create(
            &input(
                "Vos droits de patient",
                "Vous pouvez **consulter** votre dossier.",
                "public",
                "Droits des patients",
            ),
            "editor-1",
            "Équipe éditoriale",
            T0,
        )
        .await
        .unwrap();
    assert_eq!(public.status, Status::Draft);
    assert_eq!(public.slug, "vos-droits-de-patient");
    assert_eq!(public.summary, "Vous pouvez consulter votre dossier.");
    assert_eq!(public.tags[0].key, "droits-des-patients");
    assert_eq!(public.version, 1);
    let pro = p
        .create(
            &input(
                "Parcours MRC",
                "Stades G3a à G5.",
                "professionals",
                "Néphrologie",
            ),
            "editor-1",
            "Équipe éditoriale",
            T0,
        )
        .await
        .unwrap();
    // Drafts: nobody reads them.
    assert!(titles(&p, &query(MEMBER, T0, "", None)).await.is_empty());

    let public = p
        .apply(&public.id, 1, Action::Publish, T0 + 1)
        .await
        .unwrap();
    assert_eq!(
        (public.status, public.publish_at_us),
        (Status::Published, Some(T0 + 1))
    );
    let pro = p
        .apply(&pro.id, 1, Action::Schedule { at_us: T0 + HOUR }, T0 + 2)
        .await
        .unwrap();
    assert_eq!(pro.status, Status::Scheduled);

    // Before the scheduled date: the public article only, for everyone.
    let now = T0 + 10;
    assert_eq!(
        titles(&p, &query(ANONYMOUS, now, "", None)).await,
        ["Vos droits de patient"]
    );
    assert_eq!(
        titles(&p, &query(MEMBER, now, "", None)).await,
        ["Vos droits de patient"]
    );
    // From the date on, with nothing run in between: signed-in readers get both, newest first.
    let later = T0 + HOUR;
    assert_eq!(
        titles(&p, &query(MEMBER, later, "", None)).await,
        ["Parcours MRC", "Vos droits de patient"]
    );
    assert_eq!(
        titles(&p, &query(ANONYMOUS, later, "", None)).await,
        ["Vos droits de patient"]
    );
    let only_pro = ListQuery {
        audiences: vec![Audience::Professionals],
        ..query(MEMBER, later, "", None)
    };
    assert_eq!(titles(&p, &only_pro).await, ["Parcours MRC"]);
    let pro_for_anonymous = ListQuery {
        audiences: vec![Audience::Professionals],
        ..query(ANONYMOUS, later, "", None)
    };
    assert!(titles(&p, &pro_for_anonymous).await.is_empty());
    // The feed: public and live only.
    let feed = p.feed(later, 20).await.unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].id, public.id);

    // Withdrawn: out of lists and feed, still found by slug (410 for readers).
    let withdrawn = p
        .apply(&public.id, public.version, Action::Withdraw, later + 1)
        .await
        .unwrap();
    assert_eq!(withdrawn.status, Status::Withdrawn);
    assert_eq!(withdrawn.withdrawn_at_us, Some(later + 1));
    assert!(
        titles(&p, &query(ANONYMOUS, later + 2, "", None))
            .await
            .is_empty()
    );
    assert!(p.feed(later + 2, 20).await.unwrap().is_empty());
    let by_slug = p.by_slug("vos-droits-de-patient").await.unwrap().unwrap();
    assert_eq!(visibility(&by_slug, ANONYMOUS, later + 2), Visibility::Gone);
    let pro_now = p.by_slug(&pro.slug).await.unwrap().unwrap();
    assert_eq!(visibility(&pro_now, ANONYMOUS, later), Visibility::Hidden);
    assert_eq!(visibility(&pro_now, MEMBER, later), Visibility::Visible);
    assert_eq!(visibility(&pro_now, MEMBER, later - 1), Visibility::Hidden);
    assert!(p.by_slug("inconnu").await.unwrap().is_none());

    // Every article, whatever its status, for the authoring list; newest change first.
    let all = p.all(100).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, public.id);

    // A stale form is refused, on edits and on steps; the current version is told.
    let e = p
        .update(&public.id, 1, &input("Autre", "x", "public", ""), later + 3)
        .await
        .unwrap_err();
    assert!(
        matches!(e, PublicationError::Conflict(v) if v == withdrawn.version),
        "{e}"
    );
    let e = p
        .apply(&pro.id, 1, Action::Withdraw, later + 3)
        .await
        .unwrap_err();
    assert!(matches!(e, PublicationError::Conflict(2)), "{e}");
    let e = p
        .apply(
            "00000000-0000-4000-8000-000000000000",
            1,
            Action::Publish,
            later,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, PublicationError::NotFound(_)));
    // A refused step changes nothing.
    let e = p
        .apply(
            &withdrawn.id,
            withdrawn.version,
            Action::Withdraw,
            later + 3,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, PublicationError::Transition { .. }));
    assert_eq!(
        p.get(&withdrawn.id).await.unwrap().unwrap().version,
        withdrawn.version
    );

    // An edit keeps the slug, replaces tags and terms, bumps the version.
    let edited = p
        .update(
            &withdrawn.id,
            withdrawn.version,
            &input(
                "Droits : le guide",
                "Accès au dossier médical.",
                "public",
                "Guide, Accès",
            ),
            later + 4,
        )
        .await
        .unwrap();
    assert_eq!(edited.slug, "vos-droits-de-patient");
    assert_eq!(edited.version, withdrawn.version + 1);
    assert_eq!(
        edited
            .tags
            .iter()
            .map(|t| t.label.as_str())
            .collect::<Vec<_>>(),
        ["Guide", "Accès"]
    );
    let republished = p
        .apply(&edited.id, edited.version, Action::Publish, later + 5)
        .await
        .unwrap();
    let now = later + 6;
    assert_eq!(
        titles(&p, &query(ANONYMOUS, now, "medical", None)).await,
        ["Droits : le guide"]
    );
    assert!(
        titles(&p, &query(ANONYMOUS, now, "consulter", None))
            .await
            .is_empty(),
        "old words gone"
    );
    assert!(
        titles(&p, &query(ANONYMOUS, now, "", Some("droits-des-patients")))
            .await
            .is_empty()
    );
    assert_eq!(
        titles(&p, &query(ANONYMOUS, now, "", Some("acces"))).await,
        ["Droits : le guide"]
    );
    assert_eq!(republished.publish_at_us, Some(later + 5));
}

async fn slugs_search_and_paging(backend: Backend) {
    let (_dir, db) = fresh_database(backend).await;
    let p = Publications::new(db);
    let articles = [
        (
            "Maladie rénale chronique : le parcours",
            "Le **débit de filtration glomérulaire** estimé (DFGe) classe les stades.",
            "public",
            "Néphrologie, Prévention",
        ),
        (
            "Maladie rénale chronique : le parcours",
            "Deuxième article au même titre, sur l'hémodialyse.",
            "public",
            "Néphrologie",
        ),
        (
            "Vaccination en Bretagne",
            "Le calendrier vaccinal 2026.",
            "public",
            "Prévention",
        ),
        ("Œdème et cœur", "Insuffisance cardiaque.", "public", ""),
        (
            "Réservé",
            "Protocole rénal interne.",
            "professionals",
            "Néphrologie",
        ),
    ];
    let mut ids = Vec::new();
    for (i, (title, body, audience, tags)) in articles.iter().enumerate() {
        let a = p
            .create(
                &input(title, body, audience, tags),
                "ed",
                "Éd",
                T0 + i as i64,
            )
            .await
            .unwrap();
        let a = p
            .apply(&a.id, a.version, Action::Publish, T0 + 100 + i as i64)
            .await
            .unwrap();
        ids.push(a);
    }
    assert_eq!(ids[0].slug, "maladie-renale-chronique-le-parcours");
    assert_eq!(ids[1].slug, "maladie-renale-chronique-le-parcours-2");
    assert_eq!(ids[3].slug, "oedeme-et-coeur");
    let now = T0 + 1_000;

    // Accent- and case-insensitive, by word beginnings, every word required.
    let cases: [(&str, &[&str]); 10] = [
        (
            "renale",
            &[
                "Maladie rénale chronique : le parcours",
                "Maladie rénale chronique : le parcours",
            ],
        ),
        (
            "RÉNALE hemodialyse",
            &["Maladie rénale chronique : le parcours"],
        ),
        ("hémo", &["Maladie rénale chronique : le parcours"]),
        ("glomerulaire", &["Maladie rénale chronique : le parcours"]),
        ("oedeme", &["Œdème et cœur"]),
        ("coeur insuffisance", &["Œdème et cœur"]),
        (
            "nephrologie",
            &[
                "Maladie rénale chronique : le parcours",
                "Maladie rénale chronique : le parcours",
            ],
        ),
        (
            "prevention",
            &[
                "Vaccination en Bretagne",
                "Maladie rénale chronique : le parcours",
            ],
        ),
        ("vaccin dialyse", &[]),
        (
            "le la des",
            &[
                "Œdème et cœur",
                "Vaccination en Bretagne",
                "Maladie rénale chronique : le parcours",
                "Maladie rénale chronique : le parcours",
            ],
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            titles(&p, &query(ANONYMOUS, now, text, None)).await,
            expected,
            "{text}"
        );
    }
    // Professionals' words are found by signed-in readers only.
    assert!(
        titles(&p, &query(ANONYMOUS, now, "protocole", None))
            .await
            .is_empty()
    );
    assert_eq!(
        titles(&p, &query(MEMBER, now, "protocole", None)).await,
        ["Réservé"]
    );
    // Tag filter, combined with words.
    assert_eq!(
        titles(&p, &query(ANONYMOUS, now, "", Some("nephrologie")))
            .await
            .len(),
        2
    );
    assert_eq!(
        titles(&p, &query(MEMBER, now, "", Some("nephrologie")))
            .await
            .len(),
        3
    );
    assert_eq!(
        titles(&p, &query(ANONYMOUS, now, "calendrier", Some("prevention"))).await,
        ["Vaccination en Bretagne"]
    );
    // Tags with counts, per viewer.
    let tags = p.tags(ANONYMOUS, &[], now).await.unwrap();
    let counts: Vec<(&str, i64)> = tags.iter().map(|(t, n)| (t.label.as_str(), *n)).collect();
    assert_eq!(counts, [("Néphrologie", 2), ("Prévention", 2)]);
    let tags = p.tags(MEMBER, &[], now).await.unwrap();
    assert_eq!(tags[0].1, 3);

    // Paging: total and slices, newest first.
    let mut q = query(MEMBER, now, "", None);
    q.limit = 2;
    let first = p.list(&q).await.unwrap();
    assert_eq!(first.total, 5);
    assert_eq!(first.articles.len(), 2);
    assert_eq!(first.articles[0].title, "Réservé");
    q.offset = 4;
    let last = p.list(&q).await.unwrap();
    assert_eq!(last.articles.len(), 1);
    assert_eq!(last.articles[0].id, ids[0].id);
    q.offset = 10;
    assert!(p.list(&q).await.unwrap().articles.is_empty());
}

#[tokio::test]
async fn lifecycle_on_sqlite() {
    lifecycle(Backend::Sqlite).await;
}

#[tokio::test]
async fn lifecycle_on_postgres() {
    lifecycle(Backend::Postgres).await;
}

#[tokio::test]
async fn slugs_search_and_paging_on_sqlite() {
    slugs_search_and_paging(Backend::Sqlite).await;
}

#[tokio::test]
async fn slugs_search_and_paging_on_postgres() {
    slugs_search_and_paging(Backend::Postgres).await;
}
