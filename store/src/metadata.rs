//! Metadata attached to every event a command appends: who acted, which request it belongs to
//! (correlation), what caused it (causation), and the client's idempotency key if any.

use crate::error::Failure;
use domain::error::Invalid;
use std::collections::HashMap;
use uuid::Uuid;

/// Who and why, for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandMetadata {
    /// The authenticated principal, pseudonymous: a learner id, an administrator's id or a
    /// service name such as `lms_service`. Never a username or an email: the log is permanent
    /// and erasure does not reach it.
    pub actor: String,
    /// Shared by every command done for one request or one process.
    pub correlation_id: Uuid,
    /// The command or event that caused this command, when another did.
    pub causation_id: Option<Uuid>,
    /// A client-chosen key: a command repeated with the same key on the same stream returns
    /// the first outcome and appends nothing.
    pub idempotency_key: Option<String>,
}

impl CommandMetadata {
    /// Metadata for a command by `actor`, starting a new correlation.
    pub fn new(actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            idempotency_key: None,
        }
    }

    /// The same actor and correlation, for a command caused by `cause`.
    pub fn caused_by(&self, cause: Uuid) -> Self {
        Self {
            actor: self.actor.clone(),
            correlation_id: self.correlation_id,
            causation_id: Some(cause),
            idempotency_key: None,
        }
    }

    /// Sets the idempotency key: 1 to 255 visible ASCII characters.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Result<Self, Failure> {
        let key = key.into();
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Failure::Invalid(Invalid::new(
                "idempotency_key",
                "must be 1 to 255 visible ASCII characters",
            )));
        }
        self.idempotency_key = Some(key);
        Ok(self)
    }

    pub(crate) fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([
            ("actor".to_string(), self.actor.clone()),
            (
                "correlation_id".to_string(),
                self.correlation_id.to_string(),
            ),
        ]);
        if let Some(cause) = self.causation_id {
            map.insert("causation_id".to_string(), cause.to_string());
        }
        if let Some(key) = &self.idempotency_key {
            map.insert("idempotency_key".to_string(), key.clone());
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_holds_every_field_that_is_set() {
        let meta = CommandMetadata::new("admin")
            .caused_by(Uuid::nil())
            .with_idempotency_key("req-1")
            .unwrap();
        let map = meta.to_map();
        assert_eq!(map["actor"], "admin");
        assert_eq!(map["causation_id"], Uuid::nil().to_string());
        assert_eq!(map["idempotency_key"], "req-1");
        assert!(map.contains_key("correlation_id"));
    }

    #[test]
    fn blank_or_odd_idempotency_keys_are_refused() {
        for bad in ["", "has space", &"k".repeat(256)] {
            let err = CommandMetadata::new("a")
                .with_idempotency_key(bad)
                .unwrap_err();
            assert!(matches!(err, Failure::Invalid(ref i) if i.field == "idempotency_key"));
        }
    }
}
