//! Names of everything in a backup collection.
//!
//! ```text
//! <collection>/
//!   2026/11/24-193000.00/                      a full backup (UTC end time, hundredths of a second)
//!     BACKUP_MANIFEST, BACKUP_MANIFEST-CHECKSUM
//!     BACKUP_METADATA-FILES, BACKUP_METADATA-DESCRIPTORS   streamed side files of the manifest
//!     ENCRYPTION-INFO                           when encrypted
//!     data/<node>-<seq>.sst                     data files
//!     progress/BACKUP-CHECKPOINT-<inverted>     checkpoints
//!   incrementals/2026/11/24-193000.00/20261125/193000.00/   an incremental layer on that full
//!   metadata/latest/LATEST-<inverted>          pointer to the newest full backup
//! ```
//!
//! `<inverted>` is 24 lower-case hex digits: `u64::MAX - wall` (16) then
//! `u32::MAX - logical` (8) of a timestamp, so a plain lexicographic listing
//! of `metadata/latest/` or `progress/` returns the **newest first**, and
//! each write (at its own HLC time) gets a name never used before: nothing
//! is overwritten, which keeps the collection object-lock friendly.
//! Full-backup directories sort oldest first (CockroachDB's layout).

use time::{Date, Month, PrimitiveDateTime, Time};

use crate::Timestamp;

/// The manifest of one backup layer.
pub const BACKUP_MANIFEST: &str = "BACKUP_MANIFEST";
/// The manifest's checksum file.
pub const BACKUP_MANIFEST_CHECKSUM: &str = "BACKUP_MANIFEST-CHECKSUM";
/// The manifest's streamed file list.
pub const FILES_SIDE_FILE: &str = "BACKUP_METADATA-FILES";
/// The manifest's streamed descriptors.
pub const DESCRIPTORS_SIDE_FILE: &str = "BACKUP_METADATA-DESCRIPTORS";
/// The KDF parameters of an encrypted full backup.
pub const ENCRYPTION_INFO: &str = "ENCRYPTION-INFO";
/// Directory of incremental layers.
pub const INCREMENTALS_DIR: &str = "incrementals";
/// Directory of LATEST pointers.
pub const LATEST_DIR: &str = "metadata/latest";
/// Prefix of a LATEST pointer's name inside [`LATEST_DIR`].
pub const LATEST_PREFIX: &str = "LATEST-";
/// Directory of checkpoints inside a backup layer.
pub const PROGRESS_DIR: &str = "progress";
/// Prefix of a checkpoint's name inside [`PROGRESS_DIR`].
pub const CHECKPOINT_PREFIX: &str = "BACKUP-CHECKPOINT-";
/// Directory of data files inside a backup layer.
pub const DATA_DIR: &str = "data";

/// The subdirectory of a full backup ending at `end`: `YYYY/MM/DD-HHMMSS.ss` (UTC).
pub fn full_backup_subdir(end: Timestamp) -> String {
    let (date, time) = date_time(end);
    format!("{}/{}", date_slashed(&date), time_with_dash(&date, &time))
}

/// The timestamp (to the hundredth of a second) a full-backup subdirectory names, if it is one.
pub fn parse_full_backup_subdir(s: &str) -> Option<Timestamp> {
    let s = s.trim_matches('/');
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'/' || b[7] != b'/' || b[10] != b'-' || b[17] != b'.' {
        return None;
    }
    build(
        num(&s[0..4])?,
        num(&s[5..7])?,
        num(&s[8..10])?,
        &s[11..17],
        &s[18..20],
    )
}

/// The directory of an incremental layer on the full backup `full_subdir`, ending at `end`:
/// `incrementals/<full subdir>/<YYYYMMDD>/<HHMMSS.ss>`.
pub fn incremental_dir(full_subdir: &str, end: Timestamp) -> String {
    let (date, time) = date_time(end);
    format!(
        "{INCREMENTALS_DIR}/{}/{:04}{:02}{:02}/{}",
        full_subdir.trim_matches('/'),
        date.year(),
        u8::from(date.month()),
        date.day(),
        hms(&time)
    )
}

