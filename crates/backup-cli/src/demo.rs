//! `backup-cli demo`: the main job, end to end, on a temporary cluster.
//!
//! Loads the multi-table bank sample, takes a full backup, changes data
//! (including under a transaction that holds intents while the next backup
//! runs), takes an incremental with revision history, shows SHOW BACKUPS and
//! SHOW BACKUP, restores at the latest time and at a time in between, and
//! proves each restore by comparing fingerprints with the source as of the
//! restored time. Every check is printed; any failed check exits 1.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use backup_exec::IntentPolicy;
use backup_format::Timestamp;
use embedded_cluster::{Cluster, QueryResult, Session, Value, bank, keys};

use crate::fingerprints;
use crate::output::{self, Format};
use crate::progress::{BarMode, JobWatch, runs_a_job};
use crate::redact::{Secrets, statement_for_display};
use crate::store::{OpenStore, Schedules};

/// The collection the demo backs up into.
const COLLECTION: &str = "nodelocal://1/demo-backups";

/// Arguments of `backup-cli demo`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo run --release -p backup-cli -- demo
  backup-cli demo --rows 100000 --nodes 5
  backup-cli demo --store ./demo-store     # keep the cluster, then:
  backup-cli sql --store ./demo-store -e \"SHOW BACKUPS IN 'nodelocal://1/demo-backups'\"")]
pub struct DemoArgs {
    /// Nodes of the cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Accounts added to the sample's four (inserted through SQL).
    #[arg(long, default_value_t = 20_000)]
    pub rows: u64,
    /// Keep the cluster in this new directory instead of a temporary one.
    #[arg(long)]
    pub store: Option<PathBuf>,
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let temp;
    let dir = match &args.store {
        Some(d) => {
            if d.join("data.redb").exists() {
                return Err(anyhow!(
                    "{} already holds a cluster: the demo needs a new directory \
                     (or leave out --store for a temporary one)",
                    d.display()
                ));
            }
            d.clone()
        }
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    let store = OpenStore::open(&dir, args.nodes, Schedules::Ignore)?;
    let mut demo = Demo::new(store.cluster())?;
    demo.story(&args)?;
    let failed = demo.failed;
    println!();
    if failed == 0 {
        println!(
            "All {} checks passed in {:.1}s.",
            demo.passed,
            started.elapsed().as_secs_f64()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failed} of {} checks FAILED.", demo.passed + failed);
        Ok(ExitCode::FAILURE)
    }
}

/// The demo's session and tally.
struct Demo {
    cluster: Cluster,
    session: Session,
    secrets: Secrets,
    bars: BarMode,
    passed: usize,
    failed: usize,
}

impl Demo {
    fn new(cluster: &Cluster) -> anyhow::Result<Demo> {
        Ok(Demo {
            cluster: cluster.clone(),
            session: cluster.session("root")?,
            secrets: Secrets::default(),
            bars: if std::io::stderr().is_terminal() && std::io::stdout().is_terminal() {
                BarMode::Live
            } else {
                BarMode::Summary
            },
            passed: 0,
            failed: 0,
        })
    }

