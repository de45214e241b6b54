//! The `bank` workload: `bank.accounts (id INT PRIMARY KEY, balance INT,
//! payload STRING)` created through SQL, then filled at bulk speed by
//! ingesting large sorted batches straight into the MVCC store (one engine
//! commit per batch, rows built on a second thread while the previous batch
//! is written); and a small multi-table sample with a foreign key, a view, a
//! sequence and an enum type.

use std::sync::mpsc::sync_channel;

use backup_format::MvccEntry;

use crate::catalog::Snapshot;
use crate::cluster::Cluster;
use crate::keys;
use crate::sql::encoding::{encode_key, encode_row_into};
use crate::sql::kv::KvTxn;
use crate::sql::{SqlError, Value};

/// How much bank data to load.
#[derive(Clone, Debug)]
pub struct BankConfig {
    /// Number of accounts.
    pub rows: u64,
    /// Bytes of each account's `payload` string.
    pub payload_bytes: usize,
    /// Rows per ingested batch.
    pub batch_rows: usize,
    /// Every account's starting balance.
    pub initial_balance: i64,
}

impl Default for BankConfig {
    /// 1,000 accounts with 100-byte payloads, 16,384-row batches, balance 1,000.
    fn default() -> BankConfig {
        BankConfig {
            rows: 1_000,
            payload_bytes: 100,
            batch_rows: 16_384,
            initial_balance: 1_000,
        }
    }
}

/// What [`load`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BankStats {
    /// The `bank.accounts` table id.
    pub table_id: u64,
    /// Rows written.
    pub rows: u64,
    /// Row data written: key plus encoded value bytes.
    pub bytes: u64,
}

/// Creates `bank.accounts` (if missing) and loads `config.rows` accounts with
/// ids `0..rows`, all at one timestamp.
pub fn load(cluster: &Cluster, config: &BankConfig) -> Result<BankStats, SqlError> {
    let mut s = cluster.session("root")?;
    s.execute("CREATE DATABASE IF NOT EXISTS bank")?;
    s.execute("CREATE TABLE IF NOT EXISTS bank.accounts (id INT PRIMARY KEY, balance INT, payload STRING)")?;
    let kv = KvTxn::new(cluster, cluster.now()?);
    let table_id = Snapshot::load(&kv)?
        .resolve(&["bank".into(), "accounts".into()], "bank")?
        .id;
    let ts = cluster.now()?;
    let batch_rows = config.batch_rows.max(1) as u64;
    let (tx, rx) = sync_channel::<(Vec<MvccEntry>, u64)>(1);
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            let mut start = 0;
            while start < config.rows {
                let end = (start + batch_rows).min(config.rows);
                let batch = build_batch(table_id, ts, start..end, config);
                if tx.send(batch).is_err() {
                    break;
                }
                start = end;
            }
        });
        let mut stats = BankStats {
            table_id,
            rows: 0,
            bytes: 0,
        };
        for (batch, bytes) in rx {
            stats.rows += batch.len() as u64;
            stats.bytes += bytes;
            cluster.ingest(batch)?;
        }
        producer
            .join()
            .map_err(|_| SqlError::Invalid("the bank row generator panicked".into()))?;
        // Bulk ingest commits lazily: the rows are on disk once this returns.
        cluster.sync()?;
        Ok(stats)
    })
}

/// Builds one sorted batch of account rows, and its row-data bytes.
fn build_batch(
    table: u64,
    ts: backup_format::Timestamp,
    ids: std::ops::Range<u64>,
    config: &BankConfig,
) -> (Vec<MvccEntry>, u64) {
    let mut out = Vec::with_capacity((ids.end - ids.start) as usize);
    let mut bytes = 0u64;
    let prefix = keys::index_prefix(table, 1);
    for id in ids {
        let mut key = Vec::with_capacity(prefix.len() + 9);
        key.extend_from_slice(&prefix);
        key.extend_from_slice(&encode_key(&[&Value::Int(id as i64)]));
        let row = [
            Value::Int(id as i64),
            Value::Int(config.initial_balance),
            Value::String(payload(id, config.payload_bytes)),
        ];
        let mut value = Vec::with_capacity(config.payload_bytes + 24);
        encode_row_into(&mut value, &row);
        bytes += (key.len() + value.len()) as u64;
        out.push(MvccEntry {
            key,
            ts,
            value: Some(value),
        });
    }
    (out, bytes)
}

/// A deterministic printable payload for account `id`.
fn payload(id: u64, len: usize) -> String {
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

/// The statements of the multi-table sample, in order.
pub const SAMPLE_SQL: &[&str] = &[
    "CREATE DATABASE bank",
    "USE bank",
    "CREATE TYPE account_kind AS ENUM ('checking', 'savings')",
    "CREATE SEQUENCE customer_ids START WITH 1",
    "CREATE TABLE customers (id INT PRIMARY KEY DEFAULT nextval('customer_ids'), name STRING NOT NULL)",
    "CREATE TABLE accounts (id INT PRIMARY KEY, customer_id INT NOT NULL REFERENCES customers (id), \
     kind account_kind NOT NULL, balance INT NOT NULL, payload STRING)",
    "INSERT INTO customers (name) VALUES ('alice'), ('bob'), ('carol')",
    "INSERT INTO accounts VALUES (1, 1, 'checking', 500, 'a1'), (2, 1, 'savings', 2500, 'a2'), \
     (3, 2, 'checking', 40, 'b1'), (4, 3, 'savings', 9000, 'c1')",
    "CREATE VIEW rich_accounts AS SELECT id, customer_id, balance FROM accounts WHERE balance >= 1000",
];

/// Creates the sample: `bank.customers` (ids from the sequence
/// `bank.customer_ids`), `bank.accounts` with a foreign key to customers and
/// a column of the enum `bank.account_kind`, and the view
/// `bank.rich_accounts`. Fails if a `bank` database exists.
pub fn sample(cluster: &Cluster) -> Result<(), SqlError> {
    let mut s = cluster.session("root")?;
    for sql in SAMPLE_SQL {
        s.execute(sql)?;
    }
    Ok(())
}
