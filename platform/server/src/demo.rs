//! The documented demo region (`--demo`): organisations, practitioners, accounts with known
//! passwords (printed in the start banner), applications and their grants, and a population of
//! patients fed by three hospitals (see [`patients`]). Seeding is idempotent: a restart keeps
//! what exists. Test mode uses the same practitioners so that end-to-end tests log in as
//! documented users.

use std::sync::Arc;

use megalis_auth::grants::{Application, GrantKind, GrantRule};
use megalis_auth::oidc::{GrantType, NewClient};
use megalis_auth::{AccountKind, Auth, AuthError, NewAccount, PractitionerInfo, StaticDirectory};

/// Synthetic FINESS numbers (99… is not allocated): CHU de Rennes and CHU de Brest stand-ins.
pub const ORG_RENNES: &str = "359999001";
pub const ORG_BREST: &str = "299999001";

pub struct DemoUser {
    pub username: &'static str,
    pub password: &'static str,
    pub kind: AccountKind,
    pub display_name: &'static str,
    pub national_id: Option<&'static str>,
    pub organisation: Option<&'static str>,
    pub roles: &'static [&'static str],
}

pub const USERS: &[DemoUser] = &[
    DemoUser {
        username: "admin",
        password: "Demo-Breizh-Gouarn-2026!",
        kind: AccountKind::Admin,
        display_name: "Administrateur régional",
        national_id: None,
        organisation: None,
        roles: &["admin"],
    },
    DemoUser {
        username: "alegoff",
        password: "Demo-Docteur-Rennes-29!",
        kind: AccountKind::Professional,
        display_name: "Dr Anne Le Goff",
        national_id: Some("810001234567"),
        organisation: None,
        roles: &["clinician"],
    },
    DemoUser {
        username: "ykerbrat",
        password: "Demo-Infirmier-Brest-29!",
        kind: AccountKind::Professional,
        display_name: "Yann Kerbrat",
        national_id: Some("810007654321"),
        organisation: None,
        roles: &["clinician"],
    },
    DemoUser {
        username: "identito",
        password: "Demo-Vigilance-Vannes-56!",
        kind: AccountKind::Staff,
        display_name: "Cellule d'identitovigilance, Rennes",
        national_id: None,
        organisation: Some(ORG_RENNES),
        roles: &["identity"],
    },
    DemoUser {
        username: "redaction",
        password: "Demo-Editeur-Quimper-29!",
        kind: AccountKind::Staff,
        display_name: "Rédaction Megalis",
        national_id: None,
        organisation: Some(ORG_RENNES),
        roles: &["editor"],
    },
    DemoUser {
        username: "secretariat.rennes",
        password: "Demo-Secretariat-Rennes-35!",
        kind: AccountKind::Staff,
        display_name: "Secrétariat néphrologie, Rennes",
        national_id: None,
        organisation: Some(ORG_RENNES),
        roles: &["secretariat"],
    },
    DemoUser {
        username: "dpo",
        password: "Demo-Protection-Donnees-35!",
        kind: AccountKind::Staff,
        display_name: "Délégué à la protection des données",
        national_id: None,
        organisation: Some(ORG_RENNES),
        roles: &["privacy-officer"],
    },
];

/// The demo directory: a physician (profession 10) in Rennes and a nurse (profession 60) in Brest.
pub fn practitioners() -> Vec<PractitionerInfo> {
    vec![
        PractitionerInfo {
            national_id: "810001234567".into(),
            family_name: "Le Goff".into(),
            given_name: "Anne".into(),
            profession: Some("10".into()),
            specialty: Some("SM54".into()),
            organisations: vec![ORG_RENNES.into()],
        },
        PractitionerInfo {
            national_id: "810007654321".into(),
            family_name: "Kerbrat".into(),
            given_name: "Yann".into(),
            profession: Some("60".into()),
            specialty: None,
            organisations: vec![ORG_BREST.into()],
        },
    ]
}

pub fn directory(seed: bool) -> Arc<StaticDirectory> {
    Arc::new(if seed {
        StaticDirectory::new(practitioners())
    } else {
        StaticDirectory::default()
    })
}

