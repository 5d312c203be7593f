//! `liandong backup PATH` and `liandong restore PATH`: a copy of the embedded store
//! taken while the server runs, and putting one back into the configured data
//! directory while no server runs on it.
//!
//! A backup is a directory: `liandong.db` (a consistent copy of the database, see
//! `liandong_store::backup`), `images/` (the stored camera snapshots and photos, copied
//! after the database, so that every image the copy's events name is there; an image
//! deleted by retention during the copy is skipped) and `manifest.json` (when, from
//! where, the newest migration, the highest sequence number and every table's rows).
//!
//! A server on the embedded store holds an advisory lock on `liandong.lock` in its
//! data directory for as long as it runs ([`DataDirLock`]); `restore` takes the same
//! lock, so it refuses while a server runs there and no server starts mid-restore.
//! PostgreSQL is backed up with its own tools (`pg_dump`), which the commands say.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use liandong_server::config::Config;
use liandong_store::backup::{Summary, DB_FILE, IMAGES_DIR};
use serde::{Deserialize, Serialize};

/// The lock file a server holds in its data directory.
const LOCK_FILE: &str = "liandong.lock";
/// The backup's description.
const MANIFEST: &str = "manifest.json";

/// What a backup holds, written beside it as `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    /// The layout's version, for a future change of it.
    format: u32,
    /// When the copy of the database was begun and finished (Unix ms).
    started_ms: i64,
    finished_ms: i64,
    /// The data directory it was taken from.
    data_dir: PathBuf,
    /// The database as copied.
    database: Summary,
    /// Image files copied, and those deleted (retention) before they could be.
    images_copied: u64,
    images_skipped: u64,
}

/// An exclusive advisory lock (`flock`) on the data directory's `liandong.lock`,
/// released when dropped or when the process ends, however it ends.
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock without waiting; `None` when another process holds it.
    fn try_take(data_dir: &Path) -> anyhow::Result<Option<DataDirLock>> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        let path = data_dir.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(DataDirLock { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(std::io::Error::from(e)).with_context(|| format!("cannot lock {}", path.display())),
        }
    }

    /// The lock a server holds while it serves the embedded store of `config` (none on
    /// PostgreSQL, where instances share the database); refuses when another server (or a
    /// restore) holds it.
    pub fn for_server(config: &Config) -> anyhow::Result<Option<DataDirLock>> {
        if config.store.database_url.is_some() {
            return Ok(None);
        }
        match DataDirLock::try_take(&config.data_dir)? {
            Some(lock) => Ok(Some(lock)),
            None => bail!(
                "another liandong process (a server, or a restore) holds {}; one server per data directory",
                config.data_dir.join(LOCK_FILE).display()
            ),
        }
    }
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// The refusal for a PostgreSQL store, pointing at its own tools.
fn postgres_refusal(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "the configured store is PostgreSQL: {what} it with PostgreSQL's tools (pg_dump -Fc, pg_restore), \
         as the README's \"Operating it\" says; liandong {what} handles the embedded store only"
    )
}

/// `liandong backup PATH`.
pub async fn backup(config: &Config, out: &Path) -> anyhow::Result<()> {
    if config.store.database_url.is_some() {
        return Err(postgres_refusal("back up"));
    }
    let db = config.data_dir.join(DB_FILE);
    if !db.is_file() {
        bail!("there is no embedded store at {}", db.display());
    }
    if out.exists()
        && std::fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))?.next().is_some()
    {
        bail!("{} is not empty: a backup goes into a new or empty directory", out.display());
    }
    std::fs::create_dir_all(out.join(IMAGES_DIR)).with_context(|| format!("cannot create {}", out.display()))?;
    let started_ms = now_ms();
    let database = liandong_store::backup::copy_sqlite(&db, &out.join(DB_FILE)).await?;
    let (images_copied, images_skipped) = copy_images(&config.data_dir.join(IMAGES_DIR), &out.join(IMAGES_DIR))?;
    let manifest = Manifest {
        format: 1,
        started_ms,
        finished_ms: now_ms(),
        data_dir: config.data_dir.clone(),
        database,
        images_copied,
        images_skipped,
    };
    write_synced(&out.join(MANIFEST), &serde_json::to_vec_pretty(&manifest)?)?;
    sync_dir(out)?;
    println!(
        "backup of {} in {}: migration {} ({}), up to seq {}, {} positions, {} images ({} deleted meanwhile, skipped)",
        config.data_dir.display(),
        out.display(),
        manifest.database.migration,
        manifest.database.migration_name,
        manifest.database.max_seq,
        manifest.database.tables.get("positions").copied().unwrap_or(0),
        images_copied,
        images_skipped
    );
    Ok(())
}

