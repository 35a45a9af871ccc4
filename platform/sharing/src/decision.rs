//! The access decision: may this principal make this use of this patient's data, now, and on
//! what ground? One pure function, [`decide`], from facts gathered by the caller. Every route
//! that touches patient data (FHIR, portal, plugin capabilities) calls it and audits the
//! [`Decision`] it returns, allowed or denied, with its [`Reason`].
//!
//! The rules follow the law of 4 March 2002 on patients' rights and the Code de la santé
//! publique (see `DESIGN.md` §5):
//! - inside the care team, sharing is allowed unless the patient objects;
//! - outside it, the patient's explicit consent is required;
//! - the patient may block a given professional and mask a given document;
//! - emergency access ("bris de glace") is possible when the patient cannot consent, for a
//!   limited time and with a declared reason, unless the patient objected to it beforehand;
//! - the patient sees their own record and who accessed it.
//!
//! Order matters and is deliberate: facts about the *person asking* (authenticated, second
//! factor, practitioner still registered) come first, then the patient's refusals (a block
//! beats a care relationship, a mask beats everything but authorship), then the grounds for
//! access (authorship, care team, consent, emergency). The first rule that applies decides, so
//! the reason given is always the most specific one.

use serde::Serialize;

/// Microseconds since the Unix epoch (the unit of every stored instant in Megalis).
pub type Micros = i64;

/// Who asks, reduced to what the decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requester {
    /// No valid credentials.
    Anonymous,
    /// A health professional identified by national id (`8` + RPPS).
    Professional {
        national_id: String,
        /// Signed in with a second factor (CPS card, Pro Santé Connect, TOTP).
        second_factor: bool,
        /// Still registered in the directory (a closed practitioner loses access at once).
        active: bool,
    },
    /// A patient signed in to their own account, holding these regional ids (the account's
    /// patient and, after a merge, the ids merged into it).
    Patient { regional_ids: Vec<String> },
    /// Identity-vigilance staff (role `identity`): identities only, never clinical content.
    IdentityStaff { second_factor: bool },
    /// A hospital or application system with an OAuth client-credentials token.
    System {
        client_id: String,
        /// The SMART scopes of the token that cover the resource at hand, already checked by
        /// the caller against the resource type and the action (read or write).
        scope_granted: bool,
        /// The organisation or system that is the custodian of the resource, when it is this
        /// client's own (a hospital reading back what it deposited).
        is_custodian: bool,
    },
    /// Any other signed-in account (a secretary, an administrator): no patient data.
    OtherUser,
}

/// What is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// The patient's identity (demographics, identifiers): needed to find the patient at all.
    Identity,
    /// A shared document (DocumentReference and its content).
    Document(DocumentFacts),
    /// Clinical data held by the core or a plugin that is not a document (a plugin's records
    /// carrying the regional patient id, e.g. dialysis sessions or messages).
    ClinicalRecord,
    /// The patient's consents, objections, blocks and masks.
    Consent,
    /// Who accessed the patient's record (L.1111-19).
    AccessLog,
}

/// The facts about a document the decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentFacts {
    pub id: String,
    /// National id of the professional who wrote it.
    pub author: Option<String>,
    /// HL7 v3 confidentiality: `N` normal, `R` restricted, `V` very restricted.
    pub confidentiality: Confidentiality,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Confidentiality {
    Normal,
    Restricted,
    VeryRestricted,
}

impl Confidentiality {
    /// From the HL7 v3 Confidentiality code (`L`, `M`, `N`, `R`, `V`); low and moderate count as
    /// normal.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "L" | "M" | "N" => Some(Self::Normal),
            "R" => Some(Self::Restricted),
            "V" => Some(Self::VeryRestricted),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Normal => "N",
            Self::Restricted => "R",
            Self::VeryRestricted => "V",
        }
    }
}

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Read,
    Write,
}

/// Why the data is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// Ordinary care (HL7 PurposeOfUse `TREAT`).
    Care,
    /// Emergency access under a declared "bris de glace" (`ETREAT`).
    Emergency,
}

/// Where a care relationship comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CareLinkSource {
    /// An encounter sent by a hospital (ADT, PV1-7 attending / PV1-8 referring doctor).
    Encounter,
    /// Declared by the professional, with a justification.
    Declaration,
    /// A referral by a member of the care team.
    Referral,
}

impl CareLinkSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Encounter => "encounter",
            Self::Declaration => "declaration",
            Self::Referral => "referral",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "encounter" => Some(Self::Encounter),
            "declaration" => Some(Self::Declaration),
            "referral" => Some(Self::Referral),
            _ => None,
        }
    }
}

