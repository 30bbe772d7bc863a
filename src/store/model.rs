//! The message as the store keeps it: the domain's types (see [`crate::domain`]), under the
//! path the store's code and its callers have always used.

pub use crate::domain::{
    Attempt, AttemptResult, Event, Message, Note, Part, PartStatus, Priority, ReminderLink, Reply,
    Status, StepKind,
};
