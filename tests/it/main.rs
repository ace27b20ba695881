//! Integration tests: the real server on port 0 with a temp data file, talked to over HTTP,
//! delivering to real local receivers. All in one test binary.

mod access;
mod accessibility;
mod api;
mod backup;
mod browser;
pub mod cli;
mod cluster;
pub mod crash;
mod delivery;
mod doors;
mod examples;
mod exposure;
mod hold;
pub mod lifecycle;
mod log_and_stats;
mod newcomer;
mod openapi;
mod outage;
pub mod portal;
mod safety;
mod support;
mod tls;
