//! The test-control side: faults queued for the next API requests (so a client's
//! retry paths are exercised) and the log of every API request received, both
//! also reachable over `/_stand-in/faults` and `/_stand-in/requests`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::server::{StandIn, lock};

/// A queued fault, applied to the next API request(s).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Fault {
    /// Answer with this status instead of serving the request (e.g. 429, 503).
    #[serde(default)]
    pub status: Option<u16>,
    /// With 429: the `Retry-After` header, in seconds.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Wait this long before answering (to exercise client timeouts).
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// How many requests this fault applies to.
    #[serde(default = "one")]
    pub times: u32,
}

const fn one() -> u32 {
    1
}

/// One API request as the stand-in received it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub body: Option<Value>,
}

impl StandIn {
    pub fn push_fault(&self, fault: Fault) {
        lock(&self.state.faults).push_back(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.state.faults).clear();
    }

    /// Every API request received so far (control routes excluded).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    pub(crate) fn take_fault(&self) -> Option<Fault> {
        let mut faults = lock(&self.state.faults);
        let front = faults.front_mut()?;
        let fault = front.clone();
        front.times = front.times.saturating_sub(1);
        if front.times == 0 {
            faults.pop_front();
        }
        Some(fault)
    }
}

pub(crate) async fn post_fault(s: web::Data<StandIn>, fault: web::Json<Fault>) -> HttpResponse {
    s.push_fault(fault.into_inner());
    HttpResponse::NoContent().finish()
}

pub(crate) async fn delete_faults(s: web::Data<StandIn>) -> HttpResponse {
    s.clear_faults();
    HttpResponse::NoContent().finish()
}

pub(crate) async fn get_requests(s: web::Data<StandIn>) -> HttpResponse {
    HttpResponse::Ok().json(s.requests())
}
