-- Every example statement of /work/shared/reference/backup-statement.md and
-- full-and-incremental-backups.md, as a user would type it (the `> ` prompt
-- and the trailing `\` line continuations of the docs removed). Edits:
--   * `BACKUP...AS OF SYSTEM TIME '-10s'` is an elided fragment, left out;
--   * `{'subdirectory'}` and the bare `{subdirectory}` placeholders of the docs
--     are written as string literals;
--   * the CREATE SCHEDULE example lost its `FOR BACKUP INTO` line in the
--     extracted page: restored from the `backup_stmt` the page shows, with the
--     `FULL BACKUP ALWAYS` clause the text says the example uses.
-- Then the statements of DESIGN.md and ones CockroachDB v22.1 documents for
-- SHOW BACKUP, RESTORE options and SHOW CREATE SCHEDULE output.

-- backup-statement.md
BACKUP INTO
's3://{BUCKET NAME}?AWS_ACCESS_KEY_ID={KEY ID}&AWS_SECRET_ACCESS_KEY={SECRET ACCESS KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP DATABASE bank
INTO 's3://{BUCKET NAME}?AWS_ACCESS_KEY_ID={KEY ID}&AWS_SECRET_ACCESS_KEY={SECRET ACCESS KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP DATABASE bank, employees
INTO 's3://{BUCKET NAME}?AWS_ACCESS_KEY_ID={KEY ID}&AWS_SECRET_ACCESS_KEY={SECRET ACCESS KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP bank.customers
INTO 's3://{BUCKET NAME}?AWS_ACCESS_KEY_ID={KEY ID}&AWS_SECRET_ACCESS_KEY={SECRET ACCESS KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP bank.customers, bank.accounts
INTO 's3://{BUCKET NAME}?AWS_ACCESS_KEY_ID={KEY ID}&AWS_SECRET_ACCESS_KEY={SECRET ACCESS KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP test_schema.*
INTO 's3://{BUCKET NAME}?AWS_ACCESS_KEY_ID={KEY ID}&AWS_SECRET_ACCESS_KEY={SECRET ACCESS KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP INTO LATEST IN
    's3://{BUCKET NAME}?AWS_ACCESS_KEY_ID={KEY ID}&AWS_SECRET_ACCESS_KEY={SECRET ACCESS KEY}'
    AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP INTO 'subdirectory' IN 's3://{BUCKET NAME}?AWS_ACCESS_KEY_ID={KEY ID}&AWS_SECRET_ACCESS_KEY={SECRET ACCESS KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP INTO
's3://{BUCKET NAME}?AWS_ACCESS_KEY_ID={KEY ID}&AWS_SECRET_ACCESS_KEY={SECRET ACCESS KEY}'
AS OF SYSTEM TIME '-10s'
WITH DETACHED;

-- backup-statement.md
BACKUP DATABASE movr INTO 's3://{BUCKET NAME}?AWS_ACCESS_KEY_ID={KEY ID}&AWS_SECRET_ACCESS_KEY={SECRET ACCESS KEY}&S3_STORAGE_CLASS=INTELLIGENT_TIERING' AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP INTO
'azure://{CONTAINER NAME}?AZURE_ACCOUNT_NAME={ACCOUNT NAME}&AZURE_ACCOUNT_KEY={URL-ENCODED KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP DATABASE bank
INTO 'azure://{CONTAINER NAME}?AZURE_ACCOUNT_NAME={ACCOUNT NAME}&AZURE_ACCOUNT_KEY={URL-ENCODED KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP DATABASE bank, employees
INTO 'azure://{CONTAINER NAME}?AZURE_ACCOUNT_NAME={ACCOUNT NAME}&AZURE_ACCOUNT_KEY={URL-ENCODED KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP bank.customers
INTO 'azure://{CONTAINER NAME}?AZURE_ACCOUNT_NAME={ACCOUNT NAME}&AZURE_ACCOUNT_KEY={URL-ENCODED KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP bank.customers, bank.accounts
INTO 'azure://{CONTAINER NAME}?AZURE_ACCOUNT_NAME={ACCOUNT NAME}&AZURE_ACCOUNT_KEY={URL-ENCODED KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP test_schema.*
INTO 'azure://{CONTAINER NAME}?AZURE_ACCOUNT_NAME={ACCOUNT NAME}&AZURE_ACCOUNT_KEY={URL-ENCODED KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP INTO LATEST IN
    'azure://{CONTAINER NAME}?AZURE_ACCOUNT_NAME={ACCOUNT NAME}&AZURE_ACCOUNT_KEY={URL-ENCODED KEY}'
    AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP INTO 'subdirectory' IN 'azure://{CONTAINER NAME}?AZURE_ACCOUNT_NAME={ACCOUNT NAME}&AZURE_ACCOUNT_KEY={URL-ENCODED KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP INTO
'azure://{CONTAINER NAME}?AZURE_ACCOUNT_NAME={ACCOUNT NAME}&AZURE_ACCOUNT_KEY={URL-ENCODED KEY}'
AS OF SYSTEM TIME '-10s'
WITH DETACHED;

-- backup-statement.md
BACKUP INTO
'gs://{BUCKET NAME}?AUTH=specified&CREDENTIALS={ENCODED KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP DATABASE bank
INTO 'gs://{BUCKET NAME}?AUTH=specified&CREDENTIALS={ENCODED KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP DATABASE bank, employees
INTO 'gs://{BUCKET NAME}?AUTH=specified&CREDENTIALS={ENCODED KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP bank.customers
INTO 'gs://{BUCKET NAME}?AUTH=specified&CREDENTIALS={ENCODED KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP bank.customers, bank.accounts
INTO 'gs://{BUCKET NAME}?AUTH=specified&CREDENTIALS={ENCODED KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP test_schema.*
INTO 'gs://{BUCKET NAME}?AUTH=specified&CREDENTIALS={ENCODED KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP INTO LATEST IN
    'gs://{BUCKET NAME}?AUTH=specified&CREDENTIALS={ENCODED KEY}'
    AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP INTO 'subdirectory' IN 'gs://{BUCKET NAME}?AUTH=specified&CREDENTIALS={ENCODED KEY}'
AS OF SYSTEM TIME '-10s';

-- backup-statement.md
BACKUP INTO
'gs://{BUCKET NAME}?AUTH=specified&CREDENTIALS={ENCODED KEY}'
AS OF SYSTEM TIME '-10s'
WITH DETACHED;

-- full-and-incremental-backups.md
BACKUP INTO '{collectionURI}';

-- full-and-incremental-backups.md
RESTORE TABLE bank.customers FROM LATEST IN '{collectionURI}';

-- full-and-incremental-backups.md
RESTORE DATABASE bank FROM LATEST IN '{collectionURI}';

-- full-and-incremental-backups.md
RESTORE FROM LATEST IN '{collectionURI}';

-- full-and-incremental-backups.md
RESTORE DATABASE bank FROM '{subdirectory}' IN '{collectionURI}';

-- full-and-incremental-backups.md
BACKUP INTO LATEST IN '{collectionURI}';

-- full-and-incremental-backups.md
RESTORE FROM '{subdirectory}' IN '{collectionURI}';

-- full-and-incremental-backups.md
BACKUP DATABASE bank INTO '{subdirectory}' IN '{collectionURI}'
AS OF SYSTEM TIME '-10s'
WITH revision_history;

-- full-and-incremental-backups.md (FOR BACKUP INTO and FULL BACKUP ALWAYS restored from the surrounding text and the backup_stmt shown)
CREATE SCHEDULE core_schedule_label
FOR BACKUP INTO 's3://{BUCKET NAME}/{PATH}?AWS_ACCESS_KEY_ID={KEY ID}&AWS_SECRET_ACCESS_KEY={SECRET ACCESS KEY}'
RECURRING '@daily'
FULL BACKUP ALWAYS
WITH SCHEDULE OPTIONS first_run = 'now';

-- full-and-incremental-backups.md (the backup_stmt column of the same example)
BACKUP INTO 's3://{BUCKET NAME}/{PATH}?AWS_ACCESS_KEY_ID={KEY ID}&AWS_SECRET_ACCESS_KEY={SECRET ACCESS KEY}' WITH detached;

-- DESIGN.md
BACKUP DATABASE bank INTO 's3://bucket/backups?AWS_ACCESS_KEY_ID=..' AS OF SYSTEM TIME '-10s';
BACKUP DATABASE bank INTO LATEST IN 's3://bucket/backups?..';
SHOW BACKUPS IN 's3://bucket/backups?..';
RESTORE DATABASE bank FROM LATEST IN 's3://bucket/backups?..' WITH new_db_name = 'bank2';
CREATE SCHEDULE nightly FOR BACKUP INTO 's3://..' RECURRING '@daily' FULL BACKUP '@weekly';

-- CockroachDB v22.1 forms
SHOW BACKUP FROM LATEST IN 's3://bucket?AWS_ACCESS_KEY_ID=a&AWS_SECRET_ACCESS_KEY=b';
SHOW BACKUP SCHEMAS FROM '2021/03/23-213101.37' IN 'nodelocal://1/backups';
SHOW BACKUP FILES FROM LATEST IN 'gs://b?AUTH=specified&CREDENTIALS=c' WITH check_files;
SHOW BACKUP RANGES FROM LATEST IN 'nodelocal://1/backups' WITH encryption_passphrase = 'password123';
BACKUP INTO ('s3://us-east-bucket?COCKROACH_LOCALITY=default', 's3://us-west-bucket?COCKROACH_LOCALITY=region%3Dus-west');
RESTORE FROM LATEST IN ('s3://us-east-bucket?COCKROACH_LOCALITY=default', 's3://us-west-bucket?COCKROACH_LOCALITY=region%3Dus-west');
BACKUP INTO LATEST IN 's3://full' WITH incremental_location = 's3://incrementals';
RESTORE FROM LATEST IN 's3://full' WITH incremental_location = 's3://incrementals';
RESTORE TABLE bank.customers FROM LATEST IN 'nodelocal://1/b' WITH into_db = 'newdb', skip_missing_foreign_keys;
RESTORE DATABASE bank FROM LATEST IN 'nodelocal://1/b' AS OF SYSTEM TIME '2021-11-15 18:13:20' WITH skip_missing_sequences, skip_missing_views, detached;
BACKUP INTO 'nodelocal://1/b' AS OF SYSTEM TIME follower_read_timestamp() WITH revision_history, encryption_passphrase = 'password123';
CREATE SCHEDULE 'BACKUP 1633462883' FOR BACKUP INTO 'nodelocal://0/test' WITH detached RECURRING '@hourly' FULL BACKUP ALWAYS WITH SCHEDULE OPTIONS first_run = '2021-10-05 20:00:00+00:00', on_execution_failure = 'RESCHEDULE', on_previous_running = 'WAIT';
CREATE SCHEDULE 'scheduled_first_run' FOR BACKUP TABLE movr.public.vehicles INTO 's3://bucket-name/backup-test?AWS_ACCESS_KEY_ID={AWS_ACCESS_KEY}&AWS_SECRET_ACCESS_KEY=redacted' WITH detached RECURRING '@daily' FULL BACKUP '@weekly' WITH SCHEDULE OPTIONS first_run = '2021-10-05 19:50:11.497459+00:00', on_execution_failure = 'RESCHEDULE', on_previous_running = 'WAIT';
CREATE SCHEDULE IF NOT EXISTS schedule_database FOR BACKUP DATABASE movr INTO 's3://test/schedule-database?AWS_ACCESS_KEY_ID=x&AWS_SECRET_ACCESS_KEY=y' WITH revision_history RECURRING '@weekly' WITH SCHEDULE OPTIONS first_run = 'now';
SHOW SCHEDULES;
SHOW SCHEDULE 588799238330220545;
PAUSE SCHEDULE 588799238330220545;
RESUME SCHEDULE 588799238330220545;
DROP SCHEDULE 588799238330220545;
SHOW JOBS;
SHOW JOB 592786066399264769;
PAUSE JOB 592786066399264769;
RESUME JOB 592786066399264769;
CANCEL JOB 592786066399264769;
