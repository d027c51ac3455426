//! `sipas backup --to FILE`: a consistent copy of a live SQLite database, checked before it is
//! called good. On PostgreSQL the database server's own tools do this better, so the command
//! explains them instead (see the README's "Backups").

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::db::DatabaseUrl;

/// What a finished backup did, for the operator.
#[derive(Debug)]
pub struct BackupReport {
    pub source: PathBuf,
    pub target: PathBuf,
    pub bytes: u64,
    pub took: Duration,
    /// Rows of a few tables in the copy, to compare with what the service shows.
    pub counts: Vec<(&'static str, i64)>,
}

impl std::fmt::Display for BackupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "copied {} to {} with VACUUM INTO ({:.1} MB in {:.1} s)",
            self.source.display(),
            self.target.display(),
            self.bytes as f64 / 1e6,
            self.took.as_secs_f64()
        )?;
        writeln!(f, "PRAGMA integrity_check on the copy: ok")?;
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        write!(f, "the copy holds: {}", counts.join(", "))
    }
}

/// What to do on PostgreSQL, printed by `sipas backup` there.
pub const POSTGRES_PROCEDURE: &str = "\
sipas backup copies SQLite databases only. On PostgreSQL use the server's tools:
  pg_dump --format=custom --file=sipas-$(date +%F).dump \"$DATABASE_URL\"
    (a consistent snapshot while the service runs; restore with
     createdb sipas_restored && pg_restore --no-owner --dbname=postgres://…/sipas_restored FILE)
  or, for a copy that is never more than seconds behind, a streaming replica
    (pg_basebackup -D /var/lib/postgresql/replica -R -X stream) and WAL archiving.
See the README section \"Backups\".";

#[derive(QueryableByName)]
struct IntegrityRow {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Copies the SQLite database of `url` to `target` with `VACUUM INTO` (one read transaction:
/// a consistent snapshot, while the service goes on writing in WAL mode), then runs
/// `PRAGMA integrity_check` on the copy. Refuses to overwrite anything; a copy that fails the
/// check is removed.
pub fn backup(url: &DatabaseUrl, target: &Path) -> anyhow::Result<BackupReport> {
    let source = match url {
        DatabaseUrl::Sqlite(path) => path.clone(),
        DatabaseUrl::Postgres(_) => bail!("{POSTGRES_PROCEDURE}"),
    };
    if !source.is_file() {
        bail!("no SQLite database at {} (DATABASE_URL)", source.display());
    }
    if target.exists() {
        bail!(
            "{} already exists; a backup never overwrites a file: choose a new name",
            target.display()
        );
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        bail!("folder {} does not exist", dir.display());
    }
    let target_text = target
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", target.display()))?;
    let started = Instant::now();
    let mut conn = SqliteConnection::establish(&source.to_string_lossy())
        .with_context(|| format!("cannot open {}", source.display()))?;
    conn.batch_execute("PRAGMA busy_timeout = 15000;")?;
    diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(target_text)
        .execute(&mut conn)
        .with_context(|| format!("VACUUM INTO {} failed", target.display()))?;
    drop(conn);
    let checked = check_copy(target);
    let counts = match checked {
        Ok(counts) => counts,
        Err(e) => {
            let _ = std::fs::remove_file(target);
            return Err(e.context(format!(
                "the copy failed its check and was removed ({})",
                target.display()
            )));
        }
    };
    let bytes = std::fs::metadata(target)?.len();
    Ok(BackupReport {
        source,
        target: target.to_path_buf(),
        bytes,
        took: started.elapsed(),
        counts,
    })
}

/// `PRAGMA integrity_check` must answer exactly `ok`; then counts a few tables.
fn check_copy(target: &Path) -> anyhow::Result<Vec<(&'static str, i64)>> {
    let mut copy = SqliteConnection::establish(&target.to_string_lossy())
        .with_context(|| format!("cannot open the copy {}", target.display()))?;
    let rows: Vec<IntegrityRow> = diesel::sql_query("PRAGMA integrity_check").load(&mut copy)?;
    let problems: Vec<String> = rows
        .into_iter()
        .map(|r| r.integrity_check)
        .filter(|r| r != "ok")
        .collect();
    if !problems.is_empty() {
        bail!("integrity_check: {}", problems.join("; "));
    }
    let mut counts = Vec::new();
    for table in [
        "units",
        "transactions",
        "responses",
        "outbox",
        "audit_events",
    ] {
        let row: Result<CountRow, _> =
            diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}")).get_result(&mut copy);
        if let Ok(row) = row {
            counts.push((table, row.n));
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_checks_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("live.db");
        let mut conn = SqliteConnection::establish(&db.to_string_lossy()).unwrap();
        conn.batch_execute(
            "PRAGMA journal_mode = WAL; CREATE TABLE responses (id TEXT); \
             INSERT INTO responses VALUES ('a'), ('b');",
        )
        .unwrap();
        let url = DatabaseUrl::Sqlite(db.clone());
        let target = dir.path().join("copy.db");
        let report = backup(&url, &target).unwrap();
        assert!(report.counts.contains(&("responses", 2)), "{report}");
        let again = backup(&url, &target).unwrap_err().to_string();
        assert!(again.contains("already exists"), "{again}");
        let pg = DatabaseUrl::Postgres("postgres://x/y".into());
        assert!(
            backup(&pg, &dir.path().join("pg.db"))
                .unwrap_err()
                .to_string()
                .contains("pg_dump")
        );
    }
}