fn ignore_conflict(r: Result<(), AuthError>) -> Result<(), AuthError> {
    match r {
        Err(AuthError::Conflict(_)) => Ok(()),
        other => other,
    }
}

/// Seeds accounts, applications and grants of the demo region.
pub async fn seed(auth: &Auth, public_url: &str) -> Result<(), AuthError> {
    for u in USERS {
        let new = NewAccount {
            username: u.username.into(),
            kind: u.kind,
            national_id: u.national_id.map(Into::into),
            organisation: u.organisation.map(Into::into),
            display_name: u.display_name.into(),
            roles: u.roles.iter().map(|r| r.to_string()).collect(),
            password: Some(u.password.into()),
        };
        ignore_conflict(
            megalis_auth::account::create(&auth.db, &new)
                .await
                .map(|_| ()),
        )?;
    }
    let apps = [
        ("breizh-rein", "Breizh Rein (maladie rénale chronique)"),
        ("messagerie", "Messagerie sécurisée MSSanté"),
        ("imagerie", "Imagerie médicale"),
        ("teleconsultation", "Téléconsultation"),
    ];
    for (id, name) in apps {
        megalis_auth::grants::register_application(
            &auth.db,
            &Application {
                id: id.into(),
                name: name.into(),
                launch_url: Some(format!("{public_url}/apps/{id}/")),
            },
        )
        .await?;
    }
    // A demo OIDC client for Breizh Rein, with a documented secret (demo only).
    ignore_conflict(
        megalis_auth::oidc::add_client(
            &auth.db,
            &NewClient {
                id: "breizh-rein".into(),
                name: "Breizh Rein".into(),
                secret: "demo-secret-breizh-rein-0123456789abcdef".into(),
                grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
                redirect_uris: vec![format!("{public_url}/apps/breizh-rein/callback")],
                post_logout_redirect_uris: vec![format!("{public_url}/apps/breizh-rein/")],
                scopes: vec![
                    "openid".into(),
                    "profile".into(),
                    "offline_access".into(),
                    "user/Patient.rs".into(),
                    "user/Observation.rs".into(),
                ],
                launch_url: Some(format!("{public_url}/apps/breizh-rein/")),
            },
        )
        .await,
    )?;
    let rules = [
        ("breizh-rein", GrantKind::Profession, "10"),
        ("messagerie", GrantKind::Everyone, ""),
        ("imagerie", GrantKind::Organisation, ORG_RENNES),
        ("teleconsultation", GrantKind::Profession, "10"),
        ("teleconsultation", GrantKind::Profession, "60"),
    ];
    for (application, kind, value) in rules {
        auth.add_grant(&GrantRule {
            application: application.into(),
            kind,
            value: value.into(),
        })
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_accounts_meet_the_account_rules() {
        for u in USERS {
            megalis_auth::password::check_policy(u.password, u.username)
                .unwrap_or_else(|e| panic!("{}: {e}", u.username));
            if u.kind == AccountKind::Staff {
                assert!(
                    u.organisation.is_some(),
                    "{}: staff need an organisation",
                    u.username
                );
            }
        }
    }
}

pub mod patients {
    //! The demo population: about forty patients as the identity feeds of three hospitals
    //! (CHU de Rennes, CHU de Brest, CH de Vannes) send them, through the same
    //! [`PatientIndex::apply`] as the MLLP and FHIR feeds, so that matching decides as it would
    //! in production. Each message has a redelivery key: a second start applies nothing again,
    //! and what a person decided in the meantime (a merge undone, a review closed) stays.
    //!
    //! What it shows (documented in `docs/clinician-guide.md`):
    //! - LE GALL Maëlys, LE BIHAN Hélène: records of several hospitals linked automatically;
    //! - KERGUELEN Yves: linked on the same INS retrieved from INSi, a qualified identity whose INS
    //!   is shown;
    //! - TANGUY Soizic: linked, with a disagreement on the birthplace between two hospitals;
    //! - LE ROUX Gwenaël (a mistyped birth date), PRIGENT/GUILLOU Annick (the used name typed as
    //!   birth name), CADIOU Erwan (one first name instead of two), each with no birthplace on
    //!   one side: three possible duplicates in review;
    //! - HAMON Bernadette: two records of the CH de Vannes merged by the hospital (A40), to undo;
    //! - LE DUFF Tristan and Gurvan: twins, kept apart; LE GOFF Marie: two homonyms;
    //! - ANONYME: a fictitious identity (FICTI), never linked; BRANELLEC Solenn: doubtful (DOUTE).

    use megalis_audit::Actor;
    use megalis_identity_index::identity::{
        Attributes, Demographics, IdentityStatus, Ins, Sex, SourceId, SourceRecord, StrictTraits,
        ins,
    };
    use megalis_identity_index::{Applied, Change, IndexError, MessageKey, PatientIndex};

    /// The demo hospitals: assigning authority OID (`1.2.250.1.71.4.2.2.` + FINESS), name,
    /// HL7 sender.
    pub const HOSPITALS: [(&str, &str, &str); 3] = [
        (
            "1.2.250.1.71.4.2.2.359999001",
            "CHU de Rennes",
            "DXCARE|CHU_RENNES",
        ),
        (
            "1.2.250.1.71.4.2.2.299999001",
            "CHU de Brest",
            "ORBIS|CHU_BREST",
        ),
        (
            "1.2.250.1.71.4.2.2.569999001",
            "CH de Vannes",
            "HOPITAL_MANAGER|CH_VANNES",
        ),
    ];
    const RENNES: usize = 0;
    const BREST: usize = 1;
    const VANNES: usize = 2;

    /// 2026-01-05 00:00 UTC: the demo records' first update, one day apart each.
    const BASE_US: i64 = 1_767_571_200_000_000;
    const DAY_US: i64 = 86_400_000_000;

    /// One record as a hospital sends it.
    struct P {
        hospital: usize,
        ipp: &'static str,
        birth_name: &'static str,
        first_names: &'static [&'static str],
        birth_date: (i32, u8, u8),
        sex: Sex,
        birthplace: Option<&'static str>,
        status: IdentityStatus,
        used_name: Option<&'static str>,
        /// The INS order number (3 digits): the INS is built from sex, birth year and month,
        /// birthplace and this, under the demonstration OID.
        ins_order: Option<&'static str>,
        /// The birthplace the INS was built from, when the record's own is wrong.
        ins_place: Option<&'static str>,
        attributes: Attributes,
    }

    #[allow(clippy::too_many_arguments)]
    fn p(
        hospital: usize,
        ipp: &'static str,
        birth_name: &'static str,
        first_names: &'static [&'static str],
        birth_date: (i32, u8, u8),
        sex: Sex,
        birthplace: Option<&'static str>,
        status: IdentityStatus,
    ) -> P {
        P {
            hospital,
            ipp,
            birth_name,
            first_names,
            birth_date,
            sex,
            birthplace,
            status,
            used_name: None,
            ins_order: None,
            ins_place: None,
            attributes: Attributes::default(),
        }
    }

    impl P {
        fn used(mut self, name: &'static str) -> Self {
            self.used_name = Some(name);
            self
        }
        fn ins(mut self, order: &'static str) -> Self {
            self.ins_order = Some(order);
            self
        }
        /// An INS built from another birthplace than the record's (a mistyped birthplace).
        fn ins_born(mut self, place: &'static str, order: &'static str) -> Self {
            self.ins_place = Some(place);
            self.ins_order = Some(order);
            self
        }
        fn fictitious(mut self) -> Self {
            self.attributes.fictitious = true;
            self
        }
        fn doubtful(mut self) -> Self {
            self.attributes.doubtful = true;
            self
        }
        fn homonym(mut self) -> Self {
            self.attributes.homonym = true;
            self
        }

        fn record(&self, n: usize) -> Result<SourceRecord, IndexError> {
            let (y, m, d) = self.birth_date;
            let month = time::Month::try_from(m)
                .map_err(|e| IndexError::Corrupt(format!("demo month: {e}")))?;
            let birth_date = time::Date::from_calendar_date(y, month, d)
                .map_err(|e| IndexError::Corrupt(format!("demo date: {e}")))?;
            let ins = match (self.ins_order, self.ins_place.or(self.birthplace)) {
                (Some(order), Some(place)) => {
                    let sex = if self.sex == Sex::Female { '2' } else { '1' };
                    let number = format!("{sex}{:02}{m:02}{place}{order}", y % 100);
                    Some(Ins::parse(&ins::with_key(&number)?, ins::OID_DEMO, true)?)
                }
                _ => None,
            };
            Ok(SourceRecord {
                id: SourceId {
                    authority: HOSPITALS[self.hospital].0.to_string(),
                    local_id: self.ipp.to_string(),
                },
                ins,
                demographics: Demographics {
                    traits: StrictTraits {
                        birth_name: self.birth_name.to_string(),
                        birth_first_names: self.first_names.iter().map(|s| s.to_string()).collect(),
                        birth_date,
                        sex: self.sex,
                        birthplace: self.birthplace.map(str::to_string),
                    },
                    used_name: self.used_name.map(str::to_string),
                    used_first_name: None,
                    address: None,
                    telecom: None,
                },
                status: self.status,
                attributes: self.attributes,
                updated_us: BASE_US + DAY_US * n as i64,
            })
        }
    }

    /// The records, in the order the hospitals send them.
    #[rustfmt::skip]
    fn records() -> Vec<P> {
        use IdentityStatus::{Prov, Qual, Recup, Vali};
        use Sex::{Female as F, Male as M, Unknown as U};
        vec![
            // Patients known to one hospital.
            p(RENNES, "35100001", "GUILLOUX", &["Nolwenn"], (1984, 7, 21), F, Some("35238"), Vali),
            p(RENNES, "35100002", "PERRIN", &["Mathieu", "Louis"], (1971, 11, 2), M, Some("35288"), Prov),
            p(RENNES, "35100003", "ROUAULT", &["Claire"], (1993, 4, 17), F, Some("35238"), Qual).ins("201"),
            p(RENNES, "35100004", "BERTHELOT", &["Hervé"], (1949, 12, 30), M, Some("35238"), Vali),
            p(RENNES, "35100005", "LEMOINE", &["Chantal"], (1956, 8, 8), F, None, Prov).used("DUVAL"),
            p(RENNES, "35100006", "HUBERT", &["Lucas"], (2019, 2, 25), M, Some("35238"), Prov),
            p(RENNES, "35100007", "GICQUEL", &["Armelle"], (1967, 5, 13), F, Some("22278"), Recup).ins("088"),
            p(RENNES, "35100008", "FOUCAULT", &["Pierre"], (1938, 3, 3), M, Some("44109"), Vali),
            p(RENNES, "35100020", "DANIEL", &["Maryvonne"], (1941, 4, 22), F, Some("35238"), Vali),
            p(BREST, "29200001", "QUÉMÉNER", &["Goulven"], (1979, 9, 9), M, Some("29019"), Qual).ins("154"),
            p(BREST, "29200002", "LE BRIS", &["Katell"], (1988, 1, 19), F, Some("29232"), Vali),
            p(BREST, "29200003", "PAUGAM", &["Yann"], (1962, 6, 26), M, Some("29151"), Prov),
            p(BREST, "29200004", "CALVEZ", &["Rozenn"], (2001, 10, 5), F, Some("29019"), Recup).ins("311"),
            p(BREST, "29200005", "LE GUEN", &["Marie-Thérèse", "Jeanne"], (1944, 2, 11), F, Some("29019"), Vali).used("ABGRALL"),
            p(BREST, "29200006", "MADEC", &["Ewen"], (2015, 12, 1), M, Some("29019"), Prov),
            p(BREST, "29200014", "CARIOU", &["Tifenn"], (1986, 7, 7), F, Some("29019"), Prov),
            p(BREST, "29200007", "BRANELLEC", &["Solenn"], (1975, 3, 28), F, Some("29232"), Prov).doubtful(),
            p(VANNES, "56300001", "JAFFRÉ", &["Gwendal"], (1982, 8, 14), M, Some("56260"), Vali),
            p(VANNES, "56300002", "LE PORT", &["Anne-Laure"], (1990, 11, 23), F, Some("56121"), Qual).ins("067"),
            p(VANNES, "56300003", "EVENO", &["Joseph"], (1931, 7, 4), M, Some("56007"), Prov),
            p(VANNES, "56300004", "GUYOMARD", &["Lénaïg"], (1998, 5, 30), F, Some("56260"), Vali),
            p(VANNES, "56300005", "NICOLAS", &["Maurice"], (1953, 1, 9), M, Some("56121"), Recup).ins("140"),
            p(VANNES, "56300006", "ROBIC", &["Sandrine"], (1970, 10, 16), F, Some("56260"), Prov).used("LE TOUZO"),
            p(VANNES, "56300013", "LE CORRE", &["Nathalie"], (1968, 12, 19), F, Some("56121"), Vali),
            p(VANNES, "56300014", "MAHÉ", &["Gaëlle"], (2005, 2, 14), F, Some("56260"), Prov),
            // Two homonyms: same names, different persons (HOMON: never linked without a person).
            p(VANNES, "56300007", "LE GOFF", &["Marie"], (1985, 3, 12), F, Some("56260"), Vali).homonym(),
            p(RENNES, "35100009", "LE GOFF", &["Marie"], (1979, 6, 2), F, Some("35238"), Vali).homonym(),
            // Linked automatically: the same traits in two hospitals.
            p(RENNES, "35100010", "LE GALL", &["Maëlys"], (1996, 2, 7), F, Some("35238"), Vali),
            p(BREST, "29200008", "LE GALL", &["Maëlys"], (1996, 2, 7), F, Some("35238"), Vali),
            // Linked on the same INS retrieved from INSi; qualified in Rennes: the INS is shown.
            p(BREST, "29200009", "KERGUELEN", &["Yves", "Marie"], (1950, 4, 18), M, Some("29151"), Recup).ins("042"),
            p(RENNES, "35100011", "KERGUELEN", &["Yves", "Marie"], (1950, 4, 18), M, Some("29151"), Qual).ins("042"),
            // Linked (same INS typed from the carte Vitale), the birthplace disagrees: a conflict.
            p(VANNES, "56300008", "TANGUY", &["Soizic"], (1958, 3, 12), F, Some("56260"), Qual).ins("117"),
            p(RENNES, "35100012", "TANGUY", &["Soizic"], (1958, 3, 12), F, Some("56121"), Prov).ins_born("56260", "117"),
            // Accents, case and spaces do not matter: three hospitals, one patient.
            p(RENNES, "35100013", "Le Bihan", &["Hélène"], (1973, 9, 24), F, Some("22113"), Vali),
            p(VANNES, "56300009", "LE BIHAN", &["HELENE"], (1973, 9, 24), F, Some("22113"), Vali),
            p(BREST, "29200010", "LEBIHAN", &["Helene"], (1973, 9, 24), F, Some("22113"), Prov),
            // Possible duplicates for a person to decide: no birthplace (nor INS) on one side and
            // a difference in the four traits left: a mistyped birth date…
            p(RENNES, "35100014", "LE ROUX", &["Gwenaël"], (1975, 6, 4), M, Some("35238"), Vali),
            p(BREST, "29200011", "LE ROUX", &["Gwenaël"], (1975, 6, 14), M, None, Prov),
            // …the used name typed as birth name…
            p(RENNES, "35100015", "PRIGENT", &["Annick"], (1962, 9, 30), F, Some("22278"), Vali).used("GUILLOU"),
            p(VANNES, "56300010", "GUILLOU", &["Annick"], (1962, 9, 30), F, None, Prov),
            // …one first name instead of two.
            p(BREST, "29200012", "CADIOU", &["Erwan", "Yves"], (1990, 1, 15), M, Some("29019"), Vali),
            p(RENNES, "35100016", "CADIOU", &["Erwan"], (1990, 1, 15), M, None, Prov),
            // Twins: same name, date and birthplace, different first names: never linked.
            p(RENNES, "35100017", "LE DUFF", &["Tristan"], (2012, 5, 9), M, Some("35238"), Vali),
            p(RENNES, "35100018", "LE DUFF", &["Gurvan"], (2012, 5, 9), M, Some("35238"), Vali),
            p(BREST, "29200013", "LE DUFF", &["Tristan"], (2012, 5, 9), M, Some("35238"), Vali),
            // Two records of one patient in Vannes (typos at admission, too many to be matched),
            // merged by the hospital.
            p(VANNES, "56300011", "HAMON", &["Bernadette"], (1947, 11, 20), F, Some("56260"), Vali),
            p(VANNES, "56300012", "HAMMON", &["Bernadete"], (1947, 11, 21), F, None, Prov),
            // Anonymous care: a fictitious identity.
            p(RENNES, "35100019", "ANONYME", &["Urgences"], (1980, 1, 1), U, None, Prov).fictitious(),
        ]
    }

    /// The name of a demo hospital's assigning authority.
    pub fn authority_name(oid: &str) -> Option<&'static str> {
        HOSPITALS.iter().find(|h| h.0 == oid).map(|h| h.1)
    }

    /// Feeds the demo population; returns how many messages were applied now (0 on a restart).
    pub async fn seed(index: &PatientIndex) -> Result<usize, IndexError> {
        let mut applied = 0;
        for (n, person) in records().iter().enumerate() {
            let (_, _, sender) = HOSPITALS[person.hospital];
            let actor = Actor::new(sender);
            let control_id = format!("DEMO-{}", person.ipp);
            let change = Change::Upsert(person.record(n)?);
            let key = MessageKey {
                sender,
                control_id: &control_id,
                ack: "MSA|AA|demo",
            };
            if let Applied::Done(_) = index.apply(&actor, &[change], Some(key)).await? {
                applied += 1;
            }
        }
        // The CH de Vannes merges its two records of HAMON Bernadette (ADT A40).
        let (vannes, _, sender) = HOSPITALS[VANNES];
        let source = |ipp: &str| SourceId {
            authority: vannes.to_string(),
            local_id: ipp.to_string(),
        };
        let merge = Change::MergeSources {
            survivor: source("56300011"),
            merged: source("56300012"),
        };
        let key = MessageKey {
            sender,
            control_id: "DEMO-A40-56300012",
            ack: "MSA|AA|demo",
        };
        if let Applied::Done(_) = index
            .apply(&Actor::new(sender), &[merge], Some(key))
            .await?
        {
            applied += 1;
        }
        Ok(applied)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use megalis_identity_index::identity::matching::{Decision, MatchConfig, MatchRecord};

        /// What the demo shows depends on the matcher's weights and rules: if they change, this
        /// says which story of the guide no longer holds.
        #[test]
        fn the_demo_pairs_decide_as_documented() {
            use Decision::{Distinct, Link, Review};
            let records = records();
            let by_ipp = |ipp: &str| {
                let (n, p) = records
                    .iter()
                    .enumerate()
                    .find(|(_, p)| p.ipp == ipp)
                    .unwrap_or_else(|| panic!("{ipp}"));
                MatchRecord::from_source(&p.record(n).unwrap())
            };
            let config = MatchConfig::default();
            let cases = [
                ("LE GALL", "35100010", "29200008", Link),
                ("KERGUELEN", "29200009", "35100011", Link),
                ("TANGUY", "56300008", "35100012", Link),
                ("LE BIHAN", "35100013", "56300009", Link),
                ("LEBIHAN", "35100013", "29200010", Link),
                ("LE ROUX", "35100014", "29200011", Review),
                ("PRIGENT", "35100015", "56300010", Review),
                ("CADIOU", "29200012", "35100016", Review),
                ("twins", "35100017", "35100018", Distinct),
                ("Tristan", "35100017", "29200013", Link),
                ("HAMON", "56300011", "56300012", Distinct),
            ];
            for (name, a, b, expected) in cases {
                let (decision, score, c) = config.decide(&by_ipp(a), &by_ipp(b));
                assert_eq!(
                    decision, expected,
                    "{name}: score {score}, levels {:?}",
                    c.levels
                );
            }
        }

        #[test]
        fn every_demo_record_is_valid() {
            let today = time::macros::date!(2026 - 11 - 25);
            let records = records();
            for (n, p) in records.iter().enumerate() {
                let r = p.record(n).unwrap();
                r.validate(today)
                    .unwrap_or_else(|e| panic!("{}: {e}", p.ipp));
                assert_eq!(r.ins.is_some(), p.ins_order.is_some(), "{}", p.ipp);
            }
            let mut ipps: Vec<_> = records.iter().map(|p| (p.hospital, p.ipp)).collect();
            ipps.sort();
            ipps.dedup();
            assert_eq!(ipps.len(), records.len(), "one record per IPP");
        }
    }
}

