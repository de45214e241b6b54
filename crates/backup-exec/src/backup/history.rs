//! The descriptor history of a revision-history layer: which descriptors it
//! covers, the revisions its manifest records (see
//! [`backup_format::manifest::DescriptorRevision`]), the data spans of
//! objects that existed only inside its window, and the time its history
//! starts.
//!
//! A layer covers every descriptor of a full-cluster backup; otherwise the
//! backed-up descriptors and, for a database whose every object is backed
//! up (a database backup), every object that lives in it at some time in
//! the window. A drop is covered when the dropped descriptor was.

use std::collections::{BTreeMap, BTreeSet};

use backup_format::manifest::DescriptorRevision;
use backup_format::{DescriptorId, DescriptorKind, Span, SpanSet, Timestamp};

use super::spec::{BackupSpec, Host};
use crate::error::ExecError;
use crate::host::HostError;

/// How many times a history read moves its start above a GC threshold the
/// catalog reports before giving up.
const MAX_START_MOVES: usize = 4;

/// A layer's descriptor history.
#[derive(Clone, PartialEq, Debug)]
pub(crate) struct History {
    /// The earliest time (inclusive) the history restores.
    pub(crate) start: Timestamp,
    /// The state at `start` (records at `start`), then every change up to the
    /// end time, by (time, id).
    pub(crate) revisions: Vec<DescriptorRevision>,
}

impl History {
    /// The data spans of every covered table or sequence in the history
    /// whose data is backed up.
    pub(crate) fn data_spans(&self) -> Vec<Span> {
        self.revisions
            .iter()
            .filter_map(|r| r.descriptor.as_ref())
            .filter(|d| {
                matches!(d.kind, DescriptorKind::Table | DescriptorKind::Sequence)
                    && !d.exclude_data_from_backup
            })
            .flat_map(|d| d.spans.iter().cloned())
            .collect()
    }
}

/// The time a layer's history starts at when nothing else limits it: the
/// start time of an incremental; for a full backup, just above the highest
/// GC threshold over `spans` (reads at or below a threshold fail).
pub(crate) fn earliest_start(
    host: &Host,
    incremental_start: Option<Timestamp>,
    spans: &[Span],
) -> Result<Timestamp, ExecError> {
    if let Some(start) = incremental_start {
        return Ok(start);
    }
    let mut threshold = Timestamp::ZERO;
    for s in spans {
        threshold = threshold.max(host.protector.gc_threshold(s)?);
    }
    Ok(if threshold.is_zero() {
        Timestamp::ZERO
    } else {
        threshold.next()
    })
}

