//! A patient's shared documents in the portal: the list with filters (what the signed-in
//! professional may see, and the reason when they may not), and one document: its metadata,
//! a PDF shown inline, an ECG or EEG recording plotted as a waveform.

use askama::Template;

use crate::{Texts, UserBar};

/// One document of the list, as shown.
#[derive(Debug, Clone)]
pub struct DocumentRow {
    pub id: String,
    pub title: String,
    pub doc_type: String,
    pub date: String,
    pub author: String,
    pub confidentiality: String,
    pub status: String,
    pub format: String,
}

/// The filters, given back to refill the form.
#[derive(Debug, Clone, Default)]
pub struct DocumentFilters {
    pub doc_type: String,
    pub from: String,
    pub to: String,
    pub include_withdrawn: bool,
}

#[derive(Template)]
#[template(path = "documents.html")]
pub struct DocumentListPage<'a> {
    pub t: &'a Texts,
    pub dt: &'a DocumentTexts,
    pub user: Option<UserBar>,
    pub regional_id: String,
    pub patient_name: String,
    pub filters: DocumentFilters,
    pub rows: Vec<DocumentRow>,
    /// Documents of the patient this professional may not see (masked, very restricted).
    pub withheld: usize,
    /// The refusal, when the professional may see none of the patient's documents.
    pub refusal: Option<String>,
    pub csrf: String,
    /// A professional of the care team may deposit a document.
    pub may_upload: bool,
    /// Document types offered for an upload: LOINC code and name.
    pub types: Vec<(&'static str, &'static str)>,
}

/// How the content is shown.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// A PDF, framed from the content route.
    Pdf { url: String },
    /// An ECG/EEG plotted as SVG (already rendered, escaped by the renderer), with the window
    /// navigation.
    Waveform {
        svg: String,
        summary: String,
        start: String,
        duration: String,
        prev: Option<String>,
        next: Option<String>,
    },
    /// Anything else: a download link.
    Download { url: String },
    /// The recording could not be read: why.
    Unreadable { reason: String, url: String },
}

#[derive(Template)]
#[template(path = "document.html")]
pub struct DocumentPage<'a> {
    pub t: &'a Texts,
    pub dt: &'a DocumentTexts,
    pub user: Option<UserBar>,
    pub regional_id: String,
    pub row: DocumentRow,
    pub fields: Vec<(&'static str, String)>,
    pub viewer: Viewer,
}

/// Texts of the document pages, French first.
pub struct DocumentTexts {
    pub lang: &'static str,
    pub title: &'static str,
    pub help: &'static str,
    pub filters: &'static str,
    pub doc_type: &'static str,
    pub doc_type_help: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub include_withdrawn: &'static str,
    pub filter_button: &'static str,
    pub caption: &'static str,
    pub doc_title: &'static str,
    pub date: &'static str,
    pub author: &'static str,
    pub confidentiality: &'static str,
    pub status: &'static str,
    pub format: &'static str,
    pub open: &'static str,
    pub none: &'static str,
    pub withheld: &'static str,
    pub refused: &'static str,
    pub sharing_link: &'static str,
    pub back: &'static str,
    pub download: &'static str,
    pub pdf_frame: &'static str,
    pub waveform_title: &'static str,
    pub window_start: &'static str,
    pub window_duration: &'static str,
    pub show: &'static str,
    pub earlier: &'static str,
    pub later: &'static str,
    pub unreadable: &'static str,
    pub upload_title: &'static str,
    pub upload_help: &'static str,
    pub file: &'static str,
    pub upload_button: &'static str,
}

impl DocumentTexts {
    pub fn of(t: &Texts) -> &'static DocumentTexts {
        if t.lang == "en" {
            &DOCUMENTS_EN
        } else {
            &DOCUMENTS_FR
        }
    }
}

pub static DOCUMENTS_FR: DocumentTexts = DocumentTexts {
    lang: "fr",
    title: "Documents partagés",
    help: "Comptes rendus, résultats, images et enregistrements ECG/EEG partagés sous la responsabilité des professionnels et avec l'accord du patient. Chaque consultation est tracée et visible du patient.",
    filters: "Filtrer",
    doc_type: "Type (code LOINC)",
    doc_type_help: "Par exemple 11506-3 (note d'évolution) ou 11524-6 (ECG).",
    from: "Du",
    to: "Au",
    include_withdrawn: "Inclure les documents retirés ou remplacés",
    filter_button: "Filtrer",
    caption: "Documents du patient",
    doc_title: "Titre",
    date: "Date",
    author: "Auteur",
    confidentiality: "Confidentialité",
    status: "État",
    format: "Format",
    open: "Ouvrir",
    none: "Aucun document.",
    withheld: "document(s) ne vous sont pas accessibles (masqués par le patient ou très restreints).",
    refused: "Accès refusé",
    sharing_link: "Partage et consentement",
    back: "Retour aux documents",
    download: "Télécharger",
    pdf_frame: "Contenu du document (PDF)",
    waveform_title: "Tracé",
    window_start: "Début (secondes)",
    window_duration: "Durée (secondes)",
    show: "Afficher",
    earlier: "Fenêtre précédente",
    later: "Fenêtre suivante",
    unreadable: "L'enregistrement n'a pas pu être lu",
    upload_title: "Déposer un document",
    upload_help: "Vous en êtes l'auteur et le responsable. Formats : PDF, CDA, JPEG, PNG, DICOM, ECG (PDF, HL7 aECG, SCP-ECG), EEG (EDF/EDF+).",
    file: "Fichier",
    upload_button: "Déposer",
};

pub static DOCUMENTS_EN: DocumentTexts = DocumentTexts {
    lang: "en",
    title: "Shared documents",
    help: "Reports, results, images and ECG/EEG recordings shared under the professionals' responsibility and with the patient's agreement. Every access is traced and shown to the patient.",
    filters: "Filter",
    doc_type: "Type (LOINC code)",
    doc_type_help: "For instance 11506-3 (progress note) or 11524-6 (ECG).",
    from: "From",
    to: "To",
    include_withdrawn: "Include withdrawn or replaced documents",
    filter_button: "Filter",
    caption: "The patient's documents",
    doc_title: "Title",
    date: "Date",
    author: "Author",
    confidentiality: "Confidentiality",
    status: "Status",
    format: "Format",
    open: "Open",
    none: "No document.",
    withheld: "document(s) are not available to you (masked by the patient or very restricted).",
    refused: "Access refused",
    sharing_link: "Sharing and consent",
    back: "Back to the documents",
    download: "Download",
    pdf_frame: "Content of the document (PDF)",
    waveform_title: "Trace",
    window_start: "Start (seconds)",
    window_duration: "Duration (seconds)",
    show: "Show",
    earlier: "Previous window",
    later: "Next window",
    unreadable: "The recording could not be read",
    upload_title: "Deposit a document",
    upload_help: "You are its author and responsible for it. Formats: PDF, CDA, JPEG, PNG, DICOM, ECG (PDF, HL7 aECG, SCP-ECG), EEG (EDF/EDF+).",
    file: "File",
    upload_button: "Deposit",
};
