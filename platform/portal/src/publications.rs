//! The publication pages: the public list and article pages (no sign-in), the professionals'
//! section, and the editors' pages (list with statuses, the article form with its preview and
//! lifecycle buttons). The server prepares display text and *sanitised* article HTML (the only
//! values written with `|safe`); the templates only lay them out.

use askama::Template;

use crate::{Texts, UserBar};

/// A tag as a filter link.
#[derive(Debug, Clone)]
pub struct TagLink {
    pub label: String,
    pub url: String,
    /// How many articles carry it (0: not shown).
    pub count: i64,
    /// The list is filtered on it.
    pub current: bool,
}

/// One article in a list.
#[derive(Debug, Clone)]
pub struct ArticleCard {
    pub title: String,
    pub url: String,
    pub summary: String,
    /// Publication date for people, and as `YYYY-MM-DD` for `<time datetime>`.
    pub date: String,
    pub date_iso: String,
    /// Marks a professionals' article in the professionals' list.
    pub audience: Option<&'static str>,
    pub tags: Vec<TagLink>,
}

/// A reading list: the public one (`/publications`) or the professionals' (`/pro/publications`).
#[derive(Template)]
#[template(path = "publications.html")]
pub struct PublicationListPage<'a> {
    pub t: &'a Texts,
    pub pb: &'a PublicationTexts,
    pub user: Option<UserBar>,
    pub title: &'static str,
    pub intro: &'static str,
    /// Where the search form sends (the list's own path).
    pub action: String,
    pub text: String,
    pub tag: String,
    pub tags: Vec<TagLink>,
    /// The list without a tag filter.
    pub all_url: String,
    pub cards: Vec<ArticleCard>,
    /// A search or tag filter is applied.
    pub filtered: bool,
    pub range: String,
    pub prev: Option<String>,
    pub next: Option<String>,
    /// The public list links to the Atom feed.
    pub feed: bool,
    /// Link to the other section (the professionals' from the public list and back).
    pub other_section: Option<(String, &'static str)>,
    /// The viewer may write articles.
    pub editor: bool,
}

/// One article as readers (or an editor previewing it) see it.
#[derive(Template)]
#[template(path = "publication.html")]
pub struct PublicationPage<'a> {
    pub t: &'a Texts,
    pub pb: &'a PublicationTexts,
    pub user: Option<UserBar>,
    pub title: String,
    /// Sanitised HTML (`megalis_publications::markdown::render`).
    pub body_html: String,
    pub author: String,
    pub date: String,
    pub date_iso: String,
    /// Last change, when after the publication.
    pub updated: Option<String>,
    pub tags: Vec<TagLink>,
    /// The professionals' notice, for their articles.
    pub audience: Option<&'static str>,
    pub back: String,
    /// Shown to an editor before publication: a banner says so.
    pub preview: Option<String>,
    pub editor_link: Option<String>,
}

/// One line of the editors' list.
#[derive(Debug, Clone)]
pub struct ManageRow {
    pub id: String,
    pub title: String,
    pub edit_url: String,
    /// `draft`, `scheduled`, `published`, `withdrawn` (CSS class suffix too).
    pub status_code: &'static str,
    pub status: &'static str,
    pub audience: &'static str,
    /// The publication date, or the scheduled one, as text.
    pub when: String,
    pub updated: String,
    pub author: String,
}

#[derive(Template)]
#[template(path = "publications_manage.html")]
pub struct ManageListPage<'a> {
    pub t: &'a Texts,
    pub pb: &'a PublicationTexts,
    pub user: Option<UserBar>,
    pub rows: Vec<ManageRow>,
    pub notice: Option<String>,
}

/// The article form's values, given back when it is shown again.
#[derive(Debug, Clone, Default)]
pub struct EditForm {
    pub title: String,
    pub body: String,
    /// `public` or `professionals`.
    pub audience: String,
    pub tags: String,
    /// The version the form was loaded with (0 for a new article).
    pub version: i64,
}

/// A lifecycle button the article's status allows.
#[derive(Debug, Clone)]
pub struct StepButton {
    /// `publish`, `withdraw`, `draft`: the form posts to `{action}/{step}`.
    pub step: &'static str,
    pub label: &'static str,
    pub help: &'static str,
}

