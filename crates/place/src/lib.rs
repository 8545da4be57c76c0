//! placeholder
#![forbid(unsafe_code)]
pub mod chain;
pub mod check;
pub mod error;
pub mod fusion;
pub mod plan;
pub mod problem;
pub mod solver;
#[cfg(test)]
mod proptests;
#[cfg(test)]
pub(crate) mod testkit;
