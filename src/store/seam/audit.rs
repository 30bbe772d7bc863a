//! The store's seam ([`super`]): the audit log of admin actions.

use super::*;

impl Store {
    /// Appends an action to the audit log, chained to the entry before. Durable after
    /// [`Store::durable`].
    pub fn append_audit(&self, a: &NewAudit<'_>) -> Result<AuditEntry, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.append_audit(a),
            Backend::Postgres(db) => db.append_audit(a),
        }
    }

    /// Audit entries, oldest first, at most `limit`.
    pub fn audit_entries(
        &self,
        filter: &AuditFilter<'_>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.audit_entries(filter, limit),
            Backend::Postgres(db) => db.audit_entries(filter, limit),
        }
    }

    /// Checks the audit log's chain.
    pub fn verify_audit(&self) -> Result<AuditVerify, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.verify_audit(),
            Backend::Postgres(db) => db.verify_audit(),
        }
    }
}