#[derive(Template)]
#[template(path = "publication_edit.html")]
pub struct EditPage<'a> {
    pub t: &'a Texts,
    pub pb: &'a PublicationTexts,
    pub user: Option<UserBar>,
    pub csrf: String,
    /// `None` for a new article.
    pub id: Option<String>,
    /// Where the form posts (`/publications/manage/new` or `/publications/manage/{id}`).
    pub action: String,
    pub form: EditForm,
    /// The rendered, sanitised body when a preview was asked for or the article exists.
    pub preview_html: Option<String>,
    pub error: Option<String>,
    pub notice: Option<String>,
    pub status_code: &'static str,
    pub status: &'static str,
    /// Explains the status: when it goes out, since when it is out…
    pub status_detail: String,
    /// The reader's address of the article (published ones) or its preview.
    pub view_url: Option<String>,
    pub steps: Vec<StepButton>,
    /// The article may be scheduled; the value of the date field.
    pub schedule: Option<String>,
}

/// Texts of the publication pages, French first.
pub struct PublicationTexts {
    pub lang: &'static str,
    pub public_title: &'static str,
    pub public_intro: &'static str,
    pub pro_title: &'static str,
    pub pro_intro: &'static str,
    pub pro_link: &'static str,
    pub public_link: &'static str,
    pub search_label: &'static str,
    pub search_help: &'static str,
    pub search_button: &'static str,
    pub tags_title: &'static str,
    pub all_tags: &'static str,
    pub no_results: &'static str,
    pub empty: &'static str,
    pub pagination: &'static str,
    pub prev_page: &'static str,
    pub next_page: &'static str,
    pub feed_link: &'static str,
    pub published_on: &'static str,
    pub updated_on: &'static str,
    pub by: &'static str,
    pub tags_label: &'static str,
    pub back: &'static str,
    pub professionals_badge: &'static str,
    pub professionals_notice: &'static str,
    pub manage_link: &'static str,
    pub manage_title: &'static str,
    pub manage_help: &'static str,
    pub manage_caption: &'static str,
    pub manage_empty: &'static str,
    pub new_article: &'static str,
    pub edit_title: &'static str,
    pub new_title: &'static str,
    pub title_label: &'static str,
    pub audience_label: &'static str,
    pub audience_public: &'static str,
    pub audience_professionals: &'static str,
    pub tags_field: &'static str,
    pub tags_help: &'static str,
    pub body_label: &'static str,
    pub body_help: &'static str,
    pub preview_button: &'static str,
    pub save_button: &'static str,
    pub preview_title: &'static str,
    pub preview_banner: &'static str,
    pub status_label: &'static str,
    pub statuses: [&'static str; 4],
    pub when_label: &'static str,
    pub updated_label: &'static str,
    pub author_label: &'static str,
    pub actions_label: &'static str,
    pub edit: &'static str,
    pub view: &'static str,
    pub lifecycle_title: &'static str,
    pub publish_button: &'static str,
    pub publish_help: &'static str,
    pub schedule_label: &'static str,
    pub schedule_help: &'static str,
    pub schedule_button: &'static str,
    pub withdraw_button: &'static str,
    pub withdraw_help: &'static str,
    pub draft_button: &'static str,
    pub draft_help: &'static str,
    pub done_created: &'static str,
    pub done_saved: &'static str,
    pub done_scheduled: &'static str,
    pub done_published: &'static str,
    pub done_withdrawn: &'static str,
    pub done_draft: &'static str,
    pub detail_draft: &'static str,
    pub detail_scheduled: &'static str,
    pub detail_published: &'static str,
    pub detail_withdrawn: &'static str,
    pub feed_title: &'static str,
    pub feed_subtitle: &'static str,
}

impl PublicationTexts {
    pub fn of(t: &Texts) -> &'static PublicationTexts {
        if t.lang == "en" {
            &PUBLICATIONS_EN
        } else {
            &PUBLICATIONS_FR
        }
    }

    /// "Articles 1 to 10 of 12".
    pub fn range(&self, first: usize, last: usize, total: usize) -> String {
        if self.lang == "en" {
            format!("Articles {first} to {last} of {total}")
        } else {
            format!("Articles {first} à {last} sur {total}")
        }
    }

    /// The status's name: draft, scheduled, published, withdrawn.
    pub fn status(&self, code: &str) -> &'static str {
        match code {
            "draft" => self.statuses[0],
            "scheduled" => self.statuses[1],
            "published" => self.statuses[2],
            _ => self.statuses[3],
        }
    }

    pub fn audience(&self, code: &str) -> &'static str {
        if code == "professionals" {
            self.audience_professionals
        } else {
            self.audience_public
        }
    }
}

