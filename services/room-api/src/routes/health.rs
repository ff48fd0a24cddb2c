use actix_web::{HttpResponse, web};
use web_common::ApiError;

use crate::{errors, startup::AppState};

/// `GET /readyz`: ready when Postgres answers.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    db::ping(&mut conn).await.map_err(errors::query)?;
    let down = state.tasks.down_tasks();
    if !down.is_empty() {
        return Ok(HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "unavailable", "tasks_down": down})));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}

/// `GET /metrics`, with the scrape-time gauges refreshed first.
pub async fn metrics(
    state: web::Data<AppState>,
    registry: web::Data<prometheus::Registry>,
) -> HttpResponse {
    state.gauges.refresh(&state.pool).await;
    web_common::metrics(registry).await
}
