//! room-api: rooms with recording settings, and Whereby meetings created on demand.
//! `main.rs` only loads settings and calls into this library, so tests run the
//! same application in-process.

pub mod access;
pub mod auth;
pub mod branding;
pub mod errors;
pub mod json;
pub mod meetings;
pub mod openapi;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;

pub use settings::RoomApiSettings;
pub use startup::Application;
pub use state::AppState;
