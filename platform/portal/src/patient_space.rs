//! The patient's own space: the access log (who, when, why), their choices and their
//! documents; the activation page of a patient account and the page showing a professional
//! the one-time code to hand over.

use askama::Template;

use crate::{Texts, UserBar};

#[derive(Debug, Clone)]
pub struct AccessLogRow {
    pub when: String,
    pub who: String,
    pub what: String,
    pub why: String,
    pub refused: bool,
}

#[derive(Debug, Clone)]
pub struct MyChoiceRow {
    pub id: i64,
    pub kind: &'static str,
    pub practitioner: String,
    pub since: String,
}

#[derive(Debug, Clone)]
pub struct MyDocumentRow {
    pub id: String,
    pub title: String,
    pub date: String,
    pub masked: bool,
}

#[derive(Template)]
#[template(path = "my_record.html")]
pub struct MyRecordPage<'a> {
    pub t: &'a Texts,
    pub pt: &'a PatientSpaceTexts,
    pub user: Option<UserBar>,
    pub csrf: String,
    pub regional_id: String,
    pub notice: Option<String>,
    pub log: Vec<AccessLogRow>,
    pub objects: bool,
    pub objects_emergency: bool,
    pub choices: Vec<MyChoiceRow>,
    pub documents: Vec<MyDocumentRow>,
}

#[derive(Template)]
#[template(path = "activate.html")]
pub struct ActivatePage<'a> {
    pub t: &'a Texts,
    pub pt: &'a PatientSpaceTexts,
    pub user: Option<UserBar>,
    pub csrf: String,
    pub code: String,
    pub username: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "activation_code.html")]
pub struct ActivationCodePage<'a> {
    pub t: &'a Texts,
    pub pt: &'a PatientSpaceTexts,
    pub user: Option<UserBar>,
    pub regional_id: String,
    pub code: String,
}

pub struct PatientSpaceTexts {
    pub lang: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    pub log_title: &'static str,
    pub log_help: &'static str,
    pub log_empty: &'static str,
    pub when: &'static str,
    pub who: &'static str,
    pub what: &'static str,
    pub why: &'static str,
    pub refused: &'static str,
    pub professional: &'static str,
    pub you: &'static str,
    pub choices_title: &'static str,
    pub objection: &'static str,
    pub objection_help: &'static str,
    pub object_button: &'static str,
    pub withdraw_objection: &'static str,
    pub emergency_objection: &'static str,
    pub emergency_help: &'static str,
    pub object_emergency_button: &'static str,
    pub withdraw_emergency_objection: &'static str,
    pub consent_label: &'static str,
    pub block_label: &'static str,
    pub practitioner: &'static str,
    pub practitioner_help: &'static str,
    pub consent_button: &'static str,
    pub block_button: &'static str,
    pub revoke: &'static str,
    pub since: &'static str,
    pub documents_title: &'static str,
    pub documents_help: &'static str,
    pub no_documents: &'static str,
    pub mask: &'static str,
    pub unmask: &'static str,
    pub masked: &'static str,
    pub saved: &'static str,
    pub activate_title: &'static str,
    pub activate_help: &'static str,
    pub code: &'static str,
    pub birth_date: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub password_help: &'static str,
    pub activate_button: &'static str,
    pub bad_code: &'static str,
    pub code_title: &'static str,
    pub code_help: &'static str,
}

impl PatientSpaceTexts {
    pub fn of(t: &Texts) -> &'static PatientSpaceTexts {
        if t.lang == "en" {
            &PATIENT_SPACE_EN
        } else {
            &PATIENT_SPACE_FR
        }
    }
}

