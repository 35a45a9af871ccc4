//! The patient identity pages: search, a patient's identity (golden record, the hospitals'
//! records, their history, merges), the review queue of possible duplicates and the
//! confirmation pages of identity-vigilance decisions. The server prepares every value as
//! display text; the templates only lay it out.

use askama::Template;

use crate::{Texts, UserBar};

/// The search form's values, given back to refill it.
#[derive(Debug, Clone, Default)]
pub struct SearchForm {
    pub family: String,
    pub given: String,
    pub birth_date: String,
    /// `male`, `female`, `unknown` or empty.
    pub sex: String,
    pub identifier: String,
}

/// An identity status or attribute with its plain-language explanation.
#[derive(Debug, Clone)]
pub struct Badge {
    /// `PROV`, `QUAL`, `DOUTE`…: also the CSS class suffix.
    pub code: &'static str,
    pub label: &'static str,
    pub help: &'static str,
}

/// One line of the search results.
#[derive(Debug, Clone)]
pub struct PatientRow {
    pub regional_id: String,
    pub birth_name: String,
    pub used_name: String,
    pub first_names: String,
    pub birth_date: String,
    pub sex: String,
    pub status: Badge,
    pub attributes: Vec<Badge>,
}

#[derive(Template)]
#[template(path = "patients.html")]
pub struct PatientSearchPage<'a> {
    pub t: &'a Texts,
    pub pt: &'a PatientTexts,
    pub user: Option<UserBar>,
    pub form: SearchForm,
    /// A search was made (at least one criterion).
    pub searched: bool,
    pub range: String,
    pub rows: Vec<PatientRow>,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub error: Option<String>,
}

/// A labelled value.
#[derive(Debug, Clone)]
pub struct Field {
    pub label: &'static str,
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct ConflictView {
    pub field: &'static str,
    /// Each value with the establishments that send it; the first survives.
    pub values: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct VersionView {
    pub version: i64,
    pub change: String,
    pub changed_at: String,
    pub regional_id: String,
    pub summary: String,
    pub status: &'static str,
}

#[derive(Debug, Clone)]
pub struct SourceView {
    pub authority: String,
    pub authority_oid: String,
    pub local_id: String,
    pub status: Badge,
    pub attributes: Vec<Badge>,
    pub updated: String,
    pub fields: Vec<Field>,
    pub versions: Vec<VersionView>,
}

#[derive(Debug, Clone)]
pub struct MergeView {
    pub id: i64,
    pub survivor: String,
    pub merged: String,
    pub moved: String,
    pub when: String,
    pub by: String,
    /// When it was undone, if it was.
    pub undone: Option<String>,
}

#[derive(Template)]
#[template(path = "patient.html")]
pub struct PatientDetailPage<'a> {
    pub t: &'a Texts,
    pub pt: &'a PatientTexts,
    pub user: Option<UserBar>,
    pub csrf: String,
    pub regional_id: String,
    pub merged_into: Option<String>,
    pub fields: Vec<Field>,
    pub status: Badge,
    pub attributes: Vec<Badge>,
    /// The INS, only for a qualified identity.
    pub ins: Option<String>,
    /// An INS is known but may not be shown (the identity is not qualified).
    pub ins_withheld: bool,
    pub conflicts: Vec<ConflictView>,
    pub sources: Vec<SourceView>,
    pub merges: Vec<MergeView>,
    /// Identity-vigilance staff: merge and unmerge.
    pub staff: bool,
    pub notice: Option<String>,
    /// Applications (plugins) the user may open for this patient.
    pub apps: Vec<crate::Tile>,
}

/// One line of the review queue.
#[derive(Debug, Clone)]
pub struct ReviewRow {
    pub id: i64,
    pub source: String,
    pub source_identity: String,
    pub candidate: String,
    pub candidate_identity: String,
    pub score: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "identity_reviews.html")]
pub struct ReviewListPage<'a> {
    pub t: &'a Texts,
    pub pt: &'a PatientTexts,
    pub user: Option<UserBar>,
    pub rows: Vec<ReviewRow>,
    pub open_count: i64,
    pub notice: Option<String>,
}

