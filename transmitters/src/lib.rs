//! Channel clients (SAP SuccessFactors, Degreed, Cornerstone, xAPI) and the workers that drain
//! the integration outbox. Not built yet; the crate exists so the workspace has its final shape.
