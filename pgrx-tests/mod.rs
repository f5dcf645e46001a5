//! In-database `#[pg_test]` suites, compiled into the extension under the `pg_test` feature.

mod vector_interop;