/// One line of a side-by-side comparison.
#[derive(Debug, Clone)]
pub struct CompareRow {
    pub label: &'static str,
    pub left: String,
    pub right: String,
    pub differs: bool,
    /// How the matcher compared the field, when it did.
    pub comparison: String,
}

/// A side-by-side comparison of two identities.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub caption: String,
    pub left_title: String,
    pub left_link: String,
    pub right_title: String,
    pub right_link: String,
    pub rows: Vec<CompareRow>,
}

#[derive(Template)]
#[template(path = "identity_review.html")]
pub struct ReviewDetailPage<'a> {
    pub t: &'a Texts,
    pub pt: &'a PatientTexts,
    pub user: Option<UserBar>,
    pub id: i64,
    pub open: bool,
    pub state: String,
    pub score: String,
    pub reason: String,
    pub comparison: Comparison,
    /// The candidate was merged into another patient since the task was opened.
    pub note: Option<String>,
}

/// A confirmation step before an identity decision: what will happen, the two identities side
/// by side, and the one form that does it.
#[derive(Template)]
#[template(path = "identity_confirm.html")]
pub struct ConfirmPage<'a> {
    pub t: &'a Texts,
    pub pt: &'a PatientTexts,
    pub user: Option<UserBar>,
    pub csrf: String,
    pub title: &'static str,
    pub intro: &'static str,
    pub comparison: Comparison,
    pub extra: Vec<Field>,
    pub action: String,
    pub hidden: Vec<(&'static str, String)>,
    pub button: &'static str,
    pub cancel: String,
    /// Another way round (merge: keep the other patient instead).
    pub alternative: Option<(String, &'static str)>,
}

/// Texts of the patient identity pages, French first.
pub struct PatientTexts {
    pub lang: &'static str,
    pub search_title: &'static str,
    pub search_help: &'static str,
    pub family: &'static str,
    pub given: &'static str,
    pub birth_date: &'static str,
    pub sex: &'static str,
    pub sex_any: &'static str,
    pub male: &'static str,
    pub female: &'static str,
    pub unknown: &'static str,
    pub identifier: &'static str,
    pub identifier_help: &'static str,
    pub search_button: &'static str,
    pub results_caption: &'static str,
    pub no_results: &'static str,
    pub pagination: &'static str,
    pub prev_page: &'static str,
    pub next_page: &'static str,
    pub regional_id: &'static str,
    pub birth_name: &'static str,
    pub used_name: &'static str,
    pub first_names: &'static str,
    pub used_first_name: &'static str,
    pub birthplace: &'static str,
    pub address: &'static str,
    pub telecom: &'static str,
    pub status: &'static str,
    pub attributes: &'static str,
    pub none: &'static str,
    pub ins: &'static str,
    pub ins_withheld: &'static str,
    pub patient_title: &'static str,
    pub merged_notice: &'static str,
    pub golden_title: &'static str,
    pub golden_help: &'static str,
    pub conflicts_title: &'static str,
    pub conflicts_help: &'static str,
    pub conflict_field: &'static str,
    pub conflict_values: &'static str,
    pub sources_title: &'static str,
    pub authority: &'static str,
    pub ipp: &'static str,
    pub last_update: &'static str,
    pub history: &'static str,
    pub version: &'static str,
    pub change: &'static str,
    pub date: &'static str,
    pub identity: &'static str,
    pub merges_title: &'static str,
    pub merge_number: &'static str,
    pub survivor: &'static str,
    pub merged: &'static str,
    pub moved: &'static str,
    pub by: &'static str,
    pub undone: &'static str,
    pub active_merge: &'static str,
    pub unmerge: &'static str,
    pub no_merges: &'static str,
    pub merge_title: &'static str,
    pub merge_help: &'static str,
    pub other_id: &'static str,
    pub merge_preview: &'static str,
    pub confirm_merge_title: &'static str,
    pub confirm_merge_intro: &'static str,
    pub confirm_merge_button: &'static str,
    pub swap: &'static str,
    pub cancel: &'static str,
    pub confirm_unmerge_title: &'static str,
    pub confirm_unmerge_intro: &'static str,
    pub confirm_unmerge_button: &'static str,
    pub kept: &'static str,
    pub to_merge: &'static str,
    pub reviews_title: &'static str,
    pub reviews_help: &'static str,
    pub reviews_caption: &'static str,
    pub reviews_empty: &'static str,
    pub review: &'static str,
    pub source_record: &'static str,
    pub candidate: &'static str,
    pub score: &'static str,
    pub score_help: &'static str,
    pub reason: &'static str,
    pub examine: &'static str,
    pub review_title: &'static str,
    pub field: &'static str,
    pub comparison: &'static str,
    pub differs: &'static str,
    pub decide: &'static str,
    pub same_decision: &'static str,
    pub distinct_decision: &'static str,
    pub review_closed: &'static str,
    pub state_same: &'static str,
    pub state_distinct: &'static str,
    pub confirm_same_title: &'static str,
    pub confirm_same_intro: &'static str,
    pub confirm_distinct_title: &'static str,
    pub confirm_distinct_intro: &'static str,
    pub confirm_button: &'static str,
    pub done_same: &'static str,
    pub done_distinct: &'static str,
    pub done_merged: &'static str,
    pub done_unmerged: &'static str,
    pub reason_possible: &'static str,
    pub reason_several: &'static str,
    pub candidate_merged: &'static str,
    pub back_to_queue: &'static str,
    pub open_count: &'static str,
    /// PROV, RECUP, VALI, QUAL: label and explanation.
    pub statuses: [(&'static str, &'static str); 4],
    /// DOUTE, FICTI, HOMON: label and explanation.
    pub attribute_labels: [(&'static str, &'static str); 3],
    /// Agreement levels per compared field (birth name, first names, birth date, sex,
    /// birthplace, INS), in the matcher's order; `not_given` for a value missing on a side.
    pub levels: [&'static [&'static str]; 6],
    pub not_given: &'static str,
    /// Changes in a record's history: create, link, update, merge, unmerge, rename.
    pub changes: [&'static str; 6],
}

impl PatientTexts {
    pub fn of(t: &Texts) -> &'static PatientTexts {
        if t.lang == "en" {
            &PATIENTS_EN
        } else {
            &PATIENTS_FR
        }
    }

    /// "Results 1 to 20 of 45".
    pub fn range(&self, first: usize, last: usize, total: usize) -> String {
        if self.lang == "en" {
            format!("Results {first} to {last} of {total}")
        } else {
            format!("Résultats {first} à {last} sur {total}")
        }
    }

    /// A conflict's field, as the survivorship names it.
    pub fn field_name(&self, field: &str) -> &'static str {
        match field {
            "birth name" => self.birth_name,
            "birth first names" => self.first_names,
            "birth date" => self.birth_date,
            "sex" => self.sex,
            "birthplace" => self.birthplace,
            _ => self.ins,
        }
    }

    /// The words for one agreement level of one compared field.
    pub fn level(&self, field: usize, level: u8) -> &'static str {
        self.levels
            .get(field)
            .and_then(|l| l.get(usize::from(level)))
            .copied()
            .unwrap_or(self.not_given)
    }

    /// A history change (`create`, `merge 3`…) in words.
    pub fn change(&self, change: &str) -> String {
        let (word, rest) = change.split_once(' ').unwrap_or((change, ""));
        let i = match word {
            "create" => 0,
            "link" => 1,
            "update" => 2,
            "merge" => 3,
            "unmerge" => 4,
            "rename" => 5,
            _ => return change.to_string(),
        };
        if rest.is_empty() {
            self.changes[i].to_string()
        } else {
            format!("{} n° {rest}", self.changes[i])
        }
    }
}

