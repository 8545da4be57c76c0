//! placeholder
#![forbid(unsafe_code)]
pub mod error;
pub mod problem;
pub mod solver;
#[cfg(test)]
pub(crate) mod testkit;
