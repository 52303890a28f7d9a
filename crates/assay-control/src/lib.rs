//! LocalControlPlane: authorize, act, audit. Queue, recovery and retention tasks.
