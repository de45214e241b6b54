//! Backup throughput benchmark (written in the next step; nothing measured yet).
fn main() {}
