//! The store's seam ([`super`]): reminder plans and message templates.

use super::*;

impl Store {
    /// Changes a plan and its messages in one transaction: see [`SledStore::change_plan`].
    pub fn change_plan<R>(
        &self,
        id: &str,
        decide: impl Fn(&Plan, &BTreeMap<String, Message>) -> Decision<R>,
        idempotency: Option<(&str, &IdempotencyRecord)>,
        actor: Option<&str>,
    ) -> Result<Option<(Plan, R)>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.change_plan(id, decide, idempotency, actor),
            Backend::Postgres(db) => db.change_plan(id, decide, idempotency, actor),
        }
    }

    /// Stores a new plan and its messages in one transaction, unless its invoice has one.
    pub fn create_plan(
        &self,
        plan: &Plan,
        messages: &[Message],
        idempotency: Option<(&str, &IdempotencyRecord)>,
    ) -> Result<Created, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.create_plan(plan, messages, idempotency),
            Backend::Postgres(db) => db.create_plan(plan, messages, idempotency),
        }
    }

    /// A plan by id.
    pub fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.plan(id),
            Backend::Postgres(db) => db.plan(id),
        }
    }

    /// The plan of an invoice.
    pub fn plan_by_invoice(&self, invoice: &str) -> Result<Option<Plan>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.plan_by_invoice(invoice),
            Backend::Postgres(db) => db.plan_by_invoice(invoice),
        }
    }

    /// Plans, newest first, after the cursor `after` (a plan id), at most `limit`.
    pub fn list_plans(
        &self,
        after: Option<&str>,
        limit: usize,
        keep: impl Fn(&Plan) -> bool,
    ) -> Result<Vec<Plan>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.list_plans(after, limit, keep),
            Backend::Postgres(db) => db.list_plans(after, limit, keep),
        }
    }

    /// A template set through the API.
    pub fn template(&self, name: &str) -> Result<Option<StoredTemplate>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.template(name),
            Backend::Postgres(db) => db.template(name),
        }
    }

    /// Sets a template; call [`Store::durable`] before acknowledging.
    pub fn put_template(&self, name: &str, t: &StoredTemplate) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.put_template(name, t),
            Backend::Postgres(db) => db.put_template(name, t),
        }
    }

    /// Removes a template set through the API; whether there was one.
    pub fn delete_template(&self, name: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.delete_template(name),
            Backend::Postgres(db) => db.delete_template(name),
        }
    }

    /// Every template set through the API, by name.
    pub fn templates(&self) -> Result<Vec<(String, StoredTemplate)>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.templates(),
            Backend::Postgres(db) => db.templates(),
        }
    }
}
