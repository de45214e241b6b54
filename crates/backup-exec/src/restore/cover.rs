//! The restore span cover: the requested spans cut into work units, each
//! with the data files of every layer that may hold its keys.

use std::sync::Arc;

use backup_format::manifest::BackupFile;
use backup_format::{EncryptionKey, Span, SpanSet};
use backup_storage::ExternalStorage;

use super::read::read_index;
use crate::error::ExecError;

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

/// Units are not cut below this many raw bytes to spread work.
const MIN_BALANCED_UNIT: u64 = 16 << 20;

/// The unit size that gives every worker about four units of a restore of
/// `spans` from `files`: their raw bytes over `4 × workers`, at least
/// [`MIN_BALANCED_UNIT`] and at most `unit_target_bytes`. Without it a
/// restore smaller than one 384 MiB unit would run on one worker.
pub(crate) fn balanced_target(
    spans: &SpanSet,
    files: &[Arc<LayerFile>],
    settings: &RestoreSettings,
) -> u64 {
    let total: u64 = files
        .iter()
        .filter(|f| spans.overlaps(&f.file.span))
        .map(|f| f.file.raw_bytes)
        .sum();
    let per_worker = total / (4 * settings.workers.max(1) as u64);
    per_worker.clamp(
        MIN_BALANCED_UNIT.min(settings.unit_target_bytes),
        settings.unit_target_bytes,
    )
}

/// Cuts each unit whose files hold more than `target` raw bytes into pieces
/// of about `target` bytes of its largest file, at that file's block
/// boundaries (read from its index); each piece keeps the files overlapping
/// it. A cut is a key, so every version of a key stays in one unit.
pub(crate) async fn split_large(
    units: Vec<WorkUnit>,
    target: u64,
    key: Option<&EncryptionKey>,
) -> Result<Vec<WorkUnit>, ExecError> {
    let mut out = Vec::with_capacity(units.len());
    for unit in units {
        let bytes: u64 = unit.files.iter().map(|f| f.file.raw_bytes).sum();
        let largest = unit.files.iter().max_by_key(|f| f.file.raw_bytes).cloned();
        let Some(largest) = largest.filter(|_| bytes > target) else {
            out.push(unit);
            continue;
        };
        let (_, index) = read_index(&largest, key).await?;
        let mut cuts: Vec<Vec<u8>> = Vec::new();
        let mut since_cut = 0u64;
        for block in index.blocks_overlapping(&unit.span) {
            let after_last = cuts.last().unwrap_or(&unit.span.start);
            if since_cut >= target
                && block.first_key.as_slice() > after_last.as_slice()
                && unit.span.contains_key(&block.first_key)
            {
                cuts.push(block.first_key.clone());
                since_cut = 0;
            }
            since_cut += block.raw_len;
        }
        let mut start = unit.span.start.clone();
        for end in cuts.into_iter().chain([unit.span.end.clone()]) {
            let span = Span::new(std::mem::replace(&mut start, end.clone()), end);
            let files = unit
                .files
                .iter()
                .filter(|f| f.file.span.overlaps(&span))
                .cloned()
                .collect();
            out.push(WorkUnit { span, files });
        }
    }
    Ok(out)
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

    #[test]
    fn the_balanced_target_gives_each_worker_about_four_units() {
        let files = vec![file("a", "m", 96 << 20), file("m", "z", 32 << 20)];
        let all = SpanSet::from_spans([Span::new(*b"a", *b"z")]);
        let settings = RestoreSettings {
            workers: 2,
            ..RestoreSettings::default()
        };
        // 128 MiB over 2 workers: 16 MiB units.
        assert_eq!(balanced_target(&all, &files, &settings), 16 << 20);
        // Never below the floor, never above the setting.
        let small = SpanSet::from_spans([Span::new(*b"n", *b"o")]);
        assert_eq!(
            balanced_target(&small, &files, &settings),
            MIN_BALANCED_UNIT
        );
        let big = RestoreSettings {
            unit_target_bytes: 8 << 20,
            ..settings
        };
        assert_eq!(balanced_target(&all, &files, &big), 8 << 20);
    }

    #[tokio::test]
    async fn a_large_unit_is_cut_at_block_boundaries_of_its_largest_file() {
        use backup_format::MvccEntry;
        use backup_format::datafile::{DataFileOptions, DataFileWriter};
        let key = |i: u32| format!("k{i:05}").into_bytes();
        let options = DataFileOptions {
            block_size: 1_000,
            ..DataFileOptions::default()
        };
        let mut w = DataFileWriter::new("big", Vec::new(), &options).unwrap();
        for i in 0..2_000 {
            let e = MvccEntry::put(key(i), backup_format::Timestamp::new(5, 0), vec![7u8; 40]);
            w.add(&e).unwrap();
        }
        let (bytes, summary) = w.finish().unwrap();
        let storage = open_memory(&StorageContext::default());
        storage.put("big", bytes.into()).await.unwrap();
        let big = Arc::new(LayerFile {
            path: "big".into(),
            file: BackupFile::from_summary(&summary, ""),
            storage,
        });
        let small = file("k00500", "k00600", 10);
        let span = Span::new(key(100), key(1_900));
        let unit = WorkUnit {
            span: span.clone(),
            files: vec![big.clone(), small],
        };
        let target = summary.raw_bytes / 8;
        let units = split_large(vec![unit], target, None).await.unwrap();
        // The pieces tile the unit's span, each about `target` of the file.
        assert!((6..=9).contains(&units.len()), "{} units", units.len());
        assert_eq!(units.first().unwrap().span.start, span.start);
        assert_eq!(units.last().unwrap().span.end, span.end);
        for w in units.windows(2) {
            assert_eq!(w[0].span.end, w[1].span.start);
        }
        // Each keeps exactly the files overlapping it.
        for u in &units {
            assert!(u.files.iter().any(|f| f.path == "big"));
            let has_small = u.files.iter().any(|f| f.path != "big");
            assert_eq!(
                has_small,
                u.span.overlaps(&Span::new(key(500), key(600))),
                "{:?}",
                u.span
            );
        }
        // A unit within the target stays whole, without reading anything.
        let whole = WorkUnit {
            span,
            files: vec![big],
        };
        assert_eq!(
            split_large(vec![whole], u64::MAX, None)
                .await
                .unwrap()
                .len(),
            1
        );
    }
}
