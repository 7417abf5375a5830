//! Partial updates: commands carry `Option`s for the fields to change; events carry only what
//! actually changed.

/// The requested value when it differs from the current one; `None` when nothing changes.
pub(crate) fn changed<T: PartialEq>(requested: Option<T>, current: &T) -> Option<T> {
    requested.filter(|value| value != current)
}

/// Applies an optional change to a field.
pub(crate) fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}