pub static PATIENTS_FR: PatientTexts = PatientTexts {
    lang: "fr",
    search_title: "Rechercher un patient",
    search_help: "Saisissez au moins un critère. Noms et prénoms sont cherchés par leur début, sans tenir compte des accents ni des tirets.",
    family: "Nom de naissance ou nom utilisé",
    given: "Prénom",
    birth_date: "Date de naissance",
    sex: "Sexe",
    sex_any: "Indifférent",
    male: "Masculin",
    female: "Féminin",
    unknown: "Inconnu",
    identifier: "Identifiant",
    identifier_help: "Identifiant régional (BZH…), matricule INS ou IPP d'un établissement.",
    search_button: "Rechercher",
    results_caption: "Patients trouvés",
    no_results: "Aucun patient ne correspond à ces critères.",
    pagination: "Pages de résultats",
    prev_page: "Page précédente",
    next_page: "Page suivante",
    regional_id: "Identifiant régional",
    birth_name: "Nom de naissance",
    used_name: "Nom utilisé",
    first_names: "Prénoms de naissance",
    used_first_name: "Prénom utilisé",
    birthplace: "Lieu de naissance (code INSEE)",
    address: "Adresse",
    telecom: "Téléphone",
    status: "Statut de l'identité",
    attributes: "Attributs",
    none: "aucun",
    ins: "Matricule INS",
    ins_withheld: "Non affiché : le matricule INS n'est communiqué que pour une identité qualifiée.",
    patient_title: "Identité du patient",
    merged_notice: "Ce patient a été fusionné dans le patient",
    golden_title: "Identité régionale de référence",
    golden_help: "Construite à partir des dossiers des établissements : chaque trait vient du dossier le plus sûr (statut de l'identité, puis confiance accordée à l'établissement, puis mise à jour la plus récente).",
    conflicts_title: "Divergences entre établissements",
    conflicts_help: "Ces traits diffèrent d'un établissement à l'autre. La première valeur est celle retenue ; à vérifier avec le patient ou les établissements.",
    conflict_field: "Trait",
    conflict_values: "Valeurs reçues (établissements)",
    sources_title: "Dossiers des établissements",
    authority: "Établissement",
    ipp: "IPP",
    last_update: "Dernière mise à jour",
    history: "Historique des versions",
    version: "Version",
    change: "Changement",
    date: "Date",
    identity: "Identité",
    merges_title: "Fusions",
    merge_number: "Fusion",
    survivor: "Patient conservé",
    merged: "Patient fusionné",
    moved: "Dossiers déplacés",
    by: "Par",
    undone: "Annulée le",
    active_merge: "en vigueur",
    unmerge: "Annuler la fusion",
    no_merges: "Ce patient n'a pris part à aucune fusion.",
    merge_title: "Fusionner un doublon dans ce patient",
    merge_help: "Saisissez l'identifiant régional du doublon : ses dossiers rejoindront ce patient, qui est conservé. Une page de confirmation montre les deux identités avant toute fusion.",
    other_id: "Identifiant régional du doublon",
    merge_preview: "Comparer avant de fusionner",
    confirm_merge_title: "Confirmer la fusion",
    confirm_merge_intro: "Les dossiers du patient fusionné (à droite) rejoindront le patient conservé (à gauche). La fusion est tracée et peut être annulée depuis la page du patient.",
    confirm_merge_button: "Confirmer la fusion",
    swap: "Conserver plutôt l'autre patient",
    cancel: "Annuler",
    confirm_unmerge_title: "Confirmer l'annulation de la fusion",
    confirm_unmerge_intro: "Les dossiers déplacés par cette fusion retournent au patient fusionné, qui redevient un patient actif. L'annulation est tracée.",
    confirm_unmerge_button: "Confirmer l'annulation de la fusion",
    kept: "Conservé",
    to_merge: "Fusionné",
    reviews_title: "Doublons possibles à examiner",
    reviews_help: "Chaque tâche rapproche le dossier d'un établissement d'un patient régional qui lui ressemble sans que la ressemblance suffise à un rapprochement automatique. Examinez-les une par une.",
    reviews_caption: "Tâches ouvertes, les plus anciennes d'abord",
    reviews_empty: "Aucun doublon possible en attente.",
    review: "Tâche",
    source_record: "Dossier entrant",
    candidate: "Patient candidat",
    score: "Score",
    score_help: "Score de ressemblance (Fellegi–Sunter, en bits, plus il est haut plus les identités se ressemblent). Une tâche est ouverte quand le score est entre les deux seuils ou qu'une règle d'identitovigilance demande l'avis d'une personne (trait manquant d'un côté, homonyme, prénoms proches).",
    reason: "Motif",
    examine: "Examiner",
    review_title: "Examen d'un doublon possible",
    field: "Trait",
    comparison: "Comparaison",
    differs: "Différent",
    decide: "Décision",
    same_decision: "Même patient (fusionner)",
    distinct_decision: "Patients distincts",
    review_closed: "Cette tâche est close :",
    state_same: "même patient (fusionné)",
    state_distinct: "patients distincts",
    confirm_same_title: "Confirmer : même patient",
    confirm_same_intro: "Le patient du dossier entrant (à gauche) sera fusionné dans le patient candidat (à droite). La fusion est tracée et peut être annulée depuis la page du patient.",
    confirm_distinct_title: "Confirmer : patients distincts",
    confirm_distinct_intro: "Ces deux patients sont des personnes différentes : ils ne seront plus proposés comme doublons l'un de l'autre. La décision est tracée.",
    confirm_button: "Confirmer la décision",
    done_same: "Décision enregistrée : même patient, les dossiers ont été fusionnés.",
    done_distinct: "Décision enregistrée : patients distincts.",
    done_merged: "Fusion enregistrée.",
    done_unmerged: "Fusion annulée : les dossiers sont revenus au patient fusionné.",
    reason_possible: "Ressemblance possible, à vérifier par une personne",
    reason_several: "Plusieurs patients régionaux correspondent à ce dossier",
    candidate_merged: "Le patient candidat a été fusionné depuis dans le patient",
    back_to_queue: "Retour aux doublons possibles",
    open_count: "Tâches ouvertes :",
    statuses: [
        (
            "Provisoire",
            "Identité provisoire : ni contrôlée sur une pièce d'identité, ni récupérée auprès du téléservice INSi.",
        ),
        (
            "Récupérée",
            "Identité récupérée : traits et matricule INS obtenus du téléservice INSi, sans contrôle d'une pièce d'identité.",
        ),
        (
            "Validée",
            "Identité validée : contrôlée sur une pièce d'identité, matricule INS non récupéré.",
        ),
        (
            "Qualifiée",
            "Identité qualifiée : contrôlée sur une pièce d'identité et matricule INS récupéré auprès de l'INSi ; l'INS peut être partagé.",
        ),
    ],
    attribute_labels: [
        (
            "Douteuse",
            "Identité douteuse : un doute existe sur l'identité déclarée ; à vérifier avant tout échange.",
        ),
        (
            "Fictive",
            "Identité fictive (soins sous anonymat, tests) : jamais rapprochée ni fusionnée.",
        ),
        (
            "Homonyme",
            "Homonyme connu : un rapprochement ne se fait qu'après vérification par une personne.",
        ),
    ],
    levels: [
        &[
            "identique",
            "même prononciation",
            "orthographe proche",
            "nom utilisé saisi comme nom de naissance",
            "différent",
        ],
        &[
            "identiques",
            "même premier prénom, liste abrégée",
            "même premier prénom, autres prénoms différents",
            "premiers prénoms proches",
            "un prénom en commun",
            "différents",
        ],
        &[
            "identique",
            "jour et mois inversés",
            "un chiffre diffère",
            "différente",
        ],
        &["identique", "différent"],
        &["identique", "même département", "différent"],
        &["identique", "différent"],
    ],
    not_given: "non renseigné",
    changes: [
        "création",
        "rapprochement automatique",
        "mise à jour",
        "fusion",
        "annulation de la fusion",
        "changement d'IPP",
    ],
};

