//! Properties: random trees format to SQL that parses back to the same tree
//! (also their redacted and bound forms), and no input makes the parser panic.
#![allow(clippy::unwrap_used)]

use backup_sql::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Identifiers, including ones that need quoting (keywords, case, quotes, unicode).
fn ident() -> impl Strategy<Value = Ident> {
    prop_oneof![
        "[a-z_][a-z0-9_$]{0,8}",
        Just("into".to_string()),
        Just("latest".to_string()),
        Just("Mixed Case".to_string()),
        Just("quote\"d".to_string()),
        "[^\u{0}]{1,6}",
    ]
    .prop_map(Ident)
}

/// Strings, including quotes, URIs with secrets, and arbitrary text.
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9:/?&=_.'-]{0,20}",
        Just("s3://b/p?AWS_ACCESS_KEY_ID=a&AWS_SECRET_ACCESS_KEY=it's".to_string()),
        Just("''".to_string()),
        ".{0,12}",
    ]
}

fn value() -> impl Strategy<Value = Expr> {
    prop_oneof![
        string().prop_map(Expr::String),
        (1u32..=20).prop_map(Expr::Placeholder)
    ]
}

fn flag() -> impl Strategy<Value = Option<Expr>> {
    option::of(prop_oneof![
        any::<bool>().prop_map(Expr::Bool),
        (1u32..=20).prop_map(Expr::Placeholder)
    ])
}

fn uris() -> impl Strategy<Value = Vec<Expr>> {
    vec(value(), 1..4)
}

fn id() -> impl Strategy<Value = Expr> {
    prop_oneof![
        any::<u64>().prop_map(|n| Expr::Number(n.to_string())),
        (1u32..=20).prop_map(Expr::Placeholder)
    ]
}

fn as_of() -> impl Strategy<Value = Option<Expr>> {
    let leaf = prop_oneof![value(), "[0-9]{1,19}(\\.[0-9]{10})?".prop_map(Expr::Number),];
    let expr = leaf.prop_recursive(3, 8, 3, |inner| {
        (ident(), vec(inner, 0..3)).prop_map(|(name, args)| Expr::Function { name, args })
    });
    option::of(expr)
}

fn targets() -> impl Strategy<Value = Targets> {
    let table = prop_oneof![
        vec(ident(), 1..=3).prop_map(|parts| TablePattern {
            parts,
            wildcard: false
        }),
        vec(ident(), 1..=2).prop_map(|parts| TablePattern {
            parts,
            wildcard: true
        }),
    ];
    prop_oneof![
        Just(Targets::Cluster),
        vec(ident(), 1..4).prop_map(Targets::Databases),
        vec(table, 1..4).prop_map(Targets::Tables),
    ]
}

fn subdir() -> impl Strategy<Value = Subdir> {
    prop_oneof![Just(Subdir::Latest), value().prop_map(Subdir::Path)]
}

fn backup_options() -> impl Strategy<Value = BackupOptions> {
    (
        flag(),
        option::of(value()),
        flag(),
        option::of(uris()),
        option::of(uris()),
    )
        .prop_map(|(r, e, d, k, i)| BackupOptions {
            revision_history: r,
            encryption_passphrase: e,
            detached: d,
            kms: k,
            incremental_location: i,
        })
}

fn restore_options() -> impl Strategy<Value = RestoreOptions> {
    (
        (
            option::of(value()),
            option::of(value()),
            flag(),
            flag(),
            flag(),
        ),
        (
            option::of(value()),
            flag(),
            option::of(uris()),
            option::of(uris()),
        ),
    )
        .prop_map(|((a, b, c, d, e), (f, g, h, i))| RestoreOptions {
            into_db: a,
            new_db_name: b,
            skip_missing_foreign_keys: c,
            skip_missing_sequences: d,
            skip_missing_views: e,
            encryption_passphrase: f,
            detached: g,
            kms: h,
            incremental_location: i,
        })
}

fn choice(allowed: &'static [&'static str]) -> impl Strategy<Value = Option<Expr>> {
    option::of(prop_oneof![
        proptest::sample::select(allowed).prop_map(|s| Expr::String(s.to_uppercase())),
        (1u32..=20).prop_map(Expr::Placeholder)
    ])
}

fn schedule() -> impl Strategy<Value = CreateSchedule> {
    let label = option::of(prop_oneof![
        ident().prop_map(Label::Name),
        value().prop_map(Label::Value)
    ]);
    let first_run = option::of(prop_oneof![
        Just(Expr::String("now".into())),
        Just(Expr::String("2021-10-05 20:00:00+00:00".into())),
        (1u32..=20).prop_map(Expr::Placeholder)
    ]);
    let recurring = prop_oneof![Just(Recurrence::Never), value().prop_map(Recurrence::Cron)];
    let full = option::of(prop_oneof![
        Just(FullBackup::Always),
        value().prop_map(FullBackup::Cron)
    ]);
    (
        (label, targets(), uris(), backup_options(), recurring, full),
        (
            first_run,
            choice(ON_EXECUTION_FAILURE),
            choice(ON_PREVIOUS_RUNNING),
            flag(),
        ),
        any::<bool>(),
    )
        .prop_map(
            |((label, targets, to, bo, recurring, full), (fr, oef, opr, ieb), ine)| {
                CreateSchedule {
                    if_not_exists: ine && label.is_some(),
                    label,
                    targets,
                    to,
                    backup_options: bo,
                    recurring,
                    full_backup: full,
                    schedule_options: ScheduleOptions {
                        first_run: fr,
                        on_execution_failure: oef,
                        on_previous_running: opr,
                        ignore_existing_backups: ieb,
                    },
                }
            },
        )
}

