//! The domain of the Whereby integration: rooms, their recording settings and the
//! meetings created for them. Types and rules only; no I/O.
//!
//! Every value that crosses a boundary (HTTP, database, Whereby) is parsed into one
//! of these types first, so the rest of the code can trust it.

pub mod branding;
pub mod convergence;
pub mod meeting;
pub mod recording;
pub mod room;
pub mod validation;
pub mod webhook;

pub use meeting::{ActiveMeeting, MeetingReuse, reuse_decision};
pub use room::{
    OwnerId, PageRequest, Platform, RecordingTrigger, RecordingType, RoomMode, RoomName,
    RoomSettings,
};
pub use validation::ValidationError;
