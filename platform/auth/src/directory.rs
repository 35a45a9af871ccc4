//! What authentication needs from the directory of health professionals.
//!
//! The directory (crate `megalis-directory`) owns practitioners; authentication only asks "who is
//! the active practitioner with this national id" when it opens a session or issues a token.
//! The trait keeps the two contexts apart; the server wires the directory's implementation.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;

use crate::Result;

/// An active practitioner as the directory knows them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PractitionerInfo {
    /// `8` + RPPS (or `0` + ADELI).
    pub national_id: String,
    pub family_name: String,
    pub given_name: String,
    /// TRE_G15 code (10 = médecin).
    pub profession: Option<String>,
    /// TRE_R38 code.
    pub specialty: Option<String>,
    /// Identifiers (FINESS/SIRET) of the organisations where they practise.
    pub organisations: Vec<String>,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Looks up active practitioners. `None` for an unknown or closed practitioner.
pub trait PractitionerLookup: Send + Sync {
    fn active_practitioner<'a>(
        &'a self,
        national_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<PractitionerInfo>>>;

    /// Practitioners closed at or after `since_us` (microseconds since the epoch), with the time
    /// of closure. Polled every second so that tokens of a closed practitioner are refused by
    /// every replica without a database query per validation. The default knows of none.
    fn closed_since(&self, since_us: i64) -> BoxFuture<'_, Result<Vec<(String, i64)>>> {
        let _ = since_us;
        Box::pin(async { Ok(vec![]) })
    }
}

/// An in-memory directory: the demo region before the directory crate is wired, and tests.
#[derive(Default)]
pub struct StaticDirectory {
    practitioners: RwLock<HashMap<String, PractitionerInfo>>,
    /// Closures, with their time, for [`PractitionerLookup::closed_since`].
    closed: RwLock<Vec<(String, i64)>>,
}

impl StaticDirectory {
    pub fn new(practitioners: impl IntoIterator<Item = PractitionerInfo>) -> Self {
        StaticDirectory {
            practitioners: RwLock::new(
                practitioners
                    .into_iter()
                    .map(|p| (p.national_id.clone(), p))
                    .collect(),
            ),
            closed: RwLock::default(),
        }
    }

    /// Closes a practitioner (they are no longer returned).
    pub fn close(&self, national_id: &str) {
        self.practitioners
            .write()
            .expect("directory lock")
            .remove(national_id);
        self.closed
            .write()
            .expect("directory lock")
            .push((national_id.to_string(), crate::now_us()));
    }

    pub fn insert(&self, p: PractitionerInfo) {
        self.practitioners
            .write()
            .expect("directory lock")
            .insert(p.national_id.clone(), p);
    }
}

impl PractitionerLookup for StaticDirectory {
    fn active_practitioner<'a>(
        &'a self,
        national_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<PractitionerInfo>>> {
        let found = self
            .practitioners
            .read()
            .expect("directory lock")
            .get(national_id)
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    fn closed_since(&self, since_us: i64) -> BoxFuture<'_, Result<Vec<(String, i64)>>> {
        let closed: Vec<(String, i64)> = self
            .closed
            .read()
            .expect("directory lock")
            .iter()
            .filter(|(_, at)| *at >= since_us)
            .cloned()
            .collect();
        Box::pin(async move { Ok(closed) })
    }
}