/// The name of a demo hospital's assigning authority (the portal shows it instead of the OID).
pub fn authority_name(oid: &str) -> Option<&'static str> {
    patients::authority_name(oid)
}

pub mod publications {
    //! The demo articles, written by the `redaction` demo account: a public article on the
    //! regional platform and patients' rights (published), a professionals' article on the
    //! chronic kidney disease pathway (published), and a public article on preparing a
    //! teleconsultation, scheduled a week after the first start (it appears by itself). A
    //! restart adds nothing: an article whose address exists is left as it is, whatever an
    //! editor did to it since.

    use megalis_auth::Auth;
    use megalis_publications::{
        Action, ArticleInput, PublicationError, Publications, slug::slugify,
    };

    /// When a demo article goes out.
    #[derive(Clone, Copy)]
    enum When {
        Now,
        InDays(i64),
    }

    struct DemoArticle {
        title: &'static str,
        audience: &'static str,
        tags: &'static str,
        body: &'static str,
        when: When,
    }

    const ARTICLES: [DemoArticle; 3] = [
        DemoArticle {
            title: "La plateforme régionale de e-santé et vos droits de patient",
            audience: "public",
            tags: "Droits des patients, Plateforme régionale",
            when: When::Now,
            body: "Megalis est la plateforme régionale de e-santé de Bretagne. Elle permet aux \
hôpitaux, aux réseaux de soins et aux professionnels de santé qui vous soignent de partager, \
de façon sécurisée, les informations utiles à votre prise en charge.

## Qui peut voir vos informations ?

Les professionnels de votre **équipe de soins** peuvent partager les informations nécessaires \
à votre suivi, sauf si vous vous y opposez. En dehors de l'équipe de soins, votre \
**consentement** est nécessaire (loi n° 2002-303 du 4 mars 2002 relative aux droits des \
malades et à la qualité du système de santé).

En cas d'urgence, si vous ne pouvez pas donner votre accord et que votre vie est en danger, un \
professionnel peut accéder à votre dossier (« bris de glace »), sauf si vous vous y étiez \
opposé auparavant. Cet accès est tracé et vous est signalé.

## Vos droits

- **Savoir qui a consulté votre dossier** : chaque accès est enregistré dans un journal \
infalsifiable que vous pouvez consulter.
- **Vous opposer** au partage de vos informations, ou **bloquer** l'accès d'un professionnel \
donné.
- **Masquer** un document à certains professionnels.
- **Accéder** aux informations de santé qui vous concernent (article L1111-7 du Code de la \
santé publique).

Pour exercer ces droits, adressez-vous à l'établissement qui vous soigne ou au délégué à la \
protection des données de la plateforme.",
        },
        DemoArticle {
            title: "Maladie rénale chronique : le parcours de soins régional",
            audience: "professionals",
            tags: "Néphrologie, Parcours de soins, Breizh Rein",
            when: When::Now,
            body: "Le parcours régional de la maladie rénale chronique (MRC) s'appuie sur \
l'application **Breizh Rein**, ouverte aux médecins depuis le lanceur d'applications.

## Estimer le débit de filtration glomérulaire

Le DFG est estimé par l'équation **CKD-EPI 2021**, sans coefficient ethnique, à partir de la \
créatinine sérique (en mg/dL : µmol/L ÷ 88,4), de l'âge et du sexe.

## Classer selon KDIGO

| Stade | DFG (mL/min/1,73 m²) |
|---|---|
| G1 | ≥ 90 |
| G2 | 60 à 89 |
| G3a | 45 à 59 |
| G3b | 30 à 44 |
| G4 | 15 à 29 |
| G5 | < 15 |

L'albuminurie complète la classification : **A1** < 3 mg/mmol, **A2** de 3 à 30 mg/mmol, \
**A3** > 30 mg/mmol (rapport albumine/créatinine urinaire).

## Alertes du parcours

- déclin du DFG de plus de **5 mL/min/1,73 m² par an** ;
- kaliémie à **5,5**, **6,0** et **6,5 mmol/L** (trois niveaux d'alerte) ;
- en dialyse, un **Kt/V** inférieur à 1,2 (cible 1,4).

Les données du registre REIN (date de début du traitement, modalité, démarrage en urgence, \
cathéter, comorbidités, inscription sur liste de greffe) sont saisies dans Breizh Rein.",
        },
        DemoArticle {
            title: "Téléconsultation : bien se préparer",
            audience: "public",
            tags: "Téléconsultation, Conseils",
            when: When::InDays(7),
            body: "Votre médecin vous propose une consultation à distance ? Quelques conseils \
pour qu'elle se passe bien.

1. Installez-vous dans un endroit calme et bien éclairé.
2. Vérifiez votre connexion, votre caméra et votre micro quelques minutes avant.
3. Préparez votre carte Vitale, vos ordonnances et la liste de vos traitements.
4. Ouvrez le lien personnel reçu de votre médecin : il ne sert qu'une fois. Vous patientez \
dans une salle d'attente jusqu'à ce que le médecin vous admette.

La téléconsultation se déroule comme une consultation au cabinet : elle est confidentielle \
et votre consentement est recueilli.",
        },
    ];

    /// Writes the demo articles that do not exist yet; the number written.
    pub async fn seed(auth: &Auth, now_us: i64) -> Result<usize, PublicationError> {
        let store = Publications::new(auth.db.clone());
        let author_id = match megalis_auth::account::by_username(&auth.db, "redaction").await {
            Ok(Some(a)) => a.id,
            _ => "redaction".to_string(),
        };
        let mut written = 0;
        for a in &ARTICLES {
            if store.by_slug(&slugify(a.title)).await?.is_some() {
                continue;
            }
            let input = ArticleInput::parse(a.title, a.body, a.audience, a.tags)?;
            let draft = store
                .create(&input, &author_id, "Rédaction Megalis", now_us)
                .await?;
            let action = match a.when {
                When::Now => Action::Publish,
                When::InDays(days) => Action::Schedule {
                    at_us: now_us + days * 86_400_000_000,
                },
            };
            store
                .apply(&draft.id, draft.version, action, now_us)
                .await?;
            written += 1;
        }
        Ok(written)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn demo_articles_are_valid_and_render_without_loss() {
            for a in &ARTICLES {
                let input = ArticleInput::parse(a.title, a.body, a.audience, a.tags)
                    .unwrap_or_else(|e| panic!("{}: {e}", a.title));
                let html = megalis_publications::markdown::render(&input.body);
                assert!(
                    html.contains("<h2>") || html.contains("<ol>"),
                    "{}",
                    a.title
                );
                assert!(
                    !html.contains('\\'),
                    "no stray line continuation in {}",
                    a.title
                );
            }
            let table = megalis_publications::markdown::render(ARTICLES[1].body);
            assert!(table.contains("<td>G3a</td>"), "{table}");
        }
    }
}
