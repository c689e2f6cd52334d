//! End-to-end tests: every Créneau service started, talking real gRPC,
//! storing in real databases, driven through the public HTTP API.

mod bad_input;
mod balancing;
mod concurrency;
mod flow;
mod helpers;
mod migrations;
mod outage;
mod pair;
mod probes;
mod queue;
mod rush;
mod shutdown;
mod traces;
