//! Out-of-process tests: a real Postgres 15 cluster with the installed extension, real
//! pgvector and pg_cron, talked to over libpq like any client would.

mod audit;
mod bad_input;
mod concurrency;
mod constraints;
mod crash;
mod embeddings;
mod install;
mod matching;
mod operations;
mod payouts;
mod payouts_crash;
mod quality;
mod rls;
mod rls_matrix;
mod roi;
mod schema;
mod upgrade;
