//! Templates set through the API, in the `templates` table.

use super::body::{col, from_body, to_body};
use super::{PgStore, db_error};
use crate::store::StoreError;
use crate::store::plans::StoredTemplate;

impl PgStore {
    /// A template set through the API.
    pub fn template(&self, name: &str) -> Result<Option<StoredTemplate>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_opt("SELECT body FROM templates WHERE name = $1", &[&name])
                .await
                .map_err(db_error)?;
            row.map(|r| from_body(name, col(&r, 0, name)?)).transpose()
        })
    }

    /// Sets a template (replacing the one of that name).
    pub fn put_template(&self, name: &str, t: &StoredTemplate) -> Result<(), StoreError> {
        let body = to_body(t)?;
        self.run(async {
            let c = self.client().await?;
            c.execute(
                "INSERT INTO templates (name, body) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body",
                &[&name, &body],
            )
            .await
            .map_err(db_error)?;
            Ok(())
        })
    }

    /// Removes a template set through the API; whether there was one.
    pub fn delete_template(&self, name: &str) -> Result<bool, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let n = c
                .execute("DELETE FROM templates WHERE name = $1", &[&name])
                .await
                .map_err(db_error)?;
            Ok(n > 0)
        })
    }

    /// Every template set through the API, by name (byte order, as the embedded store).
    pub fn templates(&self) -> Result<Vec<(String, StoredTemplate)>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    r#"SELECT name, body FROM templates ORDER BY name COLLATE "C""#,
                    &[],
                )
                .await
                .map_err(db_error)?;
            rows.iter()
                .map(|r| {
                    let name: String = col(r, 0, "templates")?;
                    let t = from_body(&name, col(r, 1, &name)?)?;
                    Ok((name, t))
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::super::body::testing::places;
    use super::*;

    fn t(text: &str) -> StoredTemplate {
        StoredTemplate {
            text: text.into(),
            updated_at: Utc::now(),
            updated_by: "ops".into(),
        }
    }

    #[tokio::test]
    async fn templates_are_set_replaced_listed_and_removed() {
        for p in places() {
            let s = p.open();
            let b = p.name();
            assert_eq!(s.template("reminder").unwrap(), None, "{b}");
            assert!(s.templates().unwrap().is_empty(), "{b}");
            s.put_template("reminder", &t("first")).unwrap();
            s.put_template("Zeta", &t("z")).unwrap();
            s.put_template("alpha", &t("a")).unwrap();
            let second = t("second {{ name }}");
            s.put_template("reminder", &second).unwrap();
            s.durable().await.unwrap();
            drop(s);
            let s = p.open();
            assert_eq!(s.template("reminder").unwrap(), Some(second.clone()), "{b}");
            let names: Vec<String> = s.templates().unwrap().into_iter().map(|(n, _)| n).collect();
            assert_eq!(names, ["Zeta", "alpha", "reminder"], "{b}: byte order");
            assert!(s.delete_template("reminder").unwrap(), "{b}");
            assert!(!s.delete_template("reminder").unwrap(), "{b}");
            assert_eq!(s.template("reminder").unwrap(), None, "{b}");
            assert_eq!(s.templates().unwrap().len(), 2, "{b}");
        }
    }
}
