//! Readers for Zonal's inputs. Every reader returns the model and every error it found, each
//! naming file, line, column, field and what was expected; nothing from an invalid input is
//! used.

pub mod import;
