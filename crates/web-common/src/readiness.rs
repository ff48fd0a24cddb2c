//! `GET /readyz` answers the same shape in every service, so one probe, one
//! dashboard and one runbook line fit all three:
//! `{"status":"ready"|"unavailable","checks":{"<dependency>":"up"|"down"|"down: <why>"},"tasks_down":[…]}`
//! with 200 when every check is up and no supervised task is down, else 503.

use actix_web::HttpResponse;
use serde_json::{Map, Value, json};

#[derive(Debug)]
pub struct Readiness {
    checks: Map<String, Value>,
    tasks_down: Vec<&'static str>,
    ready: bool,
}

impl Default for Readiness {
    /// Ready until a check or a task says otherwise.
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    pub fn new() -> Self {
        Self {
            checks: Map::new(),
            tasks_down: Vec::new(),
            ready: true,
        }
    }

    /// One dependency (`database`, `broker`, `consumer`…) and whether it is up.
    #[must_use]
    pub fn check(mut self, name: &str, up: bool) -> Self {
        self.ready &= up;
        self.checks
            .insert(name.to_owned(), json!(if up { "up" } else { "down" }));
        self
    }

    /// One dependency that, when down, says why (`schema`: which migration is
    /// pending).
    #[must_use]
    pub fn check_why(mut self, name: &str, state: Result<(), String>) -> Self {
        let value = match state {
            Ok(()) => "up".to_owned(),
            Err(why) => {
                self.ready = false;
                format!("down: {why}")
            }
        };
        self.checks.insert(name.to_owned(), json!(value));
        self
    }

    /// The supervised background tasks that are down (`Supervisor::down_tasks`).
    #[must_use]
    pub fn tasks_down(mut self, down: Vec<&'static str>) -> Self {
        self.ready &= down.is_empty();
        self.tasks_down = down;
        self
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }

    pub fn body(&self) -> Value {
        json!({
            "status": if self.ready { "ready" } else { "unavailable" },
            "checks": self.checks,
            "tasks_down": self.tasks_down,
        })
    }

    pub fn respond(self) -> HttpResponse {
        let body = self.body();
        if self.ready {
            HttpResponse::Ok().json(body)
        } else {
            HttpResponse::ServiceUnavailable().json(body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_is_the_same_ready_or_not() {
        let up = Readiness::new().check("database", true).tasks_down(vec![]);
        let down = Readiness::new()
            .check("database", true)
            .check("broker", false)
            .tasks_down(vec!["consumer"]);
        assert!(up.is_ready() && !down.is_ready());
        let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
        assert_eq!(keys(&up.body()), keys(&down.body()));
        assert_eq!(down.body()["checks"]["broker"], "down");
        assert_eq!(down.body()["status"], "unavailable");
        assert_eq!(down.body()["tasks_down"][0], "consumer");
    }
}
