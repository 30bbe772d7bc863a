//! Opted-out numbers: one entry per number in the `optouts` tree while it is opted out.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, decode, encode};

/// A number that asked for no more messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OptOut {
    /// E.164.
    pub number: String,
    /// Since when.
    pub opted_out_at: DateTime<Utc>,
    /// `keyword` (the customer texted STOP or another stop word) or `api`.
    pub source: String,
    /// The keyword as received, for `keyword`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    /// The inbound message that asked, for `keyword`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_id: Option<String>,
    /// The caller's note, for `api`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Store {
    /// Records an opt-out; `false` when the number was already opted out (the first record
    /// stays).
    pub fn opt_out(&self, o: &OptOut) -> Result<bool, StoreError> {
        let _w = self.writing();
        let v = encode(o)?;
        let r = self.inner.optouts.compare_and_swap(
            o.number.as_bytes(),
            None as Option<&[u8]>,
            Some(v),
        )?;
        Ok(r.is_ok())
    }

    /// Removes an opt-out; the record removed, `None` when the number was not opted out.
    pub fn opt_in(&self, number: &str) -> Result<Option<OptOut>, StoreError> {
        let _w = self.writing();
        match self.inner.optouts.remove(number.as_bytes())? {
            Some(v) => Ok(Some(decode(number.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    /// The opt-out of a number, if it is opted out.
    pub fn optout(&self, number: &str) -> Result<Option<OptOut>, StoreError> {
        match self.inner.optouts.get(number.as_bytes())? {
            Some(v) => Ok(Some(decode(number.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    /// Whether a number is opted out.
    pub fn is_opted_out(&self, number: &str) -> Result<bool, StoreError> {
        Ok(self.inner.optouts.contains_key(number.as_bytes())?)
    }

    /// Opted-out numbers in number order, after `after`, at most `limit` (1 to 1000).
    pub fn list_optouts(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OptOut>, StoreError> {
        let limit = limit.clamp(1, 1000);
        let mut out = Vec::new();
        let iter = match after {
            Some(a) => {
                let mut start = a.as_bytes().to_vec();
                start.push(0);
                self.inner.optouts.range(start..)
            }
            None => self.inner.optouts.iter(),
        };
        for r in iter {
            let (k, v) = r?;
            out.push(decode(&k, &v)?);
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// Number of opted-out numbers.
    pub fn optouts_len(&self) -> usize {
        self.inner.optouts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: &str) -> OptOut {
        OptOut {
            number: n.into(),
            opted_out_at: Utc::now(),
            source: "api".into(),
            keyword: None,
            inbound_id: None,
            note: None,
        }
    }

    #[tokio::test]
    async fn opt_out_in_and_list() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path(), 16).unwrap();
            assert!(s.opt_out(&rec("+12025550123")).unwrap());
            let mut again = rec("+12025550123");
            again.source = "keyword".into();
            assert!(!s.opt_out(&again).unwrap(), "already opted out");
            assert_eq!(s.optout("+12025550123").unwrap().unwrap().source, "api");
            assert!(s.opt_out(&rec("+12025550124")).unwrap());
            assert!(s.opt_out(&rec("+12025550125")).unwrap());
            s.durable().await.unwrap();
        }
        let s = Store::open(dir.path(), 16).unwrap();
        assert!(s.is_opted_out("+12025550124").unwrap());
        assert_eq!(s.optouts_len(), 3);
        let p1 = s.list_optouts(None, 2).unwrap();
        assert_eq!(p1.len(), 2);
        let p2 = s.list_optouts(Some(&p1[1].number), 2).unwrap();
        assert_eq!(p2.len(), 1);
        assert_eq!(p2[0].number, "+12025550125");
        assert!(s.opt_in("+12025550124").unwrap().is_some());
        assert!(s.opt_in("+12025550124").unwrap().is_none());
        assert!(!s.is_opted_out("+12025550124").unwrap());
    }
}