/// A professional's membership of the patient's care team, for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CareLink {
    pub practitioner: String,
    pub source: CareLinkSource,
    pub start: Micros,
    /// `None`: open-ended.
    pub end: Option<Micros>,
}

impl CareLink {
    pub fn is_active(&self, now: Micros) -> bool {
        self.start <= now && self.end.is_none_or(|end| now < end)
    }
}

/// The patient's standing choices, as of now (revoked ones are not included).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PatientChoices {
    /// Objection to the regional sharing of their data (opposition au partage).
    pub objects_to_sharing: bool,
    /// Objection made beforehand to any emergency access.
    pub objects_to_emergency: bool,
    /// Professionals given explicit consent outside the care team, with the end of each consent.
    pub consents: Vec<(String, Option<Micros>)>,
    /// Professionals the patient has blocked.
    pub blocked: Vec<String>,
    /// Documents the patient has masked.
    pub masked_documents: Vec<String>,
}

/// A declared emergency access of one professional to this patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmergencyAccess {
    pub practitioner: String,
    pub start: Micros,
    pub end: Micros,
}

/// Everything known about the patient's sharing, gathered once per request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharingFacts {
    /// The patient's regional id and those merged into it.
    pub regional_ids: Vec<String>,
    pub choices: PatientChoices,
    pub care_links: Vec<CareLink>,
    pub emergencies: Vec<EmergencyAccess>,
}

/// One request for a decision.
#[derive(Debug, Clone)]
pub struct AccessRequest<'a> {
    pub requester: &'a Requester,
    pub resource: &'a Resource,
    pub action: Action,
    pub purpose: Purpose,
    pub facts: &'a SharingFacts,
    pub now: Micros,
}