pub static PATIENT_SPACE_FR: PatientSpaceTexts = PatientSpaceTexts {
    lang: "fr",
    title: "Mon dossier",
    intro: "Vos données de santé partagées dans la région : qui y a accédé, vos choix de partage et vos documents.",
    log_title: "Qui a accédé à mon dossier",
    log_help: "Chaque consultation de votre dossier, avec son auteur, sa date et sa raison (article L.1111-19 du code de la santé publique). Les accès refusés figurent aussi.",
    log_empty: "Aucun accès à votre dossier pour l'instant.",
    when: "Quand",
    who: "Qui",
    what: "Quoi",
    why: "Pourquoi",
    refused: "refusé",
    professional: "Professionnel de santé",
    you: "Vous",
    choices_title: "Mes choix de partage",
    objection: "Opposition au partage",
    objection_help: "Vous pouvez vous opposer au partage de vos données, même avec votre équipe de soins. Les professionnels à qui vous donnez votre consentement ci-dessous y accèdent toujours.",
    object_button: "M'opposer au partage",
    withdraw_objection: "Retirer mon opposition",
    emergency_objection: "Opposition à l'accès d'urgence",
    emergency_help: "En cas d'urgence, si vous ne pouvez pas consentir, un professionnel peut accéder à votre dossier (bris de glace), sauf si vous vous y opposez ici par avance.",
    object_emergency_button: "M'opposer à l'accès d'urgence",
    withdraw_emergency_objection: "Retirer mon opposition à l'accès d'urgence",
    consent_label: "Consentement",
    block_label: "Professionnel bloqué",
    practitioner: "Identifiant national du professionnel (8 + RPPS)",
    practitioner_help: "12 chiffres commençant par 8, indiqués sur l'ordonnance ou par le professionnel.",
    consent_button: "Donner mon consentement",
    block_button: "Bloquer ce professionnel",
    revoke: "Révoquer",
    since: "depuis le",
    documents_title: "Mes documents",
    documents_help: "Vous pouvez masquer un document : seuls son auteur et vous le verrez.",
    no_documents: "Aucun document partagé.",
    mask: "Masquer",
    unmask: "Ne plus masquer",
    masked: "masqué",
    saved: "Votre choix est enregistré. Il s'applique immédiatement.",
    activate_title: "Créer mon accès patient",
    activate_help: "Saisissez le code remis par votre professionnel de santé et votre date de naissance, puis choisissez votre identifiant et votre mot de passe.",
    code: "Code d'activation",
    birth_date: "Date de naissance",
    username: "Identifiant",
    password: "Mot de passe",
    password_help: "Au moins 12 caractères.",
    activate_button: "Créer mon accès",
    bad_code: "Code inconnu, expiré ou déjà utilisé, ou date de naissance différente.",
    code_title: "Code d'activation de l'accès patient",
    code_help: "Remettez ce code au patient (il n'est affiché qu'une fois, valable 14 jours). Le patient le saisit à l'adresse /patient/activate avec sa date de naissance.",
};

pub static PATIENT_SPACE_EN: PatientSpaceTexts = PatientSpaceTexts {
    lang: "en",
    title: "My record",
    intro: "Your health data shared in the region: who accessed it, your sharing choices and your documents.",
    log_title: "Who accessed my record",
    log_help: "Every access to your record, with who, when and why (article L.1111-19 of the French public health code). Refused accesses are listed too.",
    log_empty: "No access to your record yet.",
    when: "When",
    who: "Who",
    what: "What",
    why: "Why",
    refused: "refused",
    professional: "Health professional",
    you: "You",
    choices_title: "My sharing choices",
    objection: "Objection to sharing",
    objection_help: "You may object to the sharing of your data, even with your care team. Professionals you give your consent to below still reach it.",
    object_button: "Object to sharing",
    withdraw_objection: "Withdraw my objection",
    emergency_objection: "Objection to emergency access",
    emergency_help: "In an emergency, if you cannot consent, a professional may access your record (break the glass), unless you object here beforehand.",
    object_emergency_button: "Object to emergency access",
    withdraw_emergency_objection: "Withdraw my objection to emergency access",
    consent_label: "Consent",
    block_label: "Blocked professional",
    practitioner: "The professional's national id (8 + RPPS)",
    practitioner_help: "12 digits starting with 8, on prescriptions or given by the professional.",
    consent_button: "Give my consent",
    block_button: "Block this professional",
    revoke: "Revoke",
    since: "since",
    documents_title: "My documents",
    documents_help: "You may mask a document: only its author and you will see it.",
    no_documents: "No shared document.",
    mask: "Mask",
    unmask: "Unmask",
    masked: "masked",
    saved: "Your choice is recorded. It applies at once.",
    activate_title: "Create my patient access",
    activate_help: "Type the code your health professional gave you and your birth date, then choose your user name and password.",
    code: "Activation code",
    birth_date: "Birth date",
    username: "User name",
    password: "Password",
    password_help: "At least 12 characters.",
    activate_button: "Create my access",
    bad_code: "Unknown, expired or used code, or a different birth date.",
    code_title: "Activation code of the patient's access",
    code_help: "Give this code to the patient (shown once, valid 14 days). The patient types it at /patient/activate with their birth date.",
};
