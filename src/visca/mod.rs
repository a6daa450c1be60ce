//! visca