/// The covered descriptor history in `[from, spec.end_time]`, or `None` when
/// the host keeps none. When the catalog's own history does not reach back
/// to `from` (a GC threshold), the history starts just above that threshold.
pub(crate) fn read_history(
    host: &Host,
    spec: &BackupSpec,
    from: Timestamp,
) -> Result<Option<History>, ExecError> {
    let scope = Scope::of(host, spec)?;
    let mut start = from;
    for _ in 0..MAX_START_MOVES {
        match read_at(host, spec, start) {
            Ok(None) => return Ok(None),
            Ok(Some(all)) => {
                return Ok(Some(History {
                    start,
                    revisions: scope.filter(all),
                }));
            }
            Err(HostError::GcThreshold { threshold, .. }) if threshold >= start => {
                start = threshold.next();
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ExecError::Invalid(format!(
        "the descriptor history of the backup's window kept moving above the GC threshold \
         (now {start}): retry the backup"
    )))
}

/// Every descriptor at `start` (as records at `start`), then every change
/// up to the end time, by (time, id).
fn read_at(
    host: &Host,
    spec: &BackupSpec,
    start: Timestamp,
) -> Result<Option<Vec<DescriptorRevision>>, HostError> {
    if start > spec.end_time {
        return Ok(Some(Vec::new()));
    }
    let Some(changes) = host.catalog.descriptor_revisions(start, spec.end_time)? else {
        return Ok(None);
    };
    // The last version of an id wins (a catalog may list several).
    let snapshot: BTreeMap<DescriptorId, _> = host
        .catalog
        .descriptors(start)?
        .into_iter()
        .map(|d| (d.id, d))
        .collect();
    let mut out: Vec<DescriptorRevision> = snapshot
        .into_values()
        .map(|d| DescriptorRevision {
            id: d.id,
            time: start,
            descriptor: Some(d),
        })
        .collect();
    out.extend(
        changes
            .into_iter()
            .filter(|r| r.time > start && r.time <= spec.end_time),
    );
    out.sort_by_key(|r| (r.time, r.id));
    out.dedup_by_key(|r| (r.time, r.id));
    Ok(Some(out))
}

/// Which descriptors a layer's history covers.
struct Scope {
    /// A full-cluster backup: everything.
    all: bool,
    /// The backed-up descriptors.
    ids: BTreeSet<DescriptorId>,
    /// Databases whose every object (at the end time) is backed up.
    databases: BTreeSet<DescriptorId>,
}

impl Scope {
    fn of(host: &Host, spec: &BackupSpec) -> Result<Scope, ExecError> {
        let ids: BTreeSet<DescriptorId> = spec.descriptors.iter().map(|d| d.id).collect();
        if spec.full_cluster {
            return Ok(Scope {
                all: true,
                ids,
                databases: BTreeSet::new(),
            });
        }
        let live = host.catalog.descriptors(spec.end_time)?;
        let databases = spec
            .descriptors
            .iter()
            .filter(|d| d.kind == DescriptorKind::Database)
            .filter(|db| {
                live.iter()
                    .filter(|d| d.parent_id == db.id)
                    .all(|d| ids.contains(&d.id))
            })
            .map(|db| db.id)
            .collect();
        Ok(Scope {
            all: false,
            ids,
            databases,
        })
    }

    /// The covered revisions of `all` (in order): a drop is covered when an
    /// earlier revision of the same id was.
    fn filter(&self, all: Vec<DescriptorRevision>) -> Vec<DescriptorRevision> {
        if self.all {
            return all;
        }
        let mut seen = BTreeSet::new();
        all.into_iter()
            .filter(|r| {
                let covered = self.ids.contains(&r.id)
                    || seen.contains(&r.id)
                    || r.descriptor.as_ref().is_some_and(|d| {
                        d.kind != DescriptorKind::Database && self.databases.contains(&d.parent_id)
                    });
                if covered {
                    seen.insert(r.id);
                }
                covered
            })
            .collect()
    }
}

/// `spans` with the data spans of `history` added.
pub(crate) fn with_history_spans(spans: &[Span], history: Option<&History>) -> Vec<Span> {
    let Some(h) = history else {
        return spans.to_vec();
    };
    let base = SpanSet::from_spans(spans.iter().cloned());
    let extra = SpanSet::from_spans(h.data_spans());
    let mut out = spans.to_vec();
    out.extend(extra.subtract(&base).spans().iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use backup_format::Descriptor;

    use super::*;

    fn desc(id: DescriptorId, kind: DescriptorKind, parent: DescriptorId) -> Descriptor {
        Descriptor {
            id,
            kind,
            name: format!("d{id}"),
            parent_id: parent,
            parent_schema_id: 0,
            spans: vec![Span::new([id as u8], [id as u8 + 1])],
            dependencies: Vec::new(),
            exclude_data_from_backup: id == 14,
            payload: Vec::new(),
        }
    }

    fn rev(wall: i64, id: DescriptorId, d: Option<Descriptor>) -> DescriptorRevision {
        DescriptorRevision {
            id,
            time: Timestamp::from_wall(wall),
            descriptor: d,
        }
    }

    #[test]
    fn a_covered_database_brings_its_new_objects_and_drops_follow_their_object() {
        use DescriptorKind::{Database, Table};
        let scope = Scope {
            all: false,
            ids: [1, 11].into_iter().collect(),
            databases: [1].into_iter().collect(),
        };
        let all = vec![
            rev(1, 1, Some(desc(1, Database, 0))),
            rev(1, 2, Some(desc(2, Database, 0))),
            rev(1, 11, Some(desc(11, Table, 1))),
            rev(2, 12, Some(desc(12, Table, 1))), // new in the covered database
            rev(3, 21, Some(desc(21, Table, 2))), // another database
            rev(4, 12, None),                     // its drop
            rev(5, 21, None),
            rev(6, 14, Some(desc(14, Table, 1))), // data excluded
        ];
        let kept = scope.filter(all);
        let ids: Vec<(i64, DescriptorId)> = kept.iter().map(|r| (r.time.wall, r.id)).collect();
        assert_eq!(ids, vec![(1, 1), (1, 11), (2, 12), (4, 12), (6, 14)]);
        let history = History {
            start: Timestamp::from_wall(1),
            revisions: kept,
        };
        let spans = with_history_spans(&[Span::new([11], [12])], Some(&history));
        assert_eq!(spans, vec![Span::new([11], [12]), Span::new([12], [13])]);
    }
}
