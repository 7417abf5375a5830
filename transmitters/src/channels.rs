//! The channel clients, one module each, and the choice of one for a configuration.

use crate::channel::ChannelClient;
use crate::cornerstone::Cornerstone;
use crate::degreed::Degreed;
use crate::sap::Sap;
use crate::xapi::Xapi;
use domain::channel::ChannelSettings;
use std::sync::Arc;

/// The client of a configuration's channel.
pub fn client_for(settings: &ChannelSettings) -> Arc<dyn ChannelClient> {
    match settings {
        ChannelSettings::Xapi { .. } => Arc::new(Xapi),
        ChannelSettings::Degreed2 { .. } => Arc::new(Degreed),
        ChannelSettings::Csod { .. } => Arc::new(Cornerstone),
        ChannelSettings::Sap { .. } => Arc::new(Sap),
    }
}
