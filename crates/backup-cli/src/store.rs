//! Opening the embedded cluster a command works on, from its store directory.

use std::path::Path;

use anyhow::{Context, bail};
use backup_exec::Locality;
use embedded_cluster::{Cluster, ClusterConfig, ClusterError};

/// An open cluster with the backup statements installed; removes them (and
/// so releases the store) when dropped.
pub struct OpenStore {
    cluster: Cluster,
}

impl OpenStore {
    /// Opens (creating on first use) the cluster stored in `dir`, with
    /// `nodes` nodes if it is new; a reopened store keeps its own nodes.
    pub fn open(dir: &Path, nodes: usize) -> anyhow::Result<OpenStore> {
        if nodes == 0 {
            bail!("--nodes must be at least 1");
        }
        let config = ClusterConfig {
            nodes: (0..nodes).map(locality).collect(),
            ..ClusterConfig::default()
        };
        let cluster = match Cluster::open(dir, config) {
            Ok(c) => c,
            Err(ClusterError::StoreInUse { path }) => bail!(
                "the store {} is in use by another process (a running `backup-cli sql` \
                 or demo?): close it, or pass another --store",
                path.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot open the cluster store {}: check the path, or pass a new \
                         directory to --store",
                        dir.display()
                    )
                });
            }
        };
        cluster
            .enable_backup_statements()
            .context("cannot install the backup statements")?;
        tracing::debug!(store = %dir.display(), nodes = cluster.nodes().len(), "store open");
        Ok(OpenStore { cluster })
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }
}

impl Drop for OpenStore {
    fn drop(&mut self) {
        self.cluster.disable_backup_statements();
    }
}

/// Node `i`'s locality (0-based): two zones of `us-east1`, then one of
/// `us-west1`, repeating, as [`ClusterConfig::default`] lays out three.
fn locality(i: usize) -> Locality {
    let (region, zone) = match i % 3 {
        0 => ("us-east1", "us-east1-a"),
        1 => ("us-east1", "us-east1-b"),
        _ => ("us-west1", "us-west1-a"),
    };
    let zone = if i >= 3 {
        format!("{zone}{}", i / 3 + 1)
    } else {
        zone.to_string()
    };
    Locality::new([("region", region), ("zone", zone.as_str())])
}
