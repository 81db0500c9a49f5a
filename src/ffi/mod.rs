//! The C ABI: a thin layer over the safe API. Each export checks its arguments,
//! calls the core and records the error, inside the one wrapper of
//! [`boundary`] (last error reset, panics caught).

#![allow(non_snake_case)]

mod args;
pub mod auth;
mod boundary;
pub mod connect;
pub mod domain;
pub mod error;
pub mod types;
