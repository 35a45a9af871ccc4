//! Authentication's view of the directory: the `megalis_auth::PractitionerLookup` the auth
//! service uses, answered by the directory crate's look-ups on the shared database.

use std::sync::Arc;

use megalis_auth::directory::BoxFuture;
use megalis_auth::{AuthError, PractitionerInfo, PractitionerLookup, StaticDirectory};
use megalis_directory::DirectoryError;
use megalis_store::Database;

pub struct DirectoryLookup {
    db: Database,
    /// Demo and test modes: practitioners of the documented demo region, used when the
    /// directory has not imported them.
    demo: Option<Arc<StaticDirectory>>,
}

impl DirectoryLookup {
    pub fn new(db: Database, demo: Option<Arc<StaticDirectory>>) -> Self {
        DirectoryLookup { db, demo }
    }
}

fn auth_error(e: DirectoryError) -> AuthError {
    match e {
        DirectoryError::Store(s) => AuthError::Store(s),
        DirectoryError::Database(d) => AuthError::from(d),
        other => AuthError::Internal(other.to_string()),
    }
}

impl PractitionerLookup for DirectoryLookup {
    fn active_practitioner<'a>(
        &'a self,
        national_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<PractitionerInfo>, AuthError>> {
        Box::pin(async move {
            let found = megalis_directory::access::active_practitioner(&self.db, national_id)
                .await
                .map_err(auth_error)?;
            if let Some(p) = found {
                let mut organisations: Vec<String> = Vec::new();
                for r in &p.roles {
                    // The FINESS of the site when there is one (what grants name), else the
                    // structure's national id.
                    if let Some(o) = r.finess_site.clone().or_else(|| r.structure_id.clone())
                        && !organisations.contains(&o)
                    {
                        organisations.push(o);
                    }
                }
                return Ok(Some(PractitionerInfo {
                    national_id: p.national_id,
                    family_name: p.family_name,
                    given_name: p.given_name,
                    profession: Some(p.profession.code).filter(|c| !c.is_empty()),
                    specialty: p.specialties.first().map(|s| s.code.clone()),
                    organisations,
                }));
            }
            match &self.demo {
                // A practitioner the directory knows and closed stays closed, demo or not.
                Some(demo)
                    if megalis_directory::access::practitioner_status(&self.db, national_id)
                        .await
                        .map_err(auth_error)?
                        .is_none() =>
                {
                    demo.active_practitioner(national_id).await
                }
                _ => Ok(None),
            }
        })
    }

    fn closed_since(&self, since_us: i64) -> BoxFuture<'_, Result<Vec<(String, i64)>, AuthError>> {
        Box::pin(async move {
            megalis_directory::access::closed_since(&self.db, since_us)
                .await
                .map_err(auth_error)
        })
    }
}
