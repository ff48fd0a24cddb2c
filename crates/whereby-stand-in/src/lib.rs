//! A local stand-in for Whereby's REST API, for tests and the local run (the real
//! API cannot be reached from here).
//!
//! It serves `POST/GET /v1/meetings` and `GET/DELETE /v1/meetings/{id}` as the
//! official OpenAPI spec describes them: bearer check (401), request bodies
//! validated against the spec (400; the spec lists no 400 for `/meetings`, so the
//! body `{"error": "..."}` is our choice), numeric-string meeting ids, room names
//! `/<prefix><uuid>`, `hostRoomUrl` only when `fields` asks for it, idempotent
//! deletes (204 for unknown ids too). Faults (429 with `Retry-After`, 5xx, delays)
//! can be queued so a client's retry paths are exercised, and every API request is
//! recorded for inspection. The control routes live under `/_stand-in/`.
//!
//! It also sends webhooks like Whereby (see [`webhooks`]): participants join and
//! leave its meetings through `POST /_stand-in/meetings/{id}/join|leave`, and
//! `POST /_stand-in/webhooks/replay` sends everything again, duplicated and
//! shuffled on request.
//!
//! Where things live: [`StandInServer`] and the shared state in `server`, the
//! meetings endpoints in `api`, faults and the request log in `control`, the
//! webhook sender with the join/leave/replay routes in [`webhooks`], the theme
//! endpoints in [`theme`], the cloud recorder in [`recordings`], the OpenAPI
//! document and its validator in [`spec`].

mod api;
mod control;
pub mod recordings;
mod server;
pub mod spec;
pub mod theme;
pub mod webhooks;

pub use control::{Fault, RecordedRequest};
pub use server::{StandIn, StandInConfig, StandInServer};