fn statement() -> impl Strategy<Value = Statement> {
    let backup = (
        targets(),
        option::of(subdir()),
        uris(),
        as_of(),
        backup_options(),
    )
        .prop_map(|(targets, subdir, to, as_of, options)| {
            Statement::Backup(Backup {
                targets,
                subdir,
                to,
                as_of,
                options,
            })
        });
    let restore = (targets(), subdir(), uris(), as_of(), restore_options()).prop_map(
        |(targets, subdir, from, as_of, options)| {
            Statement::Restore(Restore {
                targets,
                subdir,
                from,
                as_of,
                options,
            })
        },
    );
    let details = option::of(prop_oneof![
        Just(ShowBackupDetails::Schemas),
        Just(ShowBackupDetails::Files),
        Just(ShowBackupDetails::Ranges)
    ]);
    let show_backup = (
        details,
        subdir(),
        uris(),
        (
            option::of(value()),
            flag(),
            option::of(uris()),
            option::of(uris()),
        ),
    )
        .prop_map(|(details, subdir, collection, (e, c, k, i))| {
            Statement::ShowBackup(ShowBackup {
                details,
                subdir,
                collection,
                options: ShowBackupOptions {
                    encryption_passphrase: e,
                    check_files: c,
                    kms: k,
                    incremental_location: i,
                },
            })
        });
    let job_command = prop_oneof![
        Just(JobCommand::Pause),
        Just(JobCommand::Resume),
        Just(JobCommand::Cancel)
    ];
    let schedule_command = prop_oneof![
        Just(ScheduleCommand::Pause),
        Just(ScheduleCommand::Resume),
        Just(ScheduleCommand::Drop)
    ];
    let filter = option::of(prop_oneof![
        Just(ScheduleState::Running),
        Just(ScheduleState::Paused)
    ]);
    prop_oneof![
        backup,
        restore,
        show_backup,
        value().prop_map(|collection| Statement::ShowBackups { collection }),
        Just(Statement::ShowJobs),
        id().prop_map(|job| Statement::ShowJob { job }),
        (job_command, id()).prop_map(|(command, job)| Statement::ControlJob { command, job }),
        schedule().prop_map(Statement::CreateSchedule),
        filter.prop_map(|filter| Statement::ShowSchedules { filter }),
        id().prop_map(|schedule| Statement::ShowSchedule { schedule }),
        (schedule_command, id())
            .prop_map(|(command, schedule)| Statement::ControlSchedule { command, schedule }),
    ]
}

/// Words and punctuation of the grammar, to build near-miss inputs.
const SOUP: &[&str] = &[
    "BACKUP",
    "RESTORE",
    "SHOW",
    "BACKUPS",
    "INTO",
    "TO",
    "IN",
    "LATEST",
    "AS",
    "OF",
    "SYSTEM",
    "TIME",
    "WITH",
    "OPTIONS",
    "DATABASE",
    "TABLE",
    "FROM",
    "INCREMENTAL",
    "SCHEMAS",
    "FILES",
    "RANGES",
    "JOBS",
    "JOB",
    "PAUSE",
    "RESUME",
    "CANCEL",
    "CREATE",
    "SCHEDULE",
    "SCHEDULES",
    "IF",
    "NOT",
    "EXISTS",
    "FOR",
    "RECURRING",
    "NEVER",
    "FULL",
    "ALWAYS",
    "DROP",
    "TRUE",
    "FALSE",
    "RUNNING",
    "PAUSED",
    "detached",
    "revision_history",
    "kms",
    "encryption_passphrase",
    "incremental_location",
    "first_run",
    "t",
    "\"q\"",
    "'s3://b'",
    "'-10s'",
    "$1",
    "$0",
    "12",
    "1.5",
    ",",
    ".",
    "*",
    "=",
    "(",
    ")",
    ";",
    "'",
    "\"",
    "--",
    "/*",
    "follower_read_timestamp()",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn format_then_parse_is_identity(stmt in statement()) {
        let text = stmt.to_string();
        let parsed = parse_statement(&text);
        prop_assert_eq!(parsed.as_ref(), Ok(&stmt), "{}", text);
        let redacted = stmt.redacted();
        prop_assert_eq!(parse_statement(&redacted.to_string()), Ok(redacted));
        let stmts = parse_statements(&format!("{text}; {text};")).unwrap();
        prop_assert_eq!(stmts, vec![stmt.clone(), stmt]);
    }

    #[test]
    fn binding_keeps_statements_parseable(stmt in statement(), params in vec("[a-z0-9]{0,6}|true|7", 20)) {
        // Wrong-typed parameters are errors; whatever binds must round-trip.
        if let Ok(bound) = stmt.bind(&params) {
            prop_assert_eq!(parse_statement(&bound.to_string()), Ok(bound.clone()));
            // No placeholder is left: binding again with no parameters succeeds.
            prop_assert_eq!(bound.bind(&[]), Ok(bound.clone()));
        }
    }

    #[test]
    fn arbitrary_text_never_panics(sql in "\\PC{0,80}") {
        check_no_panic(&sql);
    }

    #[test]
    fn token_soup_never_panics(words in vec(proptest::sample::select(SOUP), 0..24)) {
        check_no_panic(&words.join(" "));
        check_no_panic(&words.concat());
    }
}

/// Parsing returns (no panic), errors point inside the input, and anything
/// that parses round-trips.
fn check_no_panic(sql: &str) {
    let _ = is_backup_statement(sql);
    match parse_statements(sql) {
        Ok(stmts) => {
            for stmt in stmts {
                let text = stmt.to_string();
                assert_eq!(parse_statement(&text), Ok(stmt), "{sql} -> {text}");
            }
        }
        Err(e) => {
            assert!(e.pos <= sql.len(), "{sql}: {e:?}");
            let _ = e.render(sql);
        }
    }
}
