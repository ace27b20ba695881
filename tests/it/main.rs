//! Integration tests: the real server on port 0 with a temp data file, talked to over HTTP,
//! delivering to real local receivers. All in one test binary.

mod access;
mod accessibility;
mod api;
mod backup;
mod browser;
mod cli;
mod cluster;
mod cluster_setup;
mod crash;
mod delivery;
mod doors;
mod examples;
mod exposure;
mod hold;
mod lifecycle;
mod log_and_stats;
mod migration;
mod newcomer;
mod openapi;
mod outage;
mod pacing;
mod portal;
mod portal_health;
mod safety;
mod support;
mod tls;
