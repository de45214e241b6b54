//! `backup-cli verify`: reads every file a backup needs and checks it, offline.

use std::process::ExitCode;

use backup_exec::verify_backup;

use crate::offline::{Collection, CollectionArgs, runtime};

/// Arguments of `backup-cli verify`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Reads every file the chosen backup and its incrementals need (manifests,
side files, data files), checks every checksum and decodes every block. Exits
with 1 and names each missing or corrupt file.

Examples:
  backup-cli verify nodelocal://1/backups --store ./store
  backup-cli verify nodelocal://1/backups --store ./store --subdir 2026/11/24-193000.00
  backup-cli verify 's3://bucket/backups?AWS_ACCESS_KEY_ID=..&AWS_SECRET_ACCESS_KEY=..' \\
      --latest --passphrase 'my passphrase'"
)]
pub struct VerifyArgs {
    /// The collection and the backup in it (the newest by default).
    #[command(flatten)]
    pub collection: CollectionArgs,
}

/// Runs `backup-cli verify`.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let c = Collection::open(&args.collection)?;
    let a = &args.collection;
    let source = c.source(a.subdir.as_deref());
    let report = runtime()?
        .block_on(verify_backup(&c.context, &source, a.passphrase.as_deref()))
        .map_err(|e| {
            c.error(&e).context(
                "the backup's manifests or chain cannot be read, so its files were not checked",
            )
        })?;
    println!(
        "backup {} in {}: {} layer(s); checked {} file(s), {} bytes, {} entries",
        report.full_subdir,
        c.secrets.scrub(&backup_storage::redact_uri(&c.uri)),
        report.layers,
        report.files_checked,
        report.bytes_read,
        report.entries
    );
    if report.is_ok() {
        println!("OK: every file is present and intact");
        return Ok(ExitCode::SUCCESS);
    }
    for p in &report.problems {
        eprintln!("{}", c.secrets.scrub(&p.to_string()));
    }
    eprintln!(
        "ERROR: backup {} has {} missing or corrupt file(s): a restore from it would fail; \
         restore from another backup (see `backup-cli inspect`), and take a new full backup",
        report.full_subdir,
        report.problems.len()
    );
    Ok(ExitCode::FAILURE)
}
