//! Configuration: raw serde structs (`raw`), typed validated structs (`model`),
//! and the two-stage loader that turns one into the other, collecting every
//! problem as a [`crate::diag::Diagnostic`].

pub mod model;
