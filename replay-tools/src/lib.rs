//! The operators' and auditors' CLI: consent history, rebuilds, export, import and
//! verification of the log. Not built yet; the crate exists so the workspace has its final shape.
