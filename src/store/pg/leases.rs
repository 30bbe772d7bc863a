//! Leases in PostgreSQL (see [`crate::store::lease`]): one row per lease, changed under its row
//! lock, timed by the database's clock.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{PgStore, db_error};
use crate::store::StoreError;
use crate::store::lease::{Hold, Lease};

impl PgStore {
    /// Takes or renews lease `name` for `owner` for `ttl`: free, expired or already `owner`'s.
    pub fn hold(&self, name: &str, owner: &str, ttl: Duration) -> Result<Hold, StoreError> {
        let secs = ttl.as_secs_f64();
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(db_error)?;
            let inserted = tx
                .execute(
                    "INSERT INTO leases (name, owner, expires_at, acquired_at) \
                     VALUES ($1, $2, now() + make_interval(secs => $3), now()) \
                     ON CONFLICT (name) DO NOTHING",
                    &[&name, &owner, &secs],
                )
                .await
                .map_err(db_error)?;
            if inserted == 1 {
                tx.commit().await.map_err(db_error)?;
                return Ok(Hold::Mine {
                    fresh: true,
                    from: None,
                });
            }
            let row = tx
                .query_one(
                    "SELECT owner, expires_at, expires_at <= now() FROM leases WHERE name = $1 \
                     FOR UPDATE",
                    &[&name],
                )
                .await
                .map_err(db_error)?;
            let holder: String = row.try_get(0).map_err(db_error)?;
            let until: DateTime<Utc> = row.try_get(1).map_err(db_error)?;
            let expired: bool = row.try_get(2).map_err(db_error)?;
            let hold = if holder == owner {
                tx.execute(
                    "UPDATE leases SET expires_at = now() + make_interval(secs => $2) \
                     WHERE name = $1",
                    &[&name, &secs],
                )
                .await
                .map_err(db_error)?;
                Hold::Mine {
                    fresh: false,
                    from: None,
                }
            } else if expired {
                tx.execute(
                    "UPDATE leases SET owner = $2, expires_at = now() + make_interval(secs => $3), \
                     acquired_at = now() WHERE name = $1",
                    &[&name, &owner, &secs],
                )
                .await
                .map_err(db_error)?;
                Hold::Mine {
                    fresh: true,
                    from: Some(holder),
                }
            } else {
                Hold::Theirs { holder, until }
            };
            tx.commit().await.map_err(db_error)?;
            Ok(hold)
        })
    }

    /// Gives lease `name` up, if `owner` holds it: another gateway may take it at once.
    pub fn let_go(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                "DELETE FROM leases WHERE name = $1 AND owner = $2",
                &[&name, &owner],
            )
            .await
            .map_err(db_error)?;
            Ok(())
        })
    }

    /// Removes leases that expired more than an hour ago (those of reminder steps' prechecks,
    /// of modems and jobs no longer anyone's). Returns how many.
    pub fn forget_stale_leases(&self) -> Result<u64, StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                "DELETE FROM leases WHERE expires_at < now() - interval '1 hour'",
                &[],
            )
            .await
            .map_err(db_error)
        })
    }

    /// Every lease, by name.
    pub fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT name, owner, expires_at, acquired_at FROM leases ORDER BY name",
                    &[],
                )
                .await
                .map_err(db_error)?;
            rows.iter()
                .map(|r| {
                    Ok(Lease {
                        name: r.try_get(0).map_err(db_error)?,
                        owner: r.try_get(1).map_err(db_error)?,
                        expires_at: r.try_get(2).map_err(db_error)?,
                        acquired_at: r.try_get(3).map_err(db_error)?,
                    })
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pg::testdb;

    #[test]
    fn a_lease_is_one_gateways_until_it_expires_then_anothers() {
        let Some(url) = testdb::database() else {
            return;
        };
        let a = PgStore::connect(&url, Vec::new()).unwrap();
        let b = PgStore::connect(&url, Vec::new()).unwrap();
        let ttl = Duration::from_millis(600);
        assert_eq!(
            a.hold("modem:sim0", "a", ttl).unwrap(),
            Hold::Mine {
                fresh: true,
                from: None
            }
        );
        // Renewed by its holder: not fresh; refused to the other.
        assert_eq!(
            a.hold("modem:sim0", "a", ttl).unwrap(),
            Hold::Mine {
                fresh: false,
                from: None
            }
        );
        match b.hold("modem:sim0", "b", ttl).unwrap() {
            Hold::Theirs { holder, .. } => assert_eq!(holder, "a"),
            other => panic!("{other:?}"),
        }
        // Not renewed: the other takes it over once it has expired.
        std::thread::sleep(Duration::from_millis(700));
        assert_eq!(
            b.hold("modem:sim0", "b", ttl).unwrap(),
            Hold::Mine {
                fresh: true,
                from: Some("a".into())
            }
        );
        assert!(!a.hold("modem:sim0", "a", ttl).unwrap().is_mine());
        // Given up: free at once.
        b.let_go("modem:sim0", "b").unwrap();
        assert!(a.hold("modem:sim0", "a", ttl).unwrap().is_mine());
        let leases = a.leases().unwrap();
        assert_eq!(leases.len(), 1);
        assert_eq!(leases[0].owner, "a");
    }

    #[test]
    fn gateways_racing_for_a_free_lease_get_one_holder() {
        let Some(url) = testdb::database() else {
            return;
        };
        let stores: Vec<_> = (0..4)
            .map(|_| std::sync::Arc::new(PgStore::connect(&url, Vec::new()).unwrap()))
            .collect();
        let threads: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let s = s.clone();
                std::thread::spawn(move || {
                    s.hold("job:webhooks", &format!("g{i}"), Duration::from_secs(30))
                        .unwrap()
                        .is_mine()
                })
            })
            .collect();
        let winners = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|w| *w)
            .count();
        assert_eq!(winners, 1);
    }
}
