//! inrush: load testing and surge simulation for messaging services.
//!
//! Data flows one way: scenario → plan → schedule → swarm of users → per-worker recorders →
//! collector → summary and reports → verdict. See `../shared/DESIGN.md` and the README.

pub mod error;
pub mod flow;
pub mod metrics;
pub mod plan;
pub mod report;
pub mod scenario;
pub mod schedule;
pub mod swarm;
pub mod target;
pub mod units;