    fn story(&mut self, args: &DemoArgs) -> anyhow::Result<()> {
        heading(&format!(
            "1. A {}-node cluster in {}, and the multi-table bank sample",
            self.cluster.nodes().len(),
            if args.store.is_some() {
                "--store"
            } else {
                "a temporary store"
            }
        ));
        for sql in bank::SAMPLE_SQL {
            self.exec(sql)?;
        }
        self.load_accounts(args.rows)?;
        self.exec("SELECT count(*) AS accounts, sum(balance) AS total FROM bank.accounts")?;

        heading("2. A full backup");
        self.exec(&format!("BACKUP DATABASE bank INTO '{COLLECTION}'"))?;

        heading("3. Changes after the full backup");
        self.exec("UPDATE bank.accounts SET balance = balance + 100 WHERE id % 10 = 0")?;
        self.exec("DELETE FROM bank.accounts WHERE id = 3")?;
        self.exec("INSERT INTO bank.customers (name) VALUES ('dave')")?;
        let between = self.scalar("SELECT cluster_logical_timestamp()")?;
        println!("   (a time in between, restored below: {between})");
        self.exec("UPDATE bank.accounts SET balance = balance - 50 WHERE id % 7 = 0")?;
        self.exec("INSERT INTO bank.accounts VALUES (3, 4, 'savings', 75, 'd1')")?;

        heading(
            "4. An incremental backup with revision history, while a transaction holds intents",
        );
        let txn = self.hold_intents()?;
        self.exec(&format!(
            "BACKUP DATABASE bank INTO LATEST IN '{COLLECTION}' WITH revision_history"
        ))?;
        let committed = txn
            .join()
            .map_err(|_| anyhow!("the transaction thread panicked"))??;
        println!("   (the transaction committed at {committed})");

        heading("5. What the collection holds");
        self.exec(&format!("SHOW BACKUPS IN '{COLLECTION}'"))?;
        let show = self.exec(&format!("SHOW BACKUP FROM LATEST IN '{COLLECTION}'"))?;
        let end = latest_end_time(&show)?;
        println!("   (the chain ends at {end})");

        heading("6. Restore at the latest time, proven by fingerprints");
        self.exec(&format!(
            "RESTORE DATABASE bank FROM LATEST IN '{COLLECTION}' WITH new_db_name = 'bank_latest'"
        ))?;
        self.prove("bank_latest", end)?;
        self.sql_fingerprints_agree("bank_latest", "accounts")?;
        if committed > end {
            println!(
                "   (the transaction committed after the backup's time: accounts 1 and 2 are gone from bank, not from the restore)"
            );
            let gone = self.exec("SELECT id FROM bank.accounts WHERE id < 3 ORDER BY id")?;
            let kept = self.exec("SELECT id FROM bank_latest.accounts WHERE id < 3 ORDER BY id")?;
            self.check(
                "the open transaction's deletes are not in the backup taken while it held intents",
                gone.rows.is_empty() && kept.rows.len() == 2,
            );
        }
        self.check_rows(
            "SELECT count(*), sum(balance) FROM bank.accounts",
            "SELECT count(*), sum(balance) FROM bank_latest.accounts",
            &end.to_string(),
        )?;

        heading(
            "7. Restore AS OF SYSTEM TIME in between (revision history), proven by fingerprints",
        );
        self.exec(&format!(
            "RESTORE DATABASE bank FROM LATEST IN '{COLLECTION}' AS OF SYSTEM TIME {between} \
             WITH new_db_name = 'bank_then'"
        ))?;
        let between_ts = Timestamp::parse_decimal(&between)
            .map_err(|e| anyhow!("cluster_logical_timestamp() returned {between}: {e}"))?;
        self.prove("bank_then", between_ts)?;
        self.check_rows(
            "SELECT count(*), sum(balance) FROM bank.accounts",
            "SELECT count(*), sum(balance) FROM bank_then.accounts",
            &between,
        )?;
        self.exec("SELECT count(*) AS rich FROM bank_then.rich_accounts")?;
        Ok(())
    }

