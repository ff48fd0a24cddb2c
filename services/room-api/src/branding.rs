//! Applying a room's branding to its Whereby meetings. Branding is cosmetic, a
//! meeting is not: a theme call that fails (after the client's own retries) never
//! fails or undoes the meeting; the meeting records `pending` with the reason and
//! a supervised background loop tries again, `failed` after [`MAX_ATTEMPTS`].

use std::time::Duration;

use chrono::Utc;
use db::branding::{Branding, Pending};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use whereby::{ThemeBackground, ThemeColors, ThemeImage, WherebyError};

use crate::state::AppState;

/// Attempts (the first included) before a meeting's branding is `failed`.
pub const MAX_ATTEMPTS: i32 = 5;
/// Meetings the retry loop takes per round.
const RETRY_BATCH: i64 = 20;

/// The outcome of one attempt, as stored on the meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state: Option<&'static str>,
    pub error: Option<String>,
    pub attempts: i32,
}

async fn send(state: &AppState, room_name: &str, b: &Branding) -> Result<(), WherebyError> {
    let colors = ThemeColors {
        primary: b.primary_color.clone(),
        secondary: b.secondary_color.clone(),
        focus: b.focus_color.clone(),
    };
    if colors.primary.is_some() || colors.secondary.is_some() || colors.focus.is_some() {
        state
            .whereby
            .set_theme_colors(room_name, Some(&colors))
            .await?;
    }
    if let (Some(bytes), Some(content_type)) = (&b.logo, &b.logo_content_type) {
        let image = ThemeImage {
            content_type: content_type.clone(),
            bytes: bytes.clone(),
        };
        state
            .whereby
            .set_theme_logo(room_name, Some(&image))
            .await?;
    }
    let background = match (
        &b.background,
        &b.background_content_type,
        &b.background_palette,
        &b.background_theme,
    ) {
        (Some(bytes), Some(content_type), _, _) => Some(ThemeBackground::Image(ThemeImage {
            content_type: content_type.clone(),
            bytes: bytes.clone(),
        })),
        (_, _, Some(palette), Some(theme)) => Some(ThemeBackground::Preset {
            palette: palette.clone(),
            theme: theme.clone(),
        }),
        _ => None,
    };
    if let Some(background) = background {
        state
            .whereby
            .set_theme_background(room_name, &background)
            .await?;
    }
    Ok(())
}

/// Applies the room's branding to one meeting and records the outcome.
pub async fn apply(state: &AppState, m: &Pending) -> Outcome {
    // The room's own branding, else the organisation's default. Not knowing it
    // (the database unavailable) leaves the meeting pending, recorded, so that the
    // retry loop comes back to it.
    let branding = match state.pool.get().await {
        Ok(mut conn) => match m.room_id {
            Some(room) => db::branding::get(&mut conn, room)
                .await
                .map_err(|e| e.to_string()),
            None => Ok(None),
        },
        Err(e) => Err(e.to_string()),
    }
    .map(|b| {
        b.filter(|b| !b.is_empty())
            .or_else(|| state.default_branding.clone())
    });
    let attempts = m.attempts + 1;
    let outcome = match branding {
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the room's branding; left pending");
            Outcome {
                state: Some("pending"),
                error: Some("database unavailable".to_owned()),
                attempts: m.attempts,
            }
        }
        Ok(None) => Outcome {
            state: None,
            error: None,
            attempts: m.attempts,
        },
        Ok(Some(b)) => match send(state, &m.room_name, &b).await {
            Ok(()) => Outcome {
                state: Some("applied"),
                error: None,
                attempts,
            },
            Err(e) => Outcome {
                state: Some(if attempts >= MAX_ATTEMPTS {
                    "failed"
                } else {
                    "pending"
                }),
                error: Some(e.to_string().chars().take(300).collect()),
                attempts,
            },
        },
    };
    if let Some(s) = outcome.state {
        state.branding_outcomes.with_label_values(&[s]).inc();
    }
    match state.pool.get().await {
        Ok(mut conn) => {
            if let Err(e) = db::branding::set_state(
                &mut conn,
                m.meeting_id,
                outcome.state,
                outcome.error.as_deref(),
                outcome.attempts,
                Utc::now(),
            )
            .await
            {
                tracing::warn!(meeting = %m.meeting_id, error = %e, "cannot record the branding outcome");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot record the branding outcome"),
    }
    if outcome.state == Some("failed") || outcome.state == Some("pending") {
        tracing::warn!(meeting = %m.meeting_id, state = ?outcome.state, error = ?outcome.error, "branding not applied");
    }
    outcome
}

/// Applies a room's (changed) branding to its active meetings.
pub async fn apply_to_active(state: &AppState, room_id: Uuid) {
    let meetings = match state.pool.get().await {
        Ok(mut conn) => db::branding::active_meetings(&mut conn, room_id)
            .await
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    for m in meetings {
        apply(state, &Pending { attempts: 0, ..m }).await;
    }
}

/// The retry loop: every `every`, the pending meetings not tried for that long
/// (claimed atomically, so replicas share the work), one attempt each.
pub async fn retry_pending(
    state: actix_web::web::Data<AppState>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let claimed = match state.pool.get().await {
            Ok(mut conn) => db::branding::claim_pending(
                &mut conn,
                Utc::now() - chrono::Duration::from_std(every).unwrap_or_default(),
                RETRY_BATCH,
            )
            .await
            .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        for m in claimed {
            apply(&state, &m).await;
        }
    }
}
