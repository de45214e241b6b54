//! The restore span cover: the requested spans cut into work units, each
//! with the data files of every layer that may hold its keys.

use std::sync::Arc;

use backup_format::manifest::BackupFile;
use backup_format::{Span, SpanSet};
use backup_storage::ExternalStorage;

use super::spec::RestoreSettings;

/// A data file of one layer, ready to read.
#[derive(Debug)]
pub(crate) struct LayerFile {
    /// Path in its storage (`<layer dir>/data/1-7.sst`).
    pub(crate) path: String,
    /// What the layer's file list says about it.
    pub(crate) file: BackupFile,
    /// Where it is.
    pub(crate) storage: Arc<dyn ExternalStorage>,
}

/// One piece of work: a key span and the files to merge for it.
#[derive(Clone, Debug)]
pub(crate) struct WorkUnit {
    /// Backed-up keys restored by this unit.
    pub(crate) span: Span,
    /// Files of any layer overlapping it.
    pub(crate) files: Vec<Arc<LayerFile>>,
}

/// Cuts `spans` into units of at most about `unit_target_bytes` of file data
/// and `max_files_per_unit` files (a single piece of key space that more files
/// overlap is one unit nonetheless).
pub(crate) fn cover(
    spans: &SpanSet,
    files: &[Arc<LayerFile>],
    settings: &RestoreSettings,
) -> Vec<WorkUnit> {
    let mut units = Vec::new();
    for span in spans.iter() {
        let overlapping: Vec<&Arc<LayerFile>> = files
            .iter()
            .filter(|f| f.file.span.overlaps(span))
            .collect();
        // Elementary pieces: the span cut at every file boundary inside it.
        let mut bounds: Vec<&[u8]> = vec![&span.start, &span.end];
        for f in &overlapping {
            for b in [&f.file.span.start, &f.file.span.end] {
                if span.contains_key(b) {
                    bounds.push(b);
                }
            }
        }
        bounds.sort_unstable();
        bounds.dedup();
        let pieces: Vec<Span> = bounds
            .windows(2)
            .map(|w| Span::new(w[0].to_vec(), w[1].to_vec()))
            .collect();
        // Each file's weight spread over the pieces it overlaps.
        let mut per_piece: Vec<Vec<usize>> = vec![Vec::new(); pieces.len()];
        let mut weight = vec![0u64; pieces.len()];
        for (fi, f) in overlapping.iter().enumerate() {
            let first =
                pieces.partition_point(|p| p.end.as_slice() <= f.file.span.start.as_slice());
            let last = pieces.partition_point(|p| p.start.as_slice() < f.file.span.end.as_slice());
            let n = last.saturating_sub(first).max(1) as u64;
            for p in first..last {
                per_piece[p].push(fi);
                weight[p] += f.file.raw_bytes / n;
            }
        }
        let mut current: Option<(Span, Vec<usize>, u64)> = None;
        for (i, piece) in pieces.into_iter().enumerate() {
            let fs = &per_piece[i];
            if let Some((s, unit_files, bytes)) = current.as_mut() {
                let mut merged = unit_files.clone();
                merged.extend(fs.iter().copied());
                merged.sort_unstable();
                merged.dedup();
                let fits = merged.len() <= settings.max_files_per_unit
                    && *bytes + weight[i] <= settings.unit_target_bytes;
                if fits {
                    s.end = piece.end;
                    *unit_files = merged;
                    *bytes += weight[i];
                    continue;
                }
            }
            if let Some(done) = current.take() {
                units.push(unit(done, &overlapping));
            }
            current = Some((piece, fs.clone(), weight[i]));
        }
        if let Some(done) = current {
            units.push(unit(done, &overlapping));
        }
    }
    units
}

fn unit((span, files, _): (Span, Vec<usize>, u64), overlapping: &[&Arc<LayerFile>]) -> WorkUnit {
    WorkUnit {
        span,
        files: files.iter().map(|&i| overlapping[i].clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_storage::{StorageContext, open_memory};

    fn file(start: &str, end: &str, bytes: u64) -> Arc<LayerFile> {
        Arc::new(LayerFile {
            path: format!("{start}-{end}"),
            file: BackupFile {
                span: Span::new(start.as_bytes(), end.as_bytes()),
                raw_bytes: bytes,
                ..BackupFile::default()
            },
            storage: open_memory(&StorageContext::default()),
        })
    }

    #[test]
    fn units_tile_the_spans_and_keep_every_overlapping_file() {
        let files = vec![
            file("a", "f", 100),
            file("f", "k", 100),
            file("k", "p", 100),
            file("c", "n", 50),
        ];
        let spans = SpanSet::from_spans([Span::new(*b"b", *b"m"), Span::new(*b"x", *b"z")]);
        let settings = RestoreSettings {
            unit_target_bytes: 150,
            max_files_per_unit: 2,
            ..RestoreSettings::for_tests()
        };
        let units = cover(&spans, &files, &settings);
        // The units tile the requested spans exactly.
        let tiled = SpanSet::from_spans(units.iter().map(|u| u.span.clone()));
        assert_eq!(tiled, spans);
        for w in units.windows(2) {
            assert!(w[0].span.end <= w[1].span.start);
        }
        // Each unit has exactly the files overlapping it.
        for u in &units {
            let mut want: Vec<&str> = files
                .iter()
                .filter(|f| f.file.span.overlaps(&u.span))
                .map(|f| f.path.as_str())
                .collect();
            let mut got: Vec<&str> = u.files.iter().map(|f| f.path.as_str()).collect();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "{:?}", u.span);
            assert!(u.files.len() <= 2);
        }
        assert!(units.len() >= 3, "{units:?}");
    }
}
