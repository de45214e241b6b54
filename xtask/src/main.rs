//! Project automation.
//!
//! - `cargo xtask test`: format check, clippy with warnings denied, then every
//!   test in the workspace with real S3 (moto_server) and Azure (Azurite)
//!   servers started on 127.0.0.1 (and `psql` installed from Debian's
//!   postgresql-client when missing, for the pg-server tests), then a
//!   30-second bounded fuzz run of the SQL parser. This is the one test
//!   command; CI runs it.
//! - `cargo xtask bench [ARGS..]`: the criterion benchmarks, with the same
//!   servers running; extra arguments go to `cargo bench`.
//! - `cargo xtask ci`: what `.ci/run` runs (the same as `test`).
//! - `cargo xtask servers`: start the test servers and wait, printing the
//!   environment a `cargo test` in another shell needs.

mod psql;
mod servers;

use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((cmd, rest)) => (cmd.as_str(), rest),
        None => ("help", &[][..]),
    };
    match cmd {
        "test" | "ci" => test(rest),
        "bench" => bench(rest),
        "servers" => hold_servers(),
        "help" | "--help" | "-h" => {
            println!("{}", USAGE);
            Ok(())
        }
        other => bail!("unknown xtask command {other:?}\n\n{USAGE}"),
    }
}

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test     fmt check, clippy -D warnings, all tests with S3/Azure servers on 127.0.0.1,
           and a 30 s bounded fuzz run of the SQL parser
  ci       the same as test (what .ci/run runs)
  bench    criterion benchmarks (extra args go to `cargo bench`)
  servers  start the test servers, print their environment, and wait for Ctrl-C";

/// The one test command.
fn test(extra: &[String]) -> Result<()> {
    let started = std::time::Instant::now();
    step(
        "cargo fmt --check",
        cargo(&["fmt", "--all", "--", "--check"]),
    )?;
    step(
        "cargo clippy",
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    psql::ensure_psql().context("installing psql for the pg-server tests")?;
    let servers = servers::Servers::start().context("starting the test storage servers")?;
    let mut args = vec!["test", "--workspace"];
    args.extend(extra.iter().map(String::as_str));
    let mut test = cargo(&args);
    servers.apply_env(&mut test);
    step("cargo test", test)?;
    drop(servers);
    if std::env::var_os("BACKUP_SKIP_FUZZ").is_some() {
        println!("xtask: BACKUP_SKIP_FUZZ is set; skipping the bounded fuzz run");
    } else {
        // A short, bounded run of the SQL parser's fuzz target (installs
        // cargo-fuzz on first use; a crash fails the run and is saved under
        // fuzz/artifacts/).
        let mut fuzz = Command::new("bash");
        fuzz.arg(root().join("fuzz").join("run-bounded.sh"))
            .arg("30");
        step("bounded fuzz run of the SQL parser (30 s)", fuzz)?;
    }
    println!(
        "xtask: all checks passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Benchmarks, with the servers the storage benchmarks need.
fn bench(extra: &[String]) -> Result<()> {
    let servers = servers::Servers::start().context("starting the test storage servers")?;
    let mut args = vec!["bench", "--workspace"];
    args.extend(extra.iter().map(String::as_str));
    let mut bench = cargo(&args);
    servers.apply_env(&mut bench);
    step("cargo bench", bench)
}

/// Starts the servers and waits, so a developer can run `cargo test -p ..` by hand.
fn hold_servers() -> Result<()> {
    let servers = servers::Servers::start().context("starting the test storage servers")?;
    for (k, v) in servers.env() {
        println!("export {k}={v}");
    }
    println!("# servers running; press Ctrl-C to stop");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

fn root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn cargo(args: &[&str]) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.args(args);
    cmd
}

fn step(name: &str, mut cmd: Command) -> Result<()> {
    println!("xtask: running {name}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    Ok(())
}
