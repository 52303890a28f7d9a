//! assay-auth against real sockets: the Client ID Metadata Document fetcher talking to
//! an HTTP server on a loopback port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "auth/cimd.rs"]
mod cimd;
