//! `backup-cli inspect`: what a collection holds, offline.

use std::process::ExitCode;

use backup_exec::restore::{BackupChain, read_backup};
use backup_exec::verify::layer_files;
use backup_format::{Descriptor, DescriptorKind};

use crate::offline::{Collection, CollectionArgs, runtime};

/// Arguments of `backup-cli inspect`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  backup-cli inspect nodelocal://1/backups --store ./store
  backup-cli inspect nodelocal://1/backups --store ./store --latest
  backup-cli inspect file:///mnt/backups --subdir 2026/11/24-193000.00 --passphrase 'my passphrase'")]
pub struct InspectArgs {
    /// The collection and, optionally, one backup in it.
    #[command(flatten)]
    pub collection: CollectionArgs,
}

/// Runs `backup-cli inspect`.
pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let c = Collection::open(&args.collection)?;
    runtime()?.block_on(async {
        let backups = c.backups().await?;
        let shown = c.secrets.scrub(&backup_storage::redact_uri(&c.uri));
        println!("collection {shown}: {} full backup(s)", backups.len());
        for (subdir, incrementals) in &backups {
            println!("  {subdir}  ({incrementals} incremental layer(s))");
        }
        let a = &args.collection;
        if a.subdir.is_none() && !a.latest {
            if !backups.is_empty() {
                println!(
                    "(pass --latest or --subdir <backup> for one backup's chain and contents)"
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        let source = c.source(a.subdir.as_deref());
        let chain = read_backup(&c.context, &source, a.passphrase.as_deref())
            .await
            .map_err(|e| c.error(&e))?;
        print_chain(&chain).await.map_err(|e| c.error(&e))?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn print_chain(chain: &BackupChain) -> Result<(), backup_exec::ExecError> {
    let encryption = match chain
        .layers
        .first()
        .and_then(|l| l.manifest.encryption.as_ref())
    {
        Some(e) => format!("encrypted ({})", e.kdf),
        None => "not encrypted".to_string(),
    };
    println!();
    println!(
        "backup {}: {} layer(s), {encryption}",
        chain.full_subdir,
        chain.layers.len()
    );
    println!(
        "  {:<11} {:<30} {:<30} {:>7} {:>6} {:>12} {:>12} {:>10}  dir",
        "layer", "start", "end", "history", "files", "stored B", "raw B", "rows"
    );
    let (mut total_files, mut total_stored) = (0usize, 0u64);
    for (i, layer) in chain.layers.iter().enumerate() {
        let m = &layer.manifest;
        let files = layer_files(chain, i).await?;
        let stored: u64 = files.iter().map(|f| f.stored_bytes).sum();
        let raw: u64 = files.iter().map(|f| f.raw_bytes).sum();
        total_files += files.len();
        total_stored += stored;
        let start = if m.start_time.is_zero() {
            "-".to_string()
        } else {
            m.start_time.to_rfc3339()
        };
        println!(
            "  {:<11} {:<30} {:<30} {:>7} {:>6} {:>12} {:>12} {:>10}  {}",
            if i == 0 { "full" } else { "incremental" },
            start,
            m.end_time.to_rfc3339(),
            if m.revision_history { "yes" } else { "no" },
            files.len(),
            stored,
            raw,
            m.statistics.rows,
            layer.dir
        );
    }
    println!(
        "  total: {total_files} data file(s), {total_stored} stored bytes; end time {} ({})",
        chain.end_time().to_rfc3339(),
        chain.end_time()
    );
    let descriptors = chain.descriptors(None).await?;
    println!("objects at the end time:");
    for d in &descriptors {
        println!("  {:<9} {}", d.kind.as_str(), qualified(d, &descriptors));
    }
    Ok(())
}

/// `db.schema.name` for objects in a database, the bare name otherwise.
fn qualified(d: &Descriptor, all: &[Descriptor]) -> String {
    let name_of = |id: u64| all.iter().find(|x| x.id == id).map(|x| x.name.as_str());
    match d.kind {
        DescriptorKind::Database => d.name.clone(),
        _ => {
            let mut parts: Vec<&str> = Vec::new();
            if let Some(db) = name_of(d.parent_id) {
                parts.push(db);
            }
            if let Some(schema) = name_of(d.parent_schema_id) {
                parts.push(schema);
            }
            parts.push(&d.name);
            parts.join(".")
        }
    }
}