/// The ground of an allowed access or the cause of a denial. The code is stable: it goes into
/// the audit record and the patient's access log; the texts are for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    // Grounds for access.
    OwnRecord,
    Author,
    CareTeam,
    ExplicitConsent,
    Emergency,
    IdentityLookup,
    IdentityVigilance,
    SystemScope,
    // Denials.
    NotAuthenticated,
    SecondFactorRequired,
    PractitionerClosed,
    #[serde(rename = "not-own-record")]
    NotAPatientOfThisAccount,
    NotAHealthProfessional,
    NoScope,
    BlockedByPatient,
    DocumentMasked,
    PatientObjects,
    VeryRestricted,
    NotInCareTeam,
    EmergencyObjected,
    EmergencyExpired,
    EmergencyNotDeclared,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::OwnRecord => "own-record",
            Reason::Author => "author",
            Reason::CareTeam => "care-team",
            Reason::ExplicitConsent => "explicit-consent",
            Reason::Emergency => "emergency",
            Reason::IdentityLookup => "identity-lookup",
            Reason::IdentityVigilance => "identity-vigilance",
            Reason::SystemScope => "system-scope",
            Reason::NotAuthenticated => "not-authenticated",
            Reason::SecondFactorRequired => "second-factor-required",
            Reason::PractitionerClosed => "practitioner-closed",
            Reason::NotAPatientOfThisAccount => "not-own-record",
            Reason::NotAHealthProfessional => "not-a-health-professional",
            Reason::NoScope => "no-scope",
            Reason::BlockedByPatient => "blocked-by-patient",
            Reason::DocumentMasked => "document-masked",
            Reason::PatientObjects => "patient-objects",
            Reason::VeryRestricted => "very-restricted",
            Reason::NotInCareTeam => "not-in-care-team",
            Reason::EmergencyObjected => "emergency-objected",
            Reason::EmergencyExpired => "emergency-expired",
            Reason::EmergencyNotDeclared => "emergency-not-declared",
        }
    }

    /// The reason of a stable code (as audited), for showing the patient why.
    pub fn from_code(code: &str) -> Option<Self> {
        ALL_REASONS.iter().copied().find(|r| r.code() == code)
    }

    /// Whether this reason allows the access.
    pub fn allows(self) -> bool {
        matches!(
            self,
            Reason::OwnRecord
                | Reason::Author
                | Reason::CareTeam
                | Reason::ExplicitConsent
                | Reason::Emergency
                | Reason::IdentityLookup
                | Reason::IdentityVigilance
                | Reason::SystemScope
        )
    }

    /// A sentence for the person refused (French first, then English), shown in the portal and
    /// in OperationOutcome / problem+json errors.
    pub fn text(self) -> &'static str {
        match self {
            Reason::OwnRecord => "Accès à son propre dossier. / Access to one's own record.",
            Reason::Author => "Auteur du document. / Author of the document.",
            Reason::CareTeam => "Membre de l'équipe de soins. / Member of the care team.",
            Reason::ExplicitConsent => {
                "Consentement explicite du patient. / The patient's explicit consent."
            }
            Reason::Emergency => {
                "Accès d'urgence déclaré (bris de glace). / Declared emergency access."
            }
            Reason::IdentityLookup => {
                "Recherche d'identité par un professionnel de santé. / Identity look-up by a health professional."
            }
            Reason::IdentityVigilance => "Identitovigilance. / Identity vigilance.",
            Reason::SystemScope => "Système autorisé. / Authorised system.",
            Reason::NotAuthenticated => "Authentification requise. / Authentication required.",
            Reason::SecondFactorRequired => {
                "L'accès aux données des patients demande une connexion avec un second facteur \
                 (carte CPS, Pro Santé Connect ou code TOTP). / Access to patient data requires a \
                 sign-in with a second factor (CPS card, Pro Santé Connect or TOTP code)."
            }
            Reason::PractitionerClosed => {
                "Votre exercice n'est plus enregistré dans l'annuaire santé. / Your practice is no \
                 longer registered in the national directory."
            }
            Reason::NotAPatientOfThisAccount => {
                "Ce dossier n'est pas le vôtre. / This record is not yours."
            }
            Reason::NotAHealthProfessional => {
                "Réservé aux professionnels de santé. / Reserved for health professionals."
            }
            Reason::NoScope => {
                "Le jeton n'a pas la portée nécessaire. / The token lacks the required scope."
            }
            Reason::BlockedByPatient => {
                "Le patient s'est opposé à ce que vous accédiez à son dossier. / The patient has \
                 blocked your access to their record."
            }
            Reason::DocumentMasked => {
                "Le patient a masqué ce document. / The patient has masked this document."
            }
            Reason::PatientObjects => {
                "Le patient s'est opposé au partage de ses données. / The patient objects to the \
                 sharing of their data."
            }
            Reason::VeryRestricted => {
                "Document très restreint : seuls son auteur et les professionnels ayant le \
                 consentement explicite du patient y accèdent. / Very restricted document: only its \
                 author and professionals with the patient's explicit consent may see it."
            }
            Reason::NotInCareTeam => {
                "Vous n'appartenez pas à l'équipe de soins de ce patient : son consentement \
                 explicite est nécessaire. / You are not in this patient's care team: their \
                 explicit consent is required."
            }
            Reason::EmergencyObjected => {
                "Le patient s'est opposé par avance à l'accès d'urgence. / The patient objected \
                 beforehand to emergency access."
            }
            Reason::EmergencyExpired => {
                "Votre accès d'urgence a expiré. / Your emergency access has expired."
            }
            Reason::EmergencyNotDeclared => {
                "Aucun accès d'urgence n'est déclaré : déclarez-en un avec son motif. / No \
                 emergency access is declared: declare one with its reason."
            }
        }
    }
}

/// Every reason, for look-ups by code.
pub const ALL_REASONS: [Reason; 22] = [
    Reason::OwnRecord,
    Reason::Author,
    Reason::CareTeam,
    Reason::ExplicitConsent,
    Reason::Emergency,
    Reason::IdentityLookup,
    Reason::IdentityVigilance,
    Reason::SystemScope,
    Reason::NotAuthenticated,
    Reason::SecondFactorRequired,
    Reason::PractitionerClosed,
    Reason::NotAPatientOfThisAccount,
    Reason::NotAHealthProfessional,
    Reason::NoScope,
    Reason::BlockedByPatient,
    Reason::DocumentMasked,
    Reason::PatientObjects,
    Reason::VeryRestricted,
    Reason::NotInCareTeam,
    Reason::EmergencyObjected,
    Reason::EmergencyExpired,
    Reason::EmergencyNotDeclared,
];

/// The outcome of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
}

impl Decision {
    fn from(reason: Reason) -> Self {
        Decision {
            allowed: reason.allows(),
            reason,
        }
    }
}

/// Decides whether `request` is allowed, and why. Pure: the same facts give the same answer.
pub fn decide(request: &AccessRequest<'_>) -> Decision {
    Decision::from(reason(request))
}

