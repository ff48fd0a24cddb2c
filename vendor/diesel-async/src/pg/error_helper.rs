use std::error::Error;
use std::sync::Arc;

use diesel::ConnectionError;

pub(super) struct ErrorHelper(pub(super) tokio_postgres::Error);

impl From<ErrorHelper> for ConnectionError {
    fn from(postgres_error: ErrorHelper) -> Self {
        ConnectionError::CouldntSetupConfiguration(postgres_error.into())
    }
}

impl From<ErrorHelper> for diesel::result::Error {
    fn from(ErrorHelper(postgres_error): ErrorHelper) -> Self {
        from_tokio_postgres_error(Arc::new(postgres_error))
    }
}

pub(super) fn from_tokio_postgres_error(
    postgres_error: Arc<tokio_postgres::Error>,
) -> diesel::result::Error {
    use diesel::result::DatabaseErrorKind::*;
    use tokio_postgres::error::SqlState;

    match postgres_error.code() {
        Some(code) => {
            let kind = match *code {
                SqlState::UNIQUE_VIOLATION => UniqueViolation,
                SqlState::FOREIGN_KEY_VIOLATION => ForeignKeyViolation,
                SqlState::RESTRICT_VIOLATION => RestrictViolation,
                SqlState::EXCLUSION_VIOLATION => ExclusionViolation,
                SqlState::T_R_SERIALIZATION_FAILURE => SerializationFailure,
                SqlState::READ_ONLY_SQL_TRANSACTION => ReadOnlyTransaction,
                SqlState::NOT_NULL_VIOLATION => NotNullViolation,
                SqlState::CHECK_VIOLATION => CheckViolation,
                _ => Unknown,
            };

            // PATCH (whereby workspace): keep the SQLSTATE, which diesel's error
            // information has no accessor for (diesel-rs/diesel#5232 proposes one),
            // and never panic if the source is not a DbError.
            let info = match postgres_error
                .source()
                .and_then(|e| e.downcast_ref::<tokio_postgres::error::DbError>())
            {
                Some(db_error) => Box::new(PostgresDbErrorWrapper::new(db_error.clone())) as _,
                None => Box::new(format!("{}{}", sqlstate_prefix(code.code()), postgres_error)) as _,
            };
            diesel::result::Error::DatabaseError(kind, info)
        }
        None => diesel::result::Error::DatabaseError(
            UnableToSendCommand,
            Box::new(postgres_error.to_string()),
        ),
    }
}

/// PATCH (whereby workspace): the message carries the SQLSTATE as a prefix,
/// `"<5 characters>: "`, read back by [`sqlstate`].
struct PostgresDbErrorWrapper(tokio_postgres::error::DbError, String);

impl PostgresDbErrorWrapper {
    fn new(error: tokio_postgres::error::DbError) -> Self {
        let message = format!("{}{}", sqlstate_prefix(error.code().code()), error.message());
        Self(error, message)
    }
}

fn sqlstate_prefix(code: &str) -> String {
    format!("{code}: ")
}

/// PATCH (whereby workspace): the SQLSTATE of a database error reported by the
/// server (`None` for errors without one: a closed or broken connection).
pub fn sqlstate(error: &diesel::result::Error) -> Option<&str> {
    let diesel::result::Error::DatabaseError(_, info) = error else {
        return None;
    };
    let message = info.message();
    let (code, _) = message.split_at_checked(5)?;
    let well_formed = code.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        && message[5..].starts_with(": ");
    well_formed.then_some(code)
}

impl diesel::result::DatabaseErrorInformation for PostgresDbErrorWrapper {
    fn message(&self) -> &str {
        &self.1
    }

    fn details(&self) -> Option<&str> {
        self.0.detail()
    }

    fn hint(&self) -> Option<&str> {
        self.0.hint()
    }

    fn table_name(&self) -> Option<&str> {
        self.0.table()
    }

    fn column_name(&self) -> Option<&str> {
        self.0.column()
    }

    fn constraint_name(&self) -> Option<&str> {
        self.0.constraint()
    }

    fn statement_position(&self) -> Option<i32> {
        use tokio_postgres::error::ErrorPosition;
        self.0.position().and_then(|e| match *e {
            ErrorPosition::Original(position) | ErrorPosition::Internal { position, .. } => {
                position.try_into().ok()
            }
        })
    }
}
