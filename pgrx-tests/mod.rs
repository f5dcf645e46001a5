//! In-database `#[pg_test]` suites, compiled into the extension under the `pg_test` feature.

mod jsonb_direct;
mod vector_interop;