pub static PATIENTS_EN: PatientTexts = PatientTexts {
    lang: "en",
    search_title: "Find a patient",
    search_help: "Enter at least one criterion. Names are matched by their beginning, ignoring accents and hyphens.",
    family: "Birth name or used name",
    given: "First name",
    birth_date: "Date of birth",
    sex: "Sex",
    sex_any: "Any",
    male: "Male",
    female: "Female",
    unknown: "Unknown",
    identifier: "Identifier",
    identifier_help: "Regional identifier (BZH…), INS number or a hospital's patient id (IPP).",
    search_button: "Search",
    results_caption: "Patients found",
    no_results: "No patient matches these criteria.",
    pagination: "Result pages",
    prev_page: "Previous page",
    next_page: "Next page",
    regional_id: "Regional identifier",
    birth_name: "Birth name",
    used_name: "Used name",
    first_names: "Birth first names",
    used_first_name: "Used first name",
    birthplace: "Birthplace (INSEE code)",
    address: "Address",
    telecom: "Telephone",
    status: "Identity status",
    attributes: "Attributes",
    none: "none",
    ins: "INS number",
    ins_withheld: "Not shown: the INS is only given for a qualified identity.",
    patient_title: "Patient identity",
    merged_notice: "This patient was merged into patient",
    golden_title: "Regional reference identity",
    golden_help: "Built from the hospitals' records: each trait comes from the most reliable record (identity status, then the trust given to the hospital, then the latest update).",
    conflicts_title: "Disagreements between hospitals",
    conflicts_help: "These traits differ from one hospital to another. The first value is the one kept; check with the patient or the hospitals.",
    conflict_field: "Trait",
    conflict_values: "Values received (hospitals)",
    sources_title: "The hospitals' records",
    authority: "Hospital",
    ipp: "Patient id (IPP)",
    last_update: "Last update",
    history: "Version history",
    version: "Version",
    change: "Change",
    date: "Date",
    identity: "Identity",
    merges_title: "Merges",
    merge_number: "Merge",
    survivor: "Patient kept",
    merged: "Patient merged",
    moved: "Records moved",
    by: "By",
    undone: "Undone on",
    active_merge: "in force",
    unmerge: "Undo the merge",
    no_merges: "This patient took part in no merge.",
    merge_title: "Merge a duplicate into this patient",
    merge_help: "Enter the duplicate's regional identifier: its records will join this patient, which is kept. A confirmation page shows both identities before anything is merged.",
    other_id: "Regional identifier of the duplicate",
    merge_preview: "Compare before merging",
    confirm_merge_title: "Confirm the merge",
    confirm_merge_intro: "The records of the merged patient (right) will join the patient kept (left). The merge is recorded and can be undone from the patient's page.",
    confirm_merge_button: "Confirm the merge",
    swap: "Keep the other patient instead",
    cancel: "Cancel",
    confirm_unmerge_title: "Confirm undoing the merge",
    confirm_unmerge_intro: "The records this merge moved go back to the merged patient, which becomes an active patient again. The change is recorded.",
    confirm_unmerge_button: "Confirm undoing the merge",
    kept: "Kept",
    to_merge: "Merged",
    reviews_title: "Possible duplicates to examine",
    reviews_help: "Each task pairs a hospital's record with a regional patient who resembles it, not closely enough for an automatic link. Examine them one by one.",
    reviews_caption: "Open tasks, oldest first",
    reviews_empty: "No possible duplicate is waiting.",
    review: "Task",
    source_record: "Incoming record",
    candidate: "Candidate patient",
    score: "Score",
    score_help: "Resemblance score (Fellegi–Sunter, in bits; the higher, the closer). A task is opened when the score lies between the two thresholds or when an identity-vigilance rule asks for a person (a trait missing on one side, a homonym, close first names).",
    reason: "Reason",
    examine: "Examine",
    review_title: "Examining a possible duplicate",
    field: "Trait",
    comparison: "Comparison",
    differs: "Differs",
    decide: "Decision",
    same_decision: "Same patient (merge)",
    distinct_decision: "Different patients",
    review_closed: "This task is closed:",
    state_same: "same patient (merged)",
    state_distinct: "different patients",
    confirm_same_title: "Confirm: same patient",
    confirm_same_intro: "The incoming record's patient (left) will be merged into the candidate patient (right). The merge is recorded and can be undone from the patient's page.",
    confirm_distinct_title: "Confirm: different patients",
    confirm_distinct_intro: "These two patients are different persons: they will never be proposed as duplicates of each other again. The decision is recorded.",
    confirm_button: "Confirm the decision",
    done_same: "Decision recorded: same patient, the records were merged.",
    done_distinct: "Decision recorded: different patients.",
    done_merged: "Merge recorded.",
    done_unmerged: "Merge undone: the records went back to the merged patient.",
    reason_possible: "Possible resemblance, for a person to check",
    reason_several: "Several regional patients match this record",
    candidate_merged: "The candidate patient has since been merged into patient",
    back_to_queue: "Back to the possible duplicates",
    open_count: "Open tasks:",
    statuses: [
        (
            "Provisional",
            "Provisional identity: neither checked against an ID document nor retrieved from the INSi service.",
        ),
        (
            "Retrieved",
            "Retrieved identity: traits and INS obtained from the INSi service, no ID document checked.",
        ),
        (
            "Validated",
            "Validated identity: checked against an ID document, INS not retrieved.",
        ),
        (
            "Qualified",
            "Qualified identity: checked against an ID document and INS retrieved from INSi; the INS may be shared.",
        ),
    ],
    attribute_labels: [
        (
            "Doubtful",
            "Doubtful identity: there is a doubt about the declared identity; check before any exchange.",
        ),
        (
            "Fictitious",
            "Fictitious identity (anonymous care, tests): never linked or merged.",
        ),
        (
            "Homonym",
            "Known homonym: records are only linked after a person checked them.",
        ),
    ],
    levels: [
        &[
            "same",
            "same sound",
            "close spelling",
            "used name typed as birth name",
            "different",
        ],
        &[
            "same",
            "same first name, shorter list",
            "same first name, other first names differ",
            "first names close",
            "one first name in common",
            "different",
        ],
        &[
            "same",
            "day and month swapped",
            "one digit differs",
            "different",
        ],
        &["same", "different"],
        &["same", "same department", "different"],
        &["same", "different"],
    ],
    not_given: "not given",
    changes: [
        "created",
        "linked automatically",
        "updated",
        "merge",
        "merge undone",
        "patient id changed",
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Lang;

    fn user() -> Option<UserBar> {
        Some(UserBar {
            display_name: "Cellule".into(),
            is_admin: false,
            patients: true,
            identity_staff: true,
            csrf: "tok".into(),
        })
    }

    fn badge() -> Badge {
        Badge {
            code: "PROV",
            label: "Provisoire",
            help: "aide",
        }
    }

    fn comparison() -> Comparison {
        Comparison {
            caption: "Tâche 1".into(),
            left_title: "Dossier".into(),
            left_link: "/patients/A".into(),
            right_title: "Candidat".into(),
            right_link: "/patients/B".into(),
            rows: vec![
                CompareRow {
                    label: "Nom de naissance",
                    left: "<b>LE ROUX</b>".into(),
                    right: "LE ROUX".into(),
                    differs: false,
                    comparison: "identique".into(),
                },
                CompareRow {
                    label: "Date de naissance",
                    left: "04/06/1975".into(),
                    right: "14/06/1975".into(),
                    differs: true,
                    comparison: "un chiffre diffère".into(),
                },
            ],
        }
    }

    fn assert_accessible(html: &str) {
        assert!(!html.contains("<b>LE ROUX"), "input escaped");
        assert!(!html.contains(" style="), "no inline style (CSP)");
        assert_eq!(html.matches("<h1").count(), 1, "one h1");
        assert!(html.contains("href=\"#contenu\""), "skip link");
        assert!(!html.contains("<th>"), "every th has a scope");
        let th = html.matches("<th ").count();
        let scoped = html.matches("<th scope=\"").count();
        assert_eq!(th, scoped, "every th has a scope");
        assert_eq!(
            html.matches("<table").count(),
            html.matches("<caption>").count(),
            "every table has a caption"
        );
    }

    #[test]
    fn patient_page_hides_unqualified_ins_and_offers_staff_actions() {
        for lang in [Lang::Fr, Lang::En] {
            let t = Texts::of(lang);
            let pt = PatientTexts::of(t);
            let page = |staff: bool, ins: Option<String>, withheld: bool| {
                PatientDetailPage {
                    t,
                    pt,
                    user: user(),
                    csrf: "tok".into(),
                    regional_id: "BZH00000000019".into(),
                    merged_into: None,
                    fields: vec![Field {
                        label: pt.birth_name,
                        value: "<b>LE ROUX</b>".into(),
                    }],
                    status: badge(),
                    attributes: vec![],
                    ins,
                    ins_withheld: withheld,
                    conflicts: vec![ConflictView {
                        field: pt.birthplace,
                        values: vec![("56260".into(), "CH de Vannes 1".into())],
                    }],
                    sources: vec![],
                    merges: vec![MergeView {
                        id: 3,
                        survivor: "BZH00000000019".into(),
                        merged: "BZH00000000024".into(),
                        moved: "CH de Vannes 2".into(),
                        when: "hier".into(),
                        by: "x".into(),
                        undone: None,
                    }],
                    staff,
                    notice: None,
                    apps: vec![],
                }
                .render()
                .unwrap()
            };
            let staff = page(true, None, true);
            assert_accessible(&staff);
            assert!(staff.contains(&format!("<html lang=\"{}\">", lang.code())));
            assert!(staff.contains(pt.ins_withheld.split('\'').next().unwrap()));
            assert!(staff.contains("/identity/merges/3/unmerge"));
            assert!(staff.contains("for=\"other\"") && staff.contains("id=\"other\""));
            assert!(
                staff.contains("href=\"/identity/reviews\""),
                "staff navigation"
            );
            let clinician = page(false, Some("169022901912345".into()), false);
            assert!(clinician.contains("169022901912345"));
            assert!(!clinician.contains("/unmerge") && !clinician.contains("id=\"other\""));
        }
    }

    #[test]
    fn confirmation_needs_its_own_form_with_the_token() {
        let t = Texts::of(Lang::Fr);
        let pt = PatientTexts::of(t);
        let html = ConfirmPage {
            t,
            pt,
            user: user(),
            csrf: "tok".into(),
            title: pt.confirm_same_title,
            intro: pt.confirm_same_intro,
            comparison: comparison(),
            extra: vec![],
            action: "/identity/reviews/1".into(),
            hidden: vec![("decision", "same".into())],
            button: pt.confirm_button,
            cancel: "/identity/reviews/1".into(),
            alternative: None,
        }
        .render()
        .unwrap();
        assert_accessible(&html);
        assert!(html.contains("method=\"post\" action=\"/identity/reviews/1\""));
        assert!(html.contains("name=\"csrf\" value=\"tok\""));
        assert!(html.contains("name=\"decision\" value=\"same\""));
        assert!(html.contains("class=\"differs\"") && html.contains("≠ Différent"));
        let review = ReviewDetailPage {
            t,
            pt,
            user: user(),
            id: 1,
            open: true,
            state: String::new(),
            score: "11,8".into(),
            reason: pt.reason_possible.into(),
            comparison: comparison(),
            note: None,
        }
        .render()
        .unwrap();
        assert_accessible(&review);
        // The decision buttons only open the confirmation page (GET): no change on one click.
        assert!(!review.contains("method=\"post\" action=\"/identity"));
        assert!(review.contains("action=\"/identity/reviews/1/confirm\""));
    }

    #[test]
    fn texts_for_levels_and_changes() {
        let pt = &PATIENTS_FR;
        assert_eq!(pt.level(2, 2), "un chiffre diffère");
        assert_eq!(pt.level(5, 6), pt.not_given);
        assert_eq!(pt.change("merge 3"), "fusion n° 3");
        assert_eq!(pt.change("create"), "création");
        assert_eq!(PATIENTS_EN.range(21, 23, 23), "Results 21 to 23 of 23");
    }
}