pub static PUBLICATIONS_FR: PublicationTexts = PublicationTexts {
    lang: "fr",
    public_title: "Publications",
    public_intro: "Informations, articles et conseils de la plateforme régionale de e-santé de Bretagne.",
    pro_title: "Publications pour les professionnels",
    pro_intro: "Articles réservés aux professionnels connectés, avec les publications destinées au public.",
    pro_link: "Espace professionnels",
    public_link: "Publications pour le public",
    search_label: "Rechercher dans les articles",
    search_help: "Titre, texte ou mot-clé ; les accents et les majuscules ne comptent pas.",
    search_button: "Rechercher",
    tags_title: "Mots-clés",
    all_tags: "Tous les articles",
    no_results: "Aucun article ne correspond à cette recherche.",
    empty: "Aucun article n'est publié pour le moment.",
    pagination: "Pages de résultats",
    prev_page: "Articles plus récents",
    next_page: "Articles plus anciens",
    feed_link: "Fil Atom des publications",
    published_on: "Publié le",
    updated_on: "mis à jour le",
    by: "par",
    tags_label: "Mots-clés :",
    back: "Toutes les publications",
    professionals_badge: "Professionnels",
    professionals_notice: "Article réservé aux professionnels de santé connectés.",
    manage_link: "Rédaction",
    manage_title: "Rédaction des publications",
    manage_help: "Tous les articles, quel que soit leur état. Un article programmé paraît de lui-même à la date choisie.",
    manage_caption: "Articles par date de dernière modification",
    manage_empty: "Aucun article pour le moment.",
    new_article: "Écrire un article",
    edit_title: "Modifier l'article",
    new_title: "Nouvel article",
    title_label: "Titre",
    audience_label: "Public visé",
    audience_public: "Tout public (site public et fil Atom)",
    audience_professionals: "Professionnels connectés seulement",
    tags_field: "Mots-clés",
    tags_help: "Séparés par des virgules, par exemple : droits des patients, néphrologie.",
    body_label: "Texte (Markdown)",
    body_help: "Markdown : # Intertitre, **gras**, *italique*, - liste, [lien](https://…). Le HTML est filtré : scripts et attributs dangereux sont retirés.",
    preview_button: "Aperçu",
    save_button: "Enregistrer",
    preview_title: "Aperçu",
    preview_banner: "Aperçu : cet article n'est pas visible des lecteurs.",
    status_label: "État",
    statuses: ["Brouillon", "Programmé", "Publié", "Retiré"],
    when_label: "Parution",
    updated_label: "Dernière modification",
    author_label: "Auteur",
    actions_label: "Actions",
    edit: "Modifier",
    view: "Voir l'article",
    lifecycle_title: "Publication",
    publish_button: "Publier maintenant",
    publish_help: "L'article devient visible tout de suite.",
    schedule_label: "Date et heure de parution (heure de Paris)",
    schedule_help: "L'article paraîtra de lui-même à cette date.",
    schedule_button: "Programmer",
    withdraw_button: "Retirer l'article",
    withdraw_help: "L'article n'est plus visible ; son adresse répond « retiré » (410).",
    draft_button: "Repasser en brouillon",
    draft_help: "Annule la programmation, ou permet de retravailler un article retiré.",
    done_created: "Brouillon créé.",
    done_saved: "Modifications enregistrées.",
    done_scheduled: "Article programmé.",
    done_published: "Article publié.",
    done_withdrawn: "Article retiré.",
    done_draft: "Article repassé en brouillon.",
    detail_draft: "Visible seulement par la rédaction.",
    detail_scheduled: "Paraîtra le",
    detail_published: "Publié le",
    detail_withdrawn: "Retiré le",
    feed_title: "Megalis — publications",
    feed_subtitle: "Informations et conseils de la plateforme régionale de e-santé de Bretagne",
};

