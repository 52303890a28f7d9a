//! Assay's HTTP server: REST /v1, health, OpenAPI.
