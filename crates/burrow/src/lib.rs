//! The `burrow` program: configuration, command line, and the wiring of every part.

pub mod bootstrap;
pub mod certs;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod dialer;
pub mod drain;
pub mod front;
pub mod keys;
pub mod lifecycle;
pub mod openapi;
pub mod ops;
pub mod proxy_protocol;
pub mod scheduler;
pub mod secret;
pub mod server;
pub mod sso;
pub mod succession;
pub mod testkit;
pub mod web;
