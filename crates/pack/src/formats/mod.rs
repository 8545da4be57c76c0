//! Loaders of dataset formats. These take text or readers; the algorithms never do I/O.

pub mod openb;
pub mod vbp;
