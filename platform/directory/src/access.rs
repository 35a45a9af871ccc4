//! Look-ups for authentication and authorisation: is this national id an active practitioner,
//! with which profession, specialties and roles; and which practitioners were closed since a
//! given time (for a shared revocation list). Plain async functions over [`Database`].
//!
//! Every call reads the database: a closure committed by an import is seen by the next call.

use megalis_store::{Database, with_pool};

use crate::Result;
use crate::model::Coded;

/// An active practitioner as authentication sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PractitionerAccess {
    /// `8`+RPPS or `0`+ADELI.
    pub national_id: String,
    pub family_name: String,
    pub given_name: String,
    /// TRE_G15 profession.
    pub profession: Coded,
    pub category: Coded,
    /// Distinct TRE_R38 specialties of the active roles.
    pub specialties: Vec<Coded>,
    /// Active roles (activities), with their site.
    pub roles: Vec<RoleAt>,
}

/// One active role of a practitioner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAt {
    /// The PractitionerRole id.
    pub activity_id: String,
    /// The Organization id (structure technical id), absent without a declared site.
    pub structure_id: Option<String>,
    pub organisation_name: Option<String>,
    pub finess_site: Option<String>,
    pub profession: Coded,
    pub specialty: Coded,
    /// `L` libéral, `S` salarié, `B` bénévole.
    pub mode: Option<String>,
}

/// Whether a practitioner is known, and if closed, since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PractitionerStatus {
    pub active: bool,
    /// Microseconds since the Unix epoch, when the practitioner was closed.
    pub closed_since_us: Option<i64>,
}

/// The active practitioner with this national id (`8`+RPPS), with profession, specialties and
/// active roles; `None` when unknown or closed.
pub async fn active_practitioner(
    db: &Database,
    national_id: &str,
) -> Result<Option<PractitionerAccess>> {
    type P = (String, String, String, String, String, String, String);
    let p: Option<P> = with_pool!(db, pool => sqlx::query_as(
        "SELECT national_id, family_name, given_name, profession_code, profession_label, \
         category_code, category_label FROM dir_practitioner WHERE national_id = $1 AND active")
        .bind(national_id).fetch_optional(pool).await)?;
    let Some((national_id, family_name, given_name, pc, pl, cc, cl)) = p else {
        return Ok(None);
    };
    type R = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        String,
        String,
        String,
        Option<String>,
    );
    let rows: Vec<R> = with_pool!(db, pool => sqlx::query_as(
        "SELECT a.activity_id, a.structure_id, o.name, o.finess_site, a.profession_code, \
         a.profession_label, a.specialty_code, a.specialty_label, a.mode_code \
         FROM dir_activity a LEFT JOIN dir_organisation o ON o.structure_id = a.structure_id \
         WHERE a.national_id = $1 AND a.active ORDER BY a.activity_id")
        .bind(&national_id).fetch_all(pool).await)?;
    let roles: Vec<RoleAt> = rows
        .into_iter()
        .map(|(id, sid, name, finess, pc, pl, sc, sl, mode)| RoleAt {
            activity_id: id,
            structure_id: sid,
            organisation_name: name,
            finess_site: finess,
            profession: Coded::new(pc, pl),
            specialty: Coded::new(sc, sl),
            mode,
        })
        .collect();
    let mut specialties: Vec<Coded> = Vec::new();
    for r in &roles {
        if !r.specialty.is_empty() && !specialties.contains(&r.specialty) {
            specialties.push(r.specialty.clone());
        }
    }
    Ok(Some(PractitionerAccess {
        national_id,
        family_name,
        given_name,
        profession: Coded::new(pc, pl),
        category: Coded::new(cc, cl),
        specialties,
        roles,
    }))
}

/// The status of a practitioner, `None` when the directory never listed them.
pub async fn practitioner_status(
    db: &Database,
    national_id: &str,
) -> Result<Option<PractitionerStatus>> {
    let row: Option<(bool, Option<i64>)> = with_pool!(db, pool => sqlx::query_as(
        "SELECT active, closed_at_us FROM dir_practitioner WHERE national_id = $1")
        .bind(national_id).fetch_optional(pool).await)?;
    Ok(row.map(|(active, closed_since_us)| PractitionerStatus {
        active,
        closed_since_us,
    }))
}

/// True when the practitioner is listed and active (unknown ids are not active).
pub async fn is_active(db: &Database, national_id: &str) -> Result<bool> {
    Ok(practitioner_status(db, national_id)
        .await?
        .is_some_and(|s| s.active))
}

/// Practitioners closed at or after `since_us` (microseconds since the epoch), oldest first:
/// `(national id, closed at)`. For a revocation list refreshed by polling.
pub async fn closed_since(db: &Database, since_us: i64) -> Result<Vec<(String, i64)>> {
    Ok(with_pool!(db, pool => sqlx::query_as(
        "SELECT national_id, closed_at_us FROM dir_practitioner \
         WHERE NOT active AND closed_at_us >= $1 ORDER BY closed_at_us, national_id")
        .bind(since_us).fetch_all(pool).await)?)
}