pub static PUBLICATIONS_EN: PublicationTexts = PublicationTexts {
    lang: "en",
    public_title: "Publications",
    public_intro: "Information, articles and advice from the regional e-health platform of Brittany.",
    pro_title: "Publications for professionals",
    pro_intro: "Articles for signed-in professionals only, with the publications for the public.",
    pro_link: "Professionals' section",
    public_link: "Publications for the public",
    search_label: "Search the articles",
    search_help: "Title, text or keyword; accents and capitals do not matter.",
    search_button: "Search",
    tags_title: "Keywords",
    all_tags: "All articles",
    no_results: "No article matches this search.",
    empty: "No article is published yet.",
    pagination: "Result pages",
    prev_page: "Newer articles",
    next_page: "Older articles",
    feed_link: "Atom feed of the publications",
    published_on: "Published on",
    updated_on: "updated on",
    by: "by",
    tags_label: "Keywords:",
    back: "All publications",
    professionals_badge: "Professionals",
    professionals_notice: "Article for signed-in health professionals only.",
    manage_link: "Editorial",
    manage_title: "Editing publications",
    manage_help: "Every article, whatever its status. A scheduled article goes out by itself at its date.",
    manage_caption: "Articles by last change",
    manage_empty: "No article yet.",
    new_article: "Write an article",
    edit_title: "Edit the article",
    new_title: "New article",
    title_label: "Title",
    audience_label: "Audience",
    audience_public: "Everyone (public site and Atom feed)",
    audience_professionals: "Signed-in professionals only",
    tags_field: "Keywords",
    tags_help: "Separated by commas, for example: patient rights, nephrology.",
    body_label: "Text (Markdown)",
    body_help: "Markdown: # Heading, **bold**, *italic*, - list, [link](https://…). HTML is filtered: scripts and dangerous attributes are removed.",
    preview_button: "Preview",
    save_button: "Save",
    preview_title: "Preview",
    preview_banner: "Preview: readers cannot see this article.",
    status_label: "Status",
    statuses: ["Draft", "Scheduled", "Published", "Withdrawn"],
    when_label: "Publication",
    updated_label: "Last change",
    author_label: "Author",
    actions_label: "Actions",
    edit: "Edit",
    view: "View the article",
    lifecycle_title: "Publishing",
    publish_button: "Publish now",
    publish_help: "The article becomes visible at once.",
    schedule_label: "Publication date and time (Paris time)",
    schedule_help: "The article will go out by itself at that time.",
    schedule_button: "Schedule",
    withdraw_button: "Withdraw the article",
    withdraw_help: "The article is no longer visible; its address answers \"withdrawn\" (410).",
    draft_button: "Back to draft",
    draft_help: "Cancels the schedule, or lets you rework a withdrawn article.",
    done_created: "Draft created.",
    done_saved: "Changes saved.",
    done_scheduled: "Article scheduled.",
    done_published: "Article published.",
    done_withdrawn: "Article withdrawn.",
    done_draft: "Article back to draft.",
    detail_draft: "Visible to the editors only.",
    detail_scheduled: "Goes out on",
    detail_published: "Published on",
    detail_withdrawn: "Withdrawn on",
    feed_title: "Megalis — publications",
    feed_subtitle: "Information and advice from the regional e-health platform of Brittany",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Lang;

    fn h1_count(html: &str) -> usize {
        html.matches("<h1").count()
    }

    fn labelled(html: &str, id: &str) {
        assert!(html.contains(&format!("for=\"{id}\"")), "label for {id}");
        assert!(html.contains(&format!("id=\"{id}\"")), "field {id}");
    }

    #[test]
    fn list_page_is_accessible_and_escapes() {
        for lang in [Lang::Fr, Lang::En] {
            let t = Texts::of(lang);
            let pb = PublicationTexts::of(t);
            let html = PublicationListPage {
                t,
                pb,
                user: None,
                title: pb.public_title,
                intro: pb.public_intro,
                action: "/publications".into(),
                text: "<script>x</script>".into(),
                tag: "droits".into(),
                tags: vec![TagLink {
                    label: "Droits <b>".into(),
                    url: "/publications?tag=droits".into(),
                    count: 2,
                    current: true,
                }],
                all_url: "/publications?lang=fr".into(),
                cards: vec![ArticleCard {
                    title: "Vos <em>droits</em>".into(),
                    url: "/publications/vos-droits?lang=fr".into(),
                    summary: "Résumé & plus".into(),
                    date: "1er mars 2026".into(),
                    date_iso: "2026-03-01".into(),
                    audience: None,
                    tags: vec![],
                }],
                filtered: true,
                range: pb.range(1, 1, 1),
                prev: None,
                next: Some("/publications?page=2".into()),
                feed: true,
                other_section: Some(("/pro/publications".into(), pb.pro_link)),
                editor: false,
            }
            .render()
            .unwrap();
            assert!(html.contains(&format!("<html lang=\"{}\">", lang.code())));
            assert_eq!(h1_count(&html), 1);
            assert!(html.contains("href=\"#contenu\""), "skip link");
            labelled(&html, "q");
            assert!(!html.contains("<script>x"), "search text escaped");
            assert!(!html.contains("<em>droits"), "titles escaped");
            assert!(!html.contains("Droits <b>"), "tags escaped");
            assert!(html.contains("aria-current=\"page\""), "current tag marked");
            assert!(html.contains("href=\"/publications/feed.atom\""));
            assert!(html.contains("rel=\"next\""));
            assert!(html.contains("<time datetime=\"2026-03-01\">1er mars 2026</time>"));
            assert!(
                !html.contains("manage-link"),
                "no editors' link for readers"
            );
            assert!(!html.contains(" style="), "no inline style (CSP)");
        }
    }

    #[test]
    fn article_page_shows_sanitised_html_as_is_and_everything_else_escaped() {
        let t = Texts::of(Lang::Fr);
        let pb = PublicationTexts::of(t);
        let html = PublicationPage {
            t,
            pb,
            user: None,
            title: "Titre <i>".into(),
            body_html: "<h2>Intertitre</h2>\n<p>Texte</p>".into(),
            author: "Rédaction <x>".into(),
            date: "1er mars 2026".into(),
            date_iso: "2026-03-01".into(),
            updated: None,
            tags: vec![],
            audience: Some(pb.professionals_notice),
            back: "/pro/publications".into(),
            preview: Some(pb.preview_banner.into()),
            editor_link: None,
        }
        .render()
        .unwrap();
        assert_eq!(h1_count(&html), 1);
        assert!(
            html.contains("<h1>Titre &#60;i&#62;</h1>")
                || html.contains("<h1>Titre &lt;i&gt;</h1>"),
            "{html}"
        );
        assert!(
            html.contains("<h2>Intertitre</h2>"),
            "the renderer's HTML is kept"
        );
        assert!(!html.contains("Rédaction <x>"));
        assert!(html.contains("id=\"preview-banner\""));
        assert!(html.contains("id=\"audience-notice\""));
    }

    #[test]
    fn edit_page_labels_every_field_and_carries_the_csrf_token() {
        for lang in [Lang::Fr, Lang::En] {
            let t = Texts::of(lang);
            let pb = PublicationTexts::of(t);
            let html = EditPage {
                t,
                pb,
                user: None,
                csrf: "tok".into(),
                id: Some("abc".into()),
                action: "/publications/manage/abc".into(),
                form: EditForm {
                    title: "T".into(),
                    body: "</textarea><script>alert(1)</script>".into(),
                    audience: "professionals".into(),
                    tags: "a, b".into(),
                    version: 3,
                },
                preview_html: Some("<p>ok</p>".into()),
                error: Some("Erreur".into()),
                notice: None,
                status_code: "draft",
                status: pb.status("draft"),
                status_detail: pb.detail_draft.into(),
                view_url: None,
                steps: vec![StepButton {
                    step: "publish",
                    label: pb.publish_button,
                    help: pb.publish_help,
                }],
                schedule: Some("2026-03-01T09:00".into()),
            }
            .render()
            .unwrap();
            assert_eq!(h1_count(&html), 1);
            for id in ["title", "audience", "tags", "body", "publish_at"] {
                labelled(&html, id);
            }
            assert!(
                !html.contains("</textarea><script>"),
                "the body cannot close the textarea"
            );
            assert_eq!(
                html.matches("name=\"csrf\" value=\"tok\"").count(),
                3,
                "every form"
            );
            assert!(html.contains("name=\"version\" value=\"3\""));
            assert!(html.contains("value=\"professionals\" selected"));
            assert!(html.contains("action=\"/publications/manage/abc/publish\""));
            assert!(html.contains("action=\"/publications/manage/abc/schedule\""));
            assert!(html.contains("role=\"alert\""));
            assert!(html.contains("<p>ok</p>"), "the preview");
        }
    }

    #[test]
    fn manage_list_marks_statuses() {
        let t = Texts::of(Lang::Fr);
        let pb = PublicationTexts::of(t);
        let html = ManageListPage {
            t,
            pb,
            user: None,
            rows: vec![ManageRow {
                id: "1".into(),
                title: "A".into(),
                edit_url: "/publications/manage/1".into(),
                status_code: "scheduled",
                status: pb.status("scheduled"),
                audience: pb.audience("public"),
                when: "01/03/2026 à 09:00".into(),
                updated: "—".into(),
                author: "R".into(),
            }],
            notice: None,
        }
        .render()
        .unwrap();
        assert_eq!(h1_count(&html), 1);
        assert!(html.contains("data-status=\"scheduled\""));
        assert!(html.contains(">Programmé<"));
        assert!(html.contains("<th scope=\"col\">"), "scoped headers");
        assert!(html.contains("<caption>"));
    }
}
