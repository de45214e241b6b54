//! `embedded-cluster` (placeholder until its issue lands).
