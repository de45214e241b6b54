//! `backup-sql` (placeholder until its issue lands).
