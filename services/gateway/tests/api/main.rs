//! HTTP tests of the gateway's own behaviour: probes, limits and problem
//! details for bad input, with its backends unreachable. The full flow
//! against real services is in `integration-tests`.

mod errors;
mod helpers;