/// Copies every file of `from` into `to` (each synced, then the directory): answers how
/// many were copied and how many vanished before they could be (deleted by retention).
fn copy_images(from: &Path, to: &Path) -> anyhow::Result<(u64, u64)> {
    let entries = match std::fs::read_dir(from) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", from.display())),
    };
    let (mut copied, mut skipped) = (0, 0);
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", from.display()))?;
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let target = to.join(entry.file_name());
        match std::fs::copy(entry.path(), &target) {
            Ok(_) => {
                File::open(&target)
                    .and_then(|f| f.sync_all())
                    .with_context(|| format!("cannot sync {}", target.display()))?;
                copied += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => skipped += 1,
            Err(e) => return Err(e).with_context(|| format!("cannot copy {}", entry.path().display())),
        }
    }
    sync_dir(to)?;
    Ok((copied, skipped))
}

fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).with_context(|| format!("cannot write {}", path.display()))
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("cannot sync {}", dir.display()))
}

/// `liandong restore PATH [--force]`.
pub async fn restore(config: &Config, from: &Path, force: bool) -> anyhow::Result<()> {
    if config.store.database_url.is_some() {
        return Err(postgres_refusal("restore"));
    }
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(from.join(MANIFEST)).with_context(|| format!("{} is not a liandong backup", from.display()))?,
    )
    .with_context(|| format!("{} is not a readable manifest", from.join(MANIFEST).display()))?;
    let checked = liandong_store::backup::check_sqlite(&from.join(DB_FILE)).await?;
    if checked != manifest.database {
        bail!("{} does not hold what its manifest says: refusing a mixed-up backup", from.join(DB_FILE).display());
    }
    let data_dir = &config.data_dir;
    let Some(_lock) = DataDirLock::try_take(data_dir)? else {
        bail!(
            "a server is running on {} (it holds {}): stop it before restoring",
            data_dir.display(),
            data_dir.join(LOCK_FILE).display()
        );
    };
    if data_dir.join(DB_FILE).exists() {
        if !force {
            bail!(
                "{} already holds a store; restore --force moves it aside (into {}/before-restore-<time>/) and restores",
                data_dir.display(),
                data_dir.display()
            );
        }
        let aside = data_dir.join(format!("before-restore-{}", now_ms()));
        move_aside(data_dir, &aside)?;
        println!("the store that was in {} is now in {}", data_dir.display(), aside.display());
    }
    put_back(from, data_dir)?;
    println!(
        "restored {} into {}: migration {} ({}), up to seq {}, {} images; start the server to serve it",
        from.display(),
        data_dir.display(),
        checked.migration,
        checked.migration_name,
        checked.max_seq,
        manifest.images_copied
    );
    Ok(())
}

/// Moves the data directory's database (with its WAL) and images into `aside`.
fn move_aside(data_dir: &Path, aside: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(aside).with_context(|| format!("cannot create {}", aside.display()))?;
    for name in [DB_FILE.to_owned(), format!("{DB_FILE}-wal"), format!("{DB_FILE}-shm"), IMAGES_DIR.to_owned()] {
        let path = data_dir.join(&name);
        if path.exists() {
            std::fs::rename(&path, aside.join(&name))
                .with_context(|| format!("cannot move {} aside", path.display()))?;
        }
    }
    Ok(())
}

/// Copies the backup's database and images into the data directory: the database
/// under a temporary name first, renamed into place once synced, so that a restore cut
/// short leaves no half-written store where the server looks.
fn put_back(from: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let images = data_dir.join(IMAGES_DIR);
    std::fs::create_dir_all(&images).with_context(|| format!("cannot create {}", images.display()))?;
    copy_images(&from.join(IMAGES_DIR), &images)?;
    let partial = data_dir.join(format!("{DB_FILE}.restoring"));
    std::fs::copy(from.join(DB_FILE), &partial).with_context(|| format!("cannot copy into {}", partial.display()))?;
    File::open(&partial).and_then(|f| f.sync_all()).with_context(|| format!("cannot sync {}", partial.display()))?;
    std::fs::rename(&partial, data_dir.join(DB_FILE)).context("cannot put the database in place")?;
    sync_dir(data_dir)
}
