//! Why a channel configuration command is refused.

use super::command::Channel;
use crate::error::{DomainError, ErrorKind, Invalid};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChannelError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no such channel configuration")]
    ConfigurationNotFound,
    #[error("the channel configuration already exists")]
    ConfigurationAlreadyExists,
    #[error("the command's configuration id differs from this stream's")]
    ConfigIdMismatch,
    #[error("a {configured} configuration cannot take {requested} settings")]
    ChannelMismatch {
        configured: Channel,
        requested: Channel,
    },
}

impl DomainError for ChannelError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::Validation,
            Self::ConfigurationNotFound => ErrorKind::NotFound,
            Self::ConfigurationAlreadyExists
            | Self::ConfigIdMismatch
            | Self::ChannelMismatch { .. } => ErrorKind::Conflict,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid(invalid) => Some(invalid.field),
            _ => None,
        }
    }
}