    /// Adds `rows` accounts (ids from 5) through multi-row INSERTs.
    fn load_accounts(&mut self, rows: u64) -> anyhow::Result<()> {
        if rows == 0 {
            return Ok(());
        }
        const BATCH: u64 = 1_000;
        println!(
            "> INSERT INTO bank.accounts VALUES ... ({rows} more accounts, {BATCH} per statement)"
        );
        let started = Instant::now();
        let mut id = 5;
        while id < rows + 5 {
            let end = (id + BATCH).min(rows + 5);
            let values: Vec<String> = (id..end)
                .map(|i| {
                    let kind = if i % 2 == 0 { "checking" } else { "savings" };
                    format!(
                        "({i}, {}, '{kind}', {}, 'p{i}')",
                        i % 3 + 1,
                        100 + (i * 37) % 5_000
                    )
                })
                .collect();
            self.session
                .execute(&format!(
                    "INSERT INTO bank.accounts VALUES {}",
                    values.join(", ")
                ))
                .map_err(|e| anyhow!("loading accounts: {e}"))?;
            id = end;
        }
        println!("INSERT 0 {rows} ({:.1}s)", started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Opens a transaction that closes accounts 1 and 2 (deletion intents on
    /// their rows) and commits it a second later, while the incremental
    /// backup that has to wait for it runs.
    fn hold_intents(
        &mut self,
    ) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<Timestamp>>> {
        let table = fingerprints::table_id(&self.cluster, "bank", "accounts")?;
        let now = self.cluster.now()?;
        let rows = self
            .cluster
            .scan(&keys::table_span(table), now, IntentPolicy::FailFast)?;
        let txn = self.cluster.begin()?;
        for (key, _) in rows.iter().take(2) {
            txn.delete(key)?;
        }
        println!(
            "   transaction {} holds deletion intents on accounts 1 and 2; it commits in 1s, \
             while the backup waits for it",
            txn.id()
        );
        Ok(std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            Ok(txn.commit()?)
        }))
    }

    /// Checks that every table of `restored` fingerprints equal to `bank` as of `ts`.
    fn prove(&mut self, restored: &str, ts: Timestamp) -> anyhow::Result<()> {
        let source = fingerprints::of_database(&self.cluster, "bank", ts)?;
        let now = self.cluster.now()?;
        let copy = fingerprints::of_database(&self.cluster, restored, now)?;
        println!("   fingerprints: bank as of {ts} vs {restored} now");
        let names: std::collections::BTreeSet<&String> = source.keys().chain(copy.keys()).collect();
        for name in names {
            let (a, b) = (source.get(name), copy.get(name));
            let ok = a.is_some() && a == b;
            println!(
                "     {name:<10} {:<24} {:<24} {}",
                show(a),
                show(b),
                if ok { "match" } else { "MISMATCH" }
            );
            self.check(
                &format!("{restored}.{name} fingerprints equal bank.{name} as of {ts}"),
                ok,
            );
        }
        Ok(())
    }

    /// Checks that `SHOW EXPERIMENTAL_FINGERPRINTS` of `db.table` shows the
    /// fingerprints computed from the store.
    fn sql_fingerprints_agree(&mut self, db: &str, table: &str) -> anyhow::Result<()> {
        let shown = self.exec(&format!(
            "SHOW EXPERIMENTAL_FINGERPRINTS FROM TABLE {db}.{table}"
        ))?;
        let mut from_sql: Vec<u64> = shown
            .rows
            .iter()
            .filter_map(|r| r.get(1).and_then(Value::as_int))
            .map(|f| f as u64)
            .collect();
        let now = self.cluster.now()?;
        let computed = fingerprints::of_database(&self.cluster, db, now)?;
        let mut mine: Vec<u64> = computed
            .get(table)
            .map(|m| m.values().copied().collect())
            .unwrap_or_default();
        from_sql.sort_unstable();
        mine.sort_unstable();
        self.check(
            &format!("SHOW EXPERIMENTAL_FINGERPRINTS of {db}.{table} agrees with the store"),
            !mine.is_empty() && from_sql == mine,
        );
        Ok(())
    }

    /// Checks that `restored_sql` now returns what `source_sql` returned as of `ts`.
    fn check_rows(&mut self, source_sql: &str, restored_sql: &str, ts: &str) -> anyhow::Result<()> {
        let then = self.exec(&format!("{source_sql} AS OF SYSTEM TIME {ts}"))?;
        let now = self.exec(restored_sql)?;
        self.check(
            &format!("`{restored_sql}` equals the source as of {ts}"),
            then.rows == now.rows,
        );
        Ok(())
    }

    fn check(&mut self, what: &str, ok: bool) {
        if ok {
            self.passed += 1;
            println!("   CHECK ok: {what}");
        } else {
            self.failed += 1;
            println!("   CHECK FAILED: {what}");
        }
    }

    /// Prints and runs one statement, with a progress bar for a job, and
    /// prints its result.
    fn exec(&mut self, sql: &str) -> anyhow::Result<QueryResult> {
        self.secrets.learn(sql);
        println!("> {};", statement_for_display(sql, &self.secrets));
        let _ = std::io::stdout().flush();
        let watch = runs_a_job(sql).then(|| JobWatch::start(&self.cluster, self.bars));
        let result = self.session.execute(sql);
        if let Some(w) = watch {
            w.finish();
        }
        let result = result.map_err(|e| anyhow!("{}", self.secrets.scrub(&e.to_string())))?;
        let mut buf = Vec::new();
        output::print(&mut buf, &result, Format::Table)?;
        print!("{}", self.secrets.scrub(&String::from_utf8_lossy(&buf)));
        Ok(result)
    }

    /// Runs a one-value query, printing it, and returns the value as text.
    fn scalar(&mut self, sql: &str) -> anyhow::Result<String> {
        let r = self.exec(sql)?;
        r.scalar()
            .map(Value::to_string)
            .ok_or_else(|| anyhow!("{sql} returned no single value"))
    }
}

fn heading(text: &str) {
    println!();
    println!("== {text}");
}

fn show(fp: Option<&std::collections::BTreeMap<u32, u64>>) -> String {
    match fp {
        None => "(missing)".into(),
        Some(m) if m.is_empty() => "(empty)".into(),
        Some(m) => m
            .iter()
            .map(|(i, f)| format!("{i}:{f:016x}"))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// The newest `end_time` in a SHOW BACKUP result.
fn latest_end_time(show: &QueryResult) -> anyhow::Result<Timestamp> {
    let col = show
        .columns
        .iter()
        .position(|(n, _)| n == "end_time")
        .ok_or_else(|| anyhow!("SHOW BACKUP has no end_time column"))?;
    show.rows
        .iter()
        .filter_map(|r| r.get(col))
        .filter_map(|v| Timestamp::parse_decimal(&v.to_string()).ok())
        .max()
        .ok_or_else(|| anyhow!("SHOW BACKUP listed no end time"))
}
