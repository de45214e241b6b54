BACKUP DATABASE bank INTO '{subdirectory}' IN '{collectionURI}'
AS OF SYSTEM TIME '-10s'
WITH revision_history