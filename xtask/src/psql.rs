//! The `psql` client the pg-server tests run: installed from Debian's
//! `postgresql-client` package when it is not on PATH.

use std::process::Command;

use anyhow::{Context, Result, bail};

/// Makes sure `psql` runs, installing `postgresql-client` with apt-get if not.
pub fn ensure_psql() -> Result<()> {
    if psql_runs() {
        return Ok(());
    }
    println!("xtask: psql is not on PATH; installing postgresql-client with apt-get");
    let install = || {
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "--no-install-recommends",
                "postgresql-client",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("could not run apt-get (is this a Debian-based machine?)")
    };
    if !install()?.success() {
        // A fresh machine may have no package lists yet.
        let updated = Command::new("apt-get")
            .arg("update")
            .status()
            .context("could not run apt-get update")?;
        if !updated.success() || !install()?.success() {
            bail!(
                "installing postgresql-client failed: install it by hand \
                 (apt-get install -y postgresql-client) and rerun"
            );
        }
    }
    if !psql_runs() {
        bail!("postgresql-client is installed but psql still does not run");
    }
    Ok(())
}

fn psql_runs() -> bool {
    Command::new("psql")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
