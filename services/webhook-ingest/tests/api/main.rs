//! webhook-ingest over HTTP against a real RabbitMQ (a prefixed topology per test;
//! a private node for the broker fault test).

mod helpers;
mod publishing;
mod signatures;
