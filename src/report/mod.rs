//! Reports: plain data about a finished run and one file per output format.

pub mod timeline;
