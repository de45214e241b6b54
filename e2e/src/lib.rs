//! End-to-end tests of `backup-exec` on `embedded-cluster` live in `tests/`;
//! this crate exists so that `backup-exec` never depends on a concrete host.
