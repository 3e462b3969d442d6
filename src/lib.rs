//! chanlayer
pub mod proto;
