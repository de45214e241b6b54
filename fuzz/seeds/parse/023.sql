BACKUP bank.customers, bank.accounts
INTO 'gs://{BUCKET NAME}?AUTH=specified&CREDENTIALS={ENCODED KEY}'
AS OF SYSTEM TIME '-10s'