/// The refusal that does not depend on any patient (who asks, not about whom), if any: what the
/// decision refuses on a patient with no facts at all because of the requester — not
/// authenticated, no second factor, practice closed, not a health professional, no scope.
/// Checked before a look-up, so that a caller without any right learns nothing of which ids
/// exist.
pub fn refusal_about_the_caller(
    requester: &Requester,
    resource: &Resource,
    action: Action,
    now: Micros,
) -> Option<Reason> {
    let decision = decide(&AccessRequest {
        requester,
        resource,
        action,
        purpose: Purpose::Care,
        facts: &SharingFacts::default(),
        now,
    });
    let about_the_caller = matches!(
        decision.reason,
        Reason::NotAuthenticated
            | Reason::SecondFactorRequired
            | Reason::PractitionerClosed
            | Reason::NotAHealthProfessional
            | Reason::NoScope
    );
    (!decision.allowed && about_the_caller).then_some(decision.reason)
}

fn reason(r: &AccessRequest<'_>) -> Reason {
    let facts = r.facts;
    let choices = &facts.choices;
    match r.requester {
        Requester::Anonymous => Reason::NotAuthenticated,
        Requester::OtherUser => Reason::NotAHealthProfessional,
        Requester::Patient { regional_ids } => {
            let own = facts
                .regional_ids
                .iter()
                .any(|id| regional_ids.iter().any(|mine| mine == id));
            if !own {
                return Reason::NotAPatientOfThisAccount;
            }
            // A patient reads everything of theirs (masks hide documents from others) and
            // manages their consents; they do not write clinical documents.
            match (r.resource, r.action) {
                (Resource::Consent, _) | (_, Action::Read) => Reason::OwnRecord,
                _ => Reason::NotAHealthProfessional,
            }
        }
        Requester::IdentityStaff { second_factor } => {
            if !matches!(r.resource, Resource::Identity) {
                Reason::NotAHealthProfessional
            } else if !second_factor {
                Reason::SecondFactorRequired
            } else {
                Reason::IdentityVigilance
            }
        }
        Requester::System {
            scope_granted,
            is_custodian,
            ..
        } => {
            if !scope_granted {
                return Reason::NoScope;
            }
            match r.resource {
                // Systems feed and look up identities; the access log and consents are the
                // patient's and their professionals' business.
                Resource::Identity => Reason::SystemScope,
                Resource::AccessLog | Resource::Consent => Reason::NotAHealthProfessional,
                Resource::Document(doc) => {
                    // A hospital may deposit documents and read back its own; reading other
                    // custodians' documents is sharing, which the patient may refuse.
                    if r.action == Action::Write || *is_custodian {
                        Reason::SystemScope
                    } else if choices.masked_documents.contains(&doc.id) {
                        Reason::DocumentMasked
                    } else if choices.objects_to_sharing {
                        Reason::PatientObjects
                    } else if doc.confidentiality == Confidentiality::VeryRestricted {
                        Reason::VeryRestricted
                    } else {
                        Reason::SystemScope
                    }
                }
                Resource::ClinicalRecord => {
                    if r.action == Action::Read && choices.objects_to_sharing {
                        Reason::PatientObjects
                    } else {
                        Reason::SystemScope
                    }
                }
            }
        }
        Requester::Professional {
            national_id,
            second_factor,
            active,
        } => professional(r, national_id, *second_factor, *active),
    }
}

fn professional(r: &AccessRequest<'_>, me: &str, second_factor: bool, active: bool) -> Reason {
    if !second_factor {
        return Reason::SecondFactorRequired;
    }
    if !active {
        return Reason::PractitionerClosed;
    }
    let facts = r.facts;
    let choices = &facts.choices;
    let now = r.now;
    if choices.blocked.iter().any(|b| b == me) {
        // A block is the patient's objection against this professional: it holds against
        // the care team, consent and emergency access alike.
        return Reason::BlockedByPatient;
    }
    let document = match r.resource {
        // Finding a patient (to declare a care relationship, to deposit a document) is open to
        // professionals; what they may then see is decided per resource.
        Resource::Identity => return Reason::IdentityLookup,
        // The access log belongs to the patient (and to the officers who review it).
        Resource::AccessLog => return Reason::NotAPatientOfThisAccount,
        Resource::Document(doc) => Some(doc),
        Resource::Consent | Resource::ClinicalRecord => None,
    };
    if let Some(doc) = document
        && doc.author.as_deref() == Some(me)
    {
        // The author keeps access to what they wrote, masked or not (responsibility for the
        // document stays theirs), unless the patient blocked them (above).
        return Reason::Author;
    }
    if let Some(doc) = document
        && choices.masked_documents.contains(&doc.id)
    {
        return Reason::DocumentMasked;
    }
    let emergency = facts.emergencies.iter().filter(|e| e.practitioner == me);
    let emergency_active = emergency.clone().any(|e| e.start <= now && now < e.end);
    if r.purpose == Purpose::Emergency {
        if choices.objects_to_emergency {
            return Reason::EmergencyObjected;
        }
        if emergency_active {
            return Reason::Emergency;
        }
        return if emergency.clone().any(|e| e.end <= now) {
            Reason::EmergencyExpired
        } else {
            Reason::EmergencyNotDeclared
        };
    }
    let consented = choices
        .consents
        .iter()
        .any(|(p, end)| p == me && end.is_none_or(|end| now < end));
    if document.is_some_and(|d| d.confidentiality == Confidentiality::VeryRestricted) {
        // Very restricted documents are not shared with the care team at large.
        return if consented {
            Reason::ExplicitConsent
        } else {
            Reason::VeryRestricted
        };
    }
    let emergency_covers = emergency_active && !choices.objects_to_emergency;
    if choices.objects_to_sharing {
        // An objection to sharing stops the care team too; an explicit consent given to one
        // professional is the patient's more specific choice and wins, and is then the ground.
        // A declared emergency access still applies: only an objection to emergency access,
        // made beforehand, refuses it.
        return if consented {
            Reason::ExplicitConsent
        } else if emergency_covers {
            Reason::Emergency
        } else {
            Reason::PatientObjects
        };
    }
    if facts
        .care_links
        .iter()
        .any(|l| l.practitioner == me && l.is_active(now))
    {
        return Reason::CareTeam;
    }
    if consented {
        return Reason::ExplicitConsent;
    }
    if emergency_covers {
        // A declared emergency access covers ordinary requests until it expires.
        return Reason::Emergency;
    }
    Reason::NotInCareTeam
}

