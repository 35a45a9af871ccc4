//! Blocking: only records sharing at least one key are compared, so that matching costs a few
//! dozen comparisons per record rather than one per patient of the region.
//!
//! Keys (each chosen to survive a different kind of error):
//! - phonetic birth name (without particles) + birth year: survives typos in the date's day and
//!   month, and spelling variants of the name;
//! - birth date + sex: survives any change of name (used name typed as birth name, big typos);
//! - INS prefix (sex, year, month, department and commune of birth: 10 characters): survives a
//!   wrong birth date typed next to a correct INS;
//! - phonetic used name + birth year: a used name typed as birth name in another source.

use super::model::MatchRecord;

/// The blocking keys of a record (prefixed by kind so that keys of two kinds never collide).
pub fn blocking_keys(r: &MatchRecord) -> Vec<String> {
    let year = r.birth_date.year();
    let mut keys = Vec::with_capacity(4);
    if !r.birth_phonetic.is_empty() {
        keys.push(format!("n:{}:{year}", r.birth_phonetic));
    }
    keys.push(format!("d:{}:{}", r.birth_date, r.sex.hl7()));
    if let Some(ins) = &r.ins {
        keys.push(format!("i:{}", &ins[..10]));
    }
    if let Some(p) = r
        .used_phonetic
        .as_deref()
        .filter(|p| !p.is_empty() && *p != r.birth_phonetic)
    {
        keys.push(format!("n:{p}:{year}"));
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::tests::sample;

    #[test]
    fn keys_of_a_record() {
        let r = MatchRecord::from_source(&sample(crate::IdentityStatus::Qual));
        let keys = blocking_keys(&r);
        assert_eq!(
            keys,
            [
                "n:LEGOF:1969".to_string(),
                "d:1969-02-14:F".to_string(),
                format!("i:{}", &r.ins.as_ref().unwrap()[..10]),
                "n:MORVAN:1969".to_string(),
            ]
        );
    }
}
