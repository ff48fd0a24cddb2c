use actix_web::{HttpResponse, web};
use web_common::Readiness;

use crate::state::AppState;

/// `GET /readyz`: ready when Postgres answers with the schema this build expects,
/// people's key set for bearer tokens
/// has been loaded and every background task runs.
pub async fn readyz(
    state: web::Data<AppState>,
    keys: web::Data<crate::auth::KeyRefresh>,
) -> HttpResponse {
    let (database, schema) = match state.pool.get().await {
        Ok(mut conn) => (
            db::ping(&mut conn).await.is_ok(),
            state.schema.readiness(Some(&mut conn)).await,
        ),
        Err(_) => (false, state.schema.readiness(None).await),
    };
    Readiness::new()
        .check("database", database)
        .check_why("schema", schema)
        .check("auth_key_sets", keys.people_loaded())
        .tasks_down(state.tasks.down_tasks())
        .respond()
}

/// `GET /metrics`, with the scrape-time gauges refreshed first.
pub async fn metrics(
    state: web::Data<AppState>,
    registry: web::Data<prometheus::Registry>,
) -> HttpResponse {
    state.gauges.refresh(&state.pool).await;
    web_common::metrics(registry).await
}
