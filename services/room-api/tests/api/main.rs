//! room-api integration tests: the real application in-process on port 0, a fresh
//! Postgres database per test, and the Whereby stand-in over HTTP.

mod auth;
mod branding;
mod database_failures;
mod erasures;
mod helpers;
mod identities;
mod meetings;
mod openapi;
mod recordings;
mod rooms;
mod whereby_failures;
