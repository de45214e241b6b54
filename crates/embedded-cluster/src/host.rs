//! The cluster as a `backup-exec` host: [`KvSource`], [`Protector`], [`Clock`]
//! and [`Ingest`] ([`backup_exec::JobStore`] is in `jobs`; [`backup_exec::Catalog`]
//! is in `catalog`).

use backup_exec::{
    Clock, ExportChunk, ExportError, ExportRequest, HostError, IdRewrites, Ingest, IngestBatch,
    KeyRewriter, KvSource, NodeId, NodeInfo, ProtectionId, Protector, RangeInfo,
};
use std::collections::BTreeSet;

use backup_exec::host::SystemRows;
use backup_format::{Descriptor, DescriptorId, Span, Timestamp};

use crate::cluster::Cluster;
use crate::keys::TableKeyRewriter;

impl KvSource for Cluster {
    fn nodes(&self) -> Vec<NodeInfo> {
        Cluster::nodes(self)
    }

    fn ranges(&self, spans: &[Span]) -> Result<Vec<RangeInfo>, HostError> {
        let nodes = Cluster::nodes(self);
        let mut out = Vec::new();
        for span in spans {
            for r in self.ranges_overlapping(span) {
                let Some(clipped) = r.span.intersect(span) else {
                    continue;
                };
                let locality = nodes
                    .iter()
                    .find(|n| n.id == r.leaseholder)
                    .map(|n| n.locality.clone())
                    .unwrap_or_default();
                out.push(RangeInfo {
                    range_id: r.id,
                    span: clipped,
                    leaseholder: r.leaseholder,
                    locality,
                });
            }
        }
        Ok(out)
    }

    fn export(&self, node: NodeId, request: &ExportRequest) -> Result<ExportChunk, ExportError> {
        Cluster::export(self, node, request)
    }
}

impl Protector for Cluster {
    fn protect(&self, spans: &[Span], ts: Timestamp) -> Result<ProtectionId, HostError> {
        Ok(ProtectionId(Cluster::protect(self, spans, ts)?))
    }

    fn release(&self, id: ProtectionId) -> Result<(), HostError> {
        Ok(Cluster::release(self, id.0)?)
    }

    fn gc_threshold(&self, span: &Span) -> Result<Timestamp, HostError> {
        Ok(Cluster::gc_threshold(self, span))
    }
}

impl Clock for Cluster {
    /// The HLC's now. Should persisting the clock's ceiling fail, the timestamp
    /// is still monotonic in this process (see `Hlc::now_lossy`).
    fn now(&self) -> Timestamp {
        self.inner.clock.now_lossy()
    }
}

impl Ingest for Cluster {
    fn key_rewriter(&self, rewrites: &IdRewrites) -> Result<Box<dyn KeyRewriter>, HostError> {
        Ok(Box::new(TableKeyRewriter::new(rewrites.clone())))
    }

    /// Bulk ingest with a lazy commit (see [`Cluster::ingest`]).
    fn ingest(&self, batch: IngestBatch) -> Result<(), HostError> {
        Ok(Cluster::ingest(self, batch)?)
    }

    fn sync(&self) -> Result<(), HostError> {
        Ok(Cluster::sync(self)?)
    }

    /// Writes the descriptors in one MVCC batch (see [`Cluster::publish_descriptors`]).
    fn publish(&self, descriptors: &[Descriptor]) -> Result<(), HostError> {
        Ok(self.publish_descriptors(descriptors)?)
    }

    fn abort(&self, spans: &[Span]) -> Result<(), HostError> {
        Cluster::clear_spans(self, spans)?;
        Ok(())
    }

    /// The `system` database and the system tables a full-cluster backup
    /// carries ([`crate::catalog::system_descriptors`]).
    fn system_descriptors(&self) -> BTreeSet<DescriptorId> {
        crate::catalog::system_descriptors()
            .iter()
            .map(|d| d.id)
            .collect()
    }

    /// See [`Cluster::publish_cluster_restore`].
    fn publish_cluster(
        &self,
        descriptors: &[Descriptor],
        system: &[SystemRows],
        ids: &IdRewrites,
    ) -> Result<(), HostError> {
        Ok(self.publish_cluster_restore(descriptors, system, ids)?)
    }
}