/// Splits an incremental layer's directory into its full backup's subdirectory and end time.
pub fn parse_incremental_dir(s: &str) -> Option<(String, Timestamp)> {
    let rest = s
        .trim_matches('/')
        .strip_prefix(INCREMENTALS_DIR)?
        .strip_prefix('/')?;
    let (full, tail) = rest.split_at_checked(20)?;
    parse_full_backup_subdir(full)?;
    let tail = tail.strip_prefix('/')?;
    let b = tail.as_bytes();
    if b.len() != 18 || b[8] != b'/' || b[15] != b'.' {
        return None;
    }
    let ts = build(
        num(&tail[0..4])?,
        num(&tail[4..6])?,
        num(&tail[6..8])?,
        &tail[9..15],
        &tail[16..18],
    )?;
    Some((full.to_string(), ts))
}

/// The LATEST pointer written at `ts`: `metadata/latest/LATEST-<inverted>`.
pub fn latest_file_name(ts: Timestamp) -> String {
    format!("{LATEST_DIR}/{LATEST_PREFIX}{}", inverted_hex(ts))
}

/// The time a LATEST pointer's path (or bare name) was written at.
pub fn parse_latest_file_name(name: &str) -> Option<Timestamp> {
    let base = name.rsplit('/').next()?;
    parse_inverted_hex(base.strip_prefix(LATEST_PREFIX)?)
}

/// The contents of a LATEST pointer: the full backup's subdirectory, as UTF-8 text.
pub fn latest_contents(full_subdir: &str) -> Vec<u8> {
    full_subdir.trim_matches('/').as_bytes().to_vec()
}

/// The full backup subdirectory a LATEST pointer's contents name, if they name one.
pub fn parse_latest_contents(bytes: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(bytes).ok()?.trim().trim_matches('/');
    parse_full_backup_subdir(s).map(|_| s.to_string())
}

/// The checkpoint written at `ts`, relative to its backup layer: `progress/BACKUP-CHECKPOINT-<inverted>`.
pub fn checkpoint_file_name(ts: Timestamp) -> String {
    format!("{PROGRESS_DIR}/{CHECKPOINT_PREFIX}{}", inverted_hex(ts))
}

/// The time a checkpoint's path (or bare name) was written at.
pub fn parse_checkpoint_file_name(name: &str) -> Option<Timestamp> {
    let base = name.rsplit('/').next()?;
    parse_inverted_hex(base.strip_prefix(CHECKPOINT_PREFIX)?)
}

/// A data file's path in its layer: `data/<node>-<seq>.sst`.
///
/// The caller makes `seq` unique within the layer for that node, across
/// job resumptions too (e.g. a counter that starts at the resumption's
/// HLC wall time), so that no data file is ever written twice.
pub fn data_file_name(node: u32, seq: u64) -> String {
    format!("{DATA_DIR}/{node}-{seq}.sst")
}

/// The node and sequence number of a data file's path.
pub fn parse_data_file_name(name: &str) -> Option<(u32, u64)> {
    let base = name
        .strip_prefix(DATA_DIR)?
        .strip_prefix('/')?
        .strip_suffix(".sst")?;
    let (node, seq) = base.split_once('-')?;
    Some((num(node)?, num(seq)?))
}

/// 24 hex digits that sort in the reverse order of timestamps.
pub fn inverted_hex(ts: Timestamp) -> String {
    let wall = u64::try_from(ts.wall).unwrap_or(0);
    format!("{:016x}{:08x}", u64::MAX - wall, u32::MAX - ts.logical)
}

/// Inverse of [`inverted_hex`].
pub fn parse_inverted_hex(s: &str) -> Option<Timestamp> {
    if s.len() != 24 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let wall = u64::MAX - u64::from_str_radix(&s[..16], 16).ok()?;
    let logical = u32::MAX - u32::from_str_radix(&s[16..], 16).ok()?;
    Some(Timestamp::new(i64::try_from(wall).ok()?, logical))
}

fn date_time(ts: Timestamp) -> (Date, Time) {
    let dt = ts.to_datetime();
    (dt.date(), dt.time())
}

fn date_slashed(d: &Date) -> String {
    format!("{:04}/{:02}", d.year(), u8::from(d.month()))
}

fn time_with_dash(d: &Date, t: &Time) -> String {
    format!("{:02}-{}", d.day(), hms(t))
}

