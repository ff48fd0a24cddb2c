//! recording-worker against real RabbitMQ and Postgres: a fresh database and a
//! prefixed topology per test; fault tests use private server instances.

mod convergence;
mod faults;
mod flow;
mod helpers;
mod jobs;
mod odd_data;
mod recordings;
mod releases;