/// May this professional declare an emergency access to this patient now? Refused when the
/// patient objected beforehand or blocked the professional.
pub fn may_declare_emergency(national_id: &str, choices: &PatientChoices) -> Result<(), Reason> {
    if choices.blocked.iter().any(|b| b == national_id) {
        return Err(Reason::BlockedByPatient);
    }
    if choices.objects_to_emergency {
        return Err(Reason::EmergencyObjected);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "810001234567";
    const OTHER: &str = "810009876543";
    const NOW: Micros = 1_800_000_000_000_000;
    const HOUR: Micros = 3_600_000_000;

    fn pro() -> Requester {
        Requester::Professional {
            national_id: ME.into(),
            second_factor: true,
            active: true,
        }
    }

    fn doc(author: Option<&str>, confidentiality: Confidentiality) -> Resource {
        Resource::Document(DocumentFacts {
            id: "doc-1".into(),
            author: author.map(str::to_string),
            confidentiality,
        })
    }

    fn normal_doc() -> Resource {
        doc(Some(OTHER), Confidentiality::Normal)
    }

    fn link(practitioner: &str, start: Micros, end: Option<Micros>) -> CareLink {
        CareLink {
            practitioner: practitioner.into(),
            source: CareLinkSource::Encounter,
            start,
            end,
        }
    }

    fn facts() -> SharingFacts {
        SharingFacts {
            regional_ids: vec!["P1".into()],
            ..SharingFacts::default()
        }
    }

    fn in_team() -> SharingFacts {
        SharingFacts {
            care_links: vec![link(ME, NOW - HOUR, None)],
            ..facts()
        }
    }

    fn emergency(start: Micros, end: Micros) -> EmergencyAccess {
        EmergencyAccess {
            practitioner: ME.into(),
            start,
            end,
        }
    }

    struct Case {
        name: &'static str,
        requester: Requester,
        resource: Resource,
        action: Action,
        purpose: Purpose,
        facts: SharingFacts,
        expect: Reason,
    }

    fn case(name: &'static str, facts: SharingFacts, resource: Resource, expect: Reason) -> Case {
        Case {
            name,
            requester: pro(),
            resource,
            action: Action::Read,
            purpose: Purpose::Care,
            facts,
            expect,
        }
    }

    #[test]
    fn the_access_decision_table() {
        let with = |f: &dyn Fn(&mut SharingFacts)| {
            let mut x = in_team();
            f(&mut x);
            x
        };
        let mut cases = vec![
            // Who asks.
            Case {
                requester: Requester::Anonymous,
                ..case(
                    "anonymous",
                    in_team(),
                    normal_doc(),
                    Reason::NotAuthenticated,
                )
            },
            Case {
                requester: Requester::Professional {
                    national_id: ME.into(),
                    second_factor: false,
                    active: true,
                },
                ..case(
                    "password only",
                    in_team(),
                    normal_doc(),
                    Reason::SecondFactorRequired,
                )
            },
            Case {
                requester: Requester::Professional {
                    national_id: ME.into(),
                    second_factor: true,
                    active: false,
                },
                ..case(
                    "closed practitioner, even in the care team",
                    in_team(),
                    normal_doc(),
                    Reason::PractitionerClosed,
                )
            },
            Case {
                requester: Requester::OtherUser,
                ..case(
                    "secretary account",
                    in_team(),
                    normal_doc(),
                    Reason::NotAHealthProfessional,
                )
            },
            // Care team and its limits.
            case(
                "care team reads a document",
                in_team(),
                normal_doc(),
                Reason::CareTeam,
            ),
            case(
                "care team reads plugin clinical data",
                in_team(),
                Resource::ClinicalRecord,
                Reason::CareTeam,
            ),
            Case {
                action: Action::Write,
                ..case(
                    "care team deposits a document",
                    in_team(),
                    doc(Some(ME), Confidentiality::Normal),
                    Reason::Author,
                )
            },
            case(
                "outside the care team",
                facts(),
                normal_doc(),
                Reason::NotInCareTeam,
            ),
            case(
                "care link ended",
                SharingFacts {
                    care_links: vec![link(ME, NOW - 2 * HOUR, Some(NOW - HOUR))],
                    ..facts()
                },
                normal_doc(),
                Reason::NotInCareTeam,
            ),
            case(
                "care link not yet started",
                SharingFacts {
                    care_links: vec![link(ME, NOW + HOUR, None)],
                    ..facts()
                },
                normal_doc(),
                Reason::NotInCareTeam,
            ),
            case(
                "someone else's care link",
                SharingFacts {
                    care_links: vec![link(OTHER, NOW - HOUR, None)],
                    ..facts()
                },
                normal_doc(),
                Reason::NotInCareTeam,
            ),
            // Consent.
            case(
                "explicit consent outside the team",
                SharingFacts {
                    choices: PatientChoices {
                        consents: vec![(ME.into(), None)],
                        ..PatientChoices::default()
                    },
                    ..facts()
                },
                normal_doc(),
                Reason::ExplicitConsent,
            ),
            case(
                "explicit consent expired",
                SharingFacts {
                    choices: PatientChoices {
                        consents: vec![(ME.into(), Some(NOW - 1))],
                        ..PatientChoices::default()
                    },
                    ..facts()
                },
                normal_doc(),
                Reason::NotInCareTeam,
            ),
            case(
                "objection stops the care team",
                with(&|f| f.choices.objects_to_sharing = true),
                normal_doc(),
                Reason::PatientObjects,
            ),
            case(
                "objection, then consent to one professional",
                with(&|f| {
                    f.choices.objects_to_sharing = true;
                    f.choices.consents = vec![(ME.into(), None)];
                }),
                normal_doc(),
                Reason::ExplicitConsent,
            ),
            case(
                "blocked professional in the care team",
                with(&|f| f.choices.blocked = vec![ME.into()]),
                normal_doc(),
                Reason::BlockedByPatient,
            ),
            case(
                "blocked author loses their own document too",
                with(&|f| f.choices.blocked = vec![ME.into()]),
                doc(Some(ME), Confidentiality::Normal),
                Reason::BlockedByPatient,
            ),
            case(
                "another professional's block does not matter",
                with(&|f| f.choices.blocked = vec![OTHER.into()]),
                normal_doc(),
                Reason::CareTeam,
            ),
            case(
                "masked document",
                with(&|f| f.choices.masked_documents = vec!["doc-1".into()]),
                normal_doc(),
                Reason::DocumentMasked,
            ),
            case(
                "masked document, author still sees it",
                with(&|f| f.choices.masked_documents = vec!["doc-1".into()]),
                doc(Some(ME), Confidentiality::Normal),
                Reason::Author,
            ),
            case(
                "author outside the care team",
                facts(),
                doc(Some(ME), Confidentiality::Normal),
                Reason::Author,
            ),
            case(
                "very restricted: care team is not enough",
                in_team(),
                doc(Some(OTHER), Confidentiality::VeryRestricted),
                Reason::VeryRestricted,
            ),
            case(
                "very restricted with explicit consent",
                with(&|f| f.choices.consents = vec![(ME.into(), None)]),
                doc(Some(OTHER), Confidentiality::VeryRestricted),
                Reason::ExplicitConsent,
            ),
            case(
                "restricted is shared with the care team",
                in_team(),
                doc(Some(OTHER), Confidentiality::Restricted),
                Reason::CareTeam,
            ),
            // Emergency access.
            Case {
                purpose: Purpose::Emergency,
                ..case(
                    "declared emergency",
                    SharingFacts {
                        emergencies: vec![emergency(NOW - HOUR, NOW + HOUR)],
                        ..facts()
                    },
                    normal_doc(),
                    Reason::Emergency,
                )
            },
            case(
                "declared emergency covers ordinary requests",
                SharingFacts {
                    emergencies: vec![emergency(NOW - HOUR, NOW + HOUR)],
                    ..facts()
                },
                normal_doc(),
                Reason::Emergency,
            ),
            Case {
                purpose: Purpose::Emergency,
                ..case(
                    "expired emergency",
                    SharingFacts {
                        emergencies: vec![emergency(NOW - 2 * HOUR, NOW - HOUR)],
                        ..facts()
                    },
                    normal_doc(),
                    Reason::EmergencyExpired,
                )
            },
            case(
                "expired emergency, ordinary request",
                SharingFacts {
                    emergencies: vec![emergency(NOW - 2 * HOUR, NOW - HOUR)],
                    ..facts()
                },
                normal_doc(),
                Reason::NotInCareTeam,
            ),
            Case {
                purpose: Purpose::Emergency,
                ..case(
                    "emergency never declared",
                    facts(),
                    normal_doc(),
                    Reason::EmergencyNotDeclared,
                )
            },
            Case {
                purpose: Purpose::Emergency,
                ..case(
                    "emergency objected beforehand",
                    SharingFacts {
                        choices: PatientChoices {
                            objects_to_emergency: true,
                            ..PatientChoices::default()
                        },
                        emergencies: vec![emergency(NOW - HOUR, NOW + HOUR)],
                        ..facts()
                    },
                    normal_doc(),
                    Reason::EmergencyObjected,
                )
            },
            case(
                "emergency objected: no silent cover of ordinary requests",
                SharingFacts {
                    choices: PatientChoices {
                        objects_to_emergency: true,
                        ..PatientChoices::default()
                    },
                    emergencies: vec![emergency(NOW - HOUR, NOW + HOUR)],
                    ..facts()
                },
                normal_doc(),
                Reason::NotInCareTeam,
            ),
            case(
                "a declared emergency despite an objection to sharing",
                SharingFacts {
                    choices: PatientChoices {
                        objects_to_sharing: true,
                        ..PatientChoices::default()
                    },
                    emergencies: vec![emergency(NOW - HOUR, NOW + HOUR)],
                    ..facts()
                },
                normal_doc(),
                Reason::Emergency,
            ),
            case(
                "emergency does not unmask a document",
                SharingFacts {
                    choices: PatientChoices {
                        masked_documents: vec!["doc-1".into()],
                        ..PatientChoices::default()
                    },
                    emergencies: vec![emergency(NOW - HOUR, NOW + HOUR)],
                    ..facts()
                },
                normal_doc(),
                Reason::DocumentMasked,
            ),
            // Identity, consent records, access log.
            case(
                "a professional finds a patient",
                facts(),
                Resource::Identity,
                Reason::IdentityLookup,
            ),
            case(
                "a blocked professional cannot even find the patient",
                SharingFacts {
                    choices: PatientChoices {
                        blocked: vec![ME.into()],
                        ..PatientChoices::default()
                    },
                    ..facts()
                },
                Resource::Identity,
                Reason::BlockedByPatient,
            ),
            case(
                "care team reads the consents",
                in_team(),
                Resource::Consent,
                Reason::CareTeam,
            ),
            case(
                "the access log is the patient's",
                in_team(),
                Resource::AccessLog,
                Reason::NotAPatientOfThisAccount,
            ),
            Case {
                requester: Requester::IdentityStaff {
                    second_factor: true,
                },
                ..case(
                    "identity staff see identities",
                    facts(),
                    Resource::Identity,
                    Reason::IdentityVigilance,
                )
            },
            Case {
                requester: Requester::IdentityStaff {
                    second_factor: true,
                },
                ..case(
                    "identity staff never see documents",
                    in_team(),
                    normal_doc(),
                    Reason::NotAHealthProfessional,
                )
            },
            Case {
                requester: Requester::IdentityStaff {
                    second_factor: false,
                },
                ..case(
                    "identity staff need a second factor",
                    facts(),
                    Resource::Identity,
                    Reason::SecondFactorRequired,
                )
            },
            // The patient.
            Case {
                requester: Requester::Patient {
                    regional_ids: vec!["P1".into()],
                },
                ..case(
                    "patient reads their masked document",
                    with(&|f| f.choices.masked_documents = vec!["doc-1".into()]),
                    normal_doc(),
                    Reason::OwnRecord,
                )
            },
            Case {
                requester: Requester::Patient {
                    regional_ids: vec!["P1".into()],
                },
                ..case(
                    "patient reads their access log",
                    facts(),
                    Resource::AccessLog,
                    Reason::OwnRecord,
                )
            },
            Case {
                requester: Requester::Patient {
                    regional_ids: vec!["P1".into()],
                },
                action: Action::Write,
                ..case(
                    "patient manages consent",
                    facts(),
                    Resource::Consent,
                    Reason::OwnRecord,
                )
            },
            Case {
                requester: Requester::Patient {
                    regional_ids: vec!["P1".into()],
                },
                action: Action::Write,
                ..case(
                    "patient does not write clinical documents",
                    facts(),
                    normal_doc(),
                    Reason::NotAHealthProfessional,
                )
            },
            Case {
                requester: Requester::Patient {
                    regional_ids: vec!["P2".into()],
                },
                ..case(
                    "another patient's record",
                    facts(),
                    Resource::Identity,
                    Reason::NotAPatientOfThisAccount,
                )
            },
            Case {
                requester: Requester::Patient {
                    regional_ids: vec!["P0".into()],
                },
                ..case(
                    "a record merged into the account's patient",
                    SharingFacts {
                        regional_ids: vec!["P1".into(), "P0".into()],
                        ..facts()
                    },
                    normal_doc(),
                    Reason::OwnRecord,
                )
            },
        ];
        // Systems.
        let system = |scope_granted, is_custodian| Requester::System {
            client_id: "his-brest".into(),
            scope_granted,
            is_custodian,
        };
        cases.extend([
            Case {
                requester: system(false, true),
                ..case(
                    "system without scope",
                    facts(),
                    normal_doc(),
                    Reason::NoScope,
                )
            },
            Case {
                requester: system(true, false),
                action: Action::Write,
                ..case(
                    "hospital deposits despite an objection",
                    SharingFacts {
                        choices: PatientChoices {
                            objects_to_sharing: true,
                            ..PatientChoices::default()
                        },
                        ..facts()
                    },
                    normal_doc(),
                    Reason::SystemScope,
                )
            },
            Case {
                requester: system(true, true),
                ..case(
                    "hospital reads back its own document",
                    SharingFacts {
                        choices: PatientChoices {
                            objects_to_sharing: true,
                            ..PatientChoices::default()
                        },
                        ..facts()
                    },
                    normal_doc(),
                    Reason::SystemScope,
                )
            },
            Case {
                requester: system(true, false),
                ..case(
                    "another hospital's document under objection",
                    SharingFacts {
                        choices: PatientChoices {
                            objects_to_sharing: true,
                            ..PatientChoices::default()
                        },
                        ..facts()
                    },
                    normal_doc(),
                    Reason::PatientObjects,
                )
            },
            Case {
                requester: system(true, false),
                ..case(
                    "system, masked document",
                    SharingFacts {
                        choices: PatientChoices {
                            masked_documents: vec!["doc-1".into()],
                            ..PatientChoices::default()
                        },
                        ..facts()
                    },
                    normal_doc(),
                    Reason::DocumentMasked,
                )
            },
            Case {
                requester: system(true, false),
                ..case(
                    "system reads the access log",
                    facts(),
                    Resource::AccessLog,
                    Reason::NotAHealthProfessional,
                )
            },
        ]);
        let mut failures = Vec::new();
        for c in &cases {
            let got = decide(&AccessRequest {
                requester: &c.requester,
                resource: &c.resource,
                action: c.action,
                purpose: c.purpose,
                facts: &c.facts,
                now: NOW,
            });
            if got.reason != c.expect || got.allowed != c.expect.allows() {
                failures.push(format!(
                    "{}: expected {:?}, got {:?}",
                    c.name, c.expect, got.reason
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert!(cases.len() >= 45, "the table covers every rule");
    }

    #[test]
    fn emergency_declaration_rules() {
        let mut choices = PatientChoices::default();
        assert_eq!(may_declare_emergency(ME, &choices), Ok(()));
        choices.objects_to_emergency = true;
        assert_eq!(
            may_declare_emergency(ME, &choices),
            Err(Reason::EmergencyObjected)
        );
        choices.objects_to_emergency = false;
        choices.blocked = vec![ME.into()];
        assert_eq!(
            may_declare_emergency(ME, &choices),
            Err(Reason::BlockedByPatient)
        );
    }

    #[test]
    fn reason_codes_are_distinct_and_texts_bilingual() {
        let all = ALL_REASONS;
        let codes: std::collections::BTreeSet<_> = all.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), all.len());
        for r in all {
            assert!(r.text().contains(" / "), "{r:?} has French and English");
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(
                json,
                format!("\"{}\"", r.code()),
                "serde agrees with code()"
            );
        }
    }
}
