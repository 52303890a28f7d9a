//! REST client implementing Assay's ControlPlane remotely.
