//! One place that turns the domain errors of the pure modules into Postgres errors with
//! an explicit SQLSTATE. Pure modules define their own `thiserror` enums and know nothing
//! of Postgres; this file decides what each variant means to a SQL caller.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

use crate::quality::QualityError;
use crate::vector_math::VectorError;

/// A domain error that a SQL caller can receive.
pub trait SqlError: std::fmt::Display {
    fn sqlstate(&self) -> PgSqlErrorCode;
    fn hint(&self) -> Option<String> {
        None
    }
}

/// Raises `err` as a Postgres `ERROR` (a Rust panic that pgrx turns into `ereport`).
pub fn raise(err: &dyn SqlError, function: &'static str) -> ! {
    let mut report = ErrorReport::new(err.sqlstate(), err.to_string(), function);
    if let Some(hint) = err.hint() {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// An error that is only a SQLSTATE and a message.
pub struct Plain(pub PgSqlErrorCode, pub String);

impl std::fmt::Display for Plain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl SqlError for Plain {
    fn sqlstate(&self) -> PgSqlErrorCode {
        self.0
    }
}

/// `result.or_raise()` inside a `#[pg_extern]`.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T, E: SqlError> OrRaise<T> for Result<T, E> {
    #[track_caller]
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => raise(&e, "sponsorship"),
        }
    }
}

impl SqlError for VectorError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            // A value that does not have pgvector's layout is damage, not bad user input.
            VectorError::TooShort(_)
            | VectorError::SizeMismatch { .. }
            | VectorError::UnusedNotZero(_) => PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            VectorError::BadDimension { .. } => PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            VectorError::NotFinite { .. } => PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            // pgvector itself reports this one as data_exception (22000).
            VectorError::DimensionMismatch { .. } => PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
        }
    }
}

impl SqlError for QualityError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
    }
}