fn hms(t: &Time) -> String {
    format!(
        "{:02}{:02}{:02}.{:02}",
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 10_000_000
    )
}

fn num<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn build(year: i32, month: u8, day: u8, hhmmss: &str, hundredths: &str) -> Option<Timestamp> {
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let time = Time::from_hms_nano(
        num(&hhmmss[0..2])?,
        num(&hhmmss[2..4])?,
        num(&hhmmss[4..6])?,
        num::<u32>(hundredths)? * 10_000_000,
    )
    .ok()?;
    let nanos = PrimitiveDateTime::new(date, time)
        .assume_utc()
        .unix_timestamp_nanos();
    Some(Timestamp::from_wall(
        i64::try_from(nanos).ok().filter(|&n| n >= 0)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reference_layout() {
        let end: Timestamp = "2026-11-24T19:30:00.25Z".parse().unwrap();
        assert_eq!(full_backup_subdir(end), "2026/11/24-193000.25");
        assert_eq!(parse_full_backup_subdir("2026/11/24-193000.25"), Some(end));
        let inc: Timestamp = "2026-11-25T19:30:00Z".parse().unwrap();
        let dir = incremental_dir("2026/11/24-193000.25", inc);
        assert_eq!(dir, "incrementals/2026/11/24-193000.25/20261125/193000.00");
        assert_eq!(
            parse_incremental_dir(&dir),
            Some(("2026/11/24-193000.25".to_string(), inc))
        );
        assert_eq!(data_file_name(3, 17), "data/3-17.sst");
        assert_eq!(parse_data_file_name("data/3-17.sst"), Some((3, 17)));
        assert!(latest_file_name(end).starts_with("metadata/latest/LATEST-"));
        assert!(checkpoint_file_name(end).starts_with("progress/BACKUP-CHECKPOINT-"));
        for bad in [
            "2026/13/24-193000.25",
            "2026/11/24-193000.2",
            "x",
            "2026/11/24 193000.25",
        ] {
            assert_eq!(parse_full_backup_subdir(bad), None, "{bad}");
        }
        assert_eq!(parse_data_file_name("data/3-x.sst"), None);
        let latest = latest_contents("/2026/11/24-193000.25/");
        assert_eq!(latest, b"2026/11/24-193000.25");
        assert_eq!(
            parse_latest_contents(&latest).as_deref(),
            Some("2026/11/24-193000.25")
        );
        assert_eq!(parse_latest_contents(b"../../etc"), None);
        assert_eq!(parse_latest_file_name("metadata/latest/LATEST-zz"), None);
    }

    proptest! {
        #[test]
        fn pointers_list_newest_first_and_round_trip(a in 0i64..i64::MAX, la: u32, b in 0i64..i64::MAX, lb: u32) {
            let (x, y) = (Timestamp::new(a, la), Timestamp::new(b, lb));
            prop_assert_eq!(x.cmp(&y), latest_file_name(y).cmp(&latest_file_name(x)));
            prop_assert_eq!(x.cmp(&y), checkpoint_file_name(y).cmp(&checkpoint_file_name(x)));
            prop_assert_eq!(parse_latest_file_name(&latest_file_name(x)), Some(x));
            prop_assert_eq!(parse_checkpoint_file_name(&checkpoint_file_name(x)), Some(x));
        }

        #[test]
        fn full_subdirs_sort_by_time_and_round_trip(a in 0i64..4_102_444_800_000_000_000, b in 0i64..4_102_444_800_000_000_000) {
            // Up to year 2100: four-digit years.
            let (x, y) = (Timestamp::from_wall(a), Timestamp::from_wall(b));
            let (sx, sy) = (full_backup_subdir(x), full_backup_subdir(y));
            let hundredth = |t: Timestamp| Timestamp::from_wall(t.wall / 10_000_000 * 10_000_000);
            prop_assert_eq!(parse_full_backup_subdir(&sx), Some(hundredth(x)));
            prop_assert_eq!(hundredth(x).cmp(&hundredth(y)), sx.cmp(&sy));
            let inc = incremental_dir(&sx, y);
            prop_assert_eq!(parse_incremental_dir(&inc), Some((sx, hundredth(y))));
        }
    }
}
