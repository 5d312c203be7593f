//! Images (camera snapshots, grid members' photos) on the embedded store: one file each
//! in `images/` beside the database, written and fsynced (file and directory) before the
//! event that names it is submitted, so that an acknowledged event never names a lost
//! image. A file's name starts with the time it was stored (`{unix ms}-{salt}-{n}.jpg`),
//! which is what retention goes by.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::SqliteStore;
use crate::error::StoreError;
use crate::rows::{image_stamp_ms, ImageRow};

fn io(op: &'static str, dir: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = dir.to_owned();
    move |source| StoreError::Images { op, path, source }
}

impl SqliteStore {
    fn images_dir(&self) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join("images")
    }

    /// Writes the images durably (each file, then the directory).
    pub async fn put_images(&self, images: &[ImageRow]) -> Result<(), StoreError> {
        if images.is_empty() {
            return Ok(());
        }
        let dir = self.images_dir();
        let images = images.to_vec();
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            std::fs::create_dir_all(&dir).map_err(io("create the images directory", &dir))?;
            for image in &images {
                let mut f = std::fs::File::create(dir.join(&image.name)).map_err(io("write an image", &dir))?;
                f.write_all(&image.bytes).map_err(io("write an image", &dir))?;
                f.sync_all().map_err(io("sync an image", &dir))?;
            }
            std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io("sync the images directory", &dir))
        })
        .await
        .map_err(|e| StoreError::Images {
            op: "write images",
            path: self.images_dir(),
            source: std::io::Error::other(e),
        })?
    }

    /// An image's bytes, or `None` when there is none of that name.
    pub async fn image(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let dir = self.images_dir();
        match tokio::fs::read(dir.join(name)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read an image", &dir)(e)),
        }
    }

    /// Deletes the images stored before `before_ms` (by the time in their names; files
    /// named otherwise are left alone). Returns how many were deleted.
    pub async fn prune_images(&self, before_ms: i64) -> Result<u64, StoreError> {
        let dir = self.images_dir();
        tokio::task::spawn_blocking(move || prune_dir(&dir, before_ms)).await.map_err(|e| StoreError::Images {
            op: "prune images",
            path: self.images_dir(),
            source: std::io::Error::other(e),
        })?
    }
}

fn prune_dir(dir: &Path, before_ms: i64) -> Result<u64, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io("list the images", dir)(e)),
    };
    let mut deleted = 0;
    for entry in entries {
        let entry = entry.map_err(io("list the images", dir))?;
        let old = entry.file_name().to_str().and_then(image_stamp_ms).is_some_and(|stamp| stamp < before_ms);
        if old {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("delete an image", dir)(e)),
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_named_otherwise_stay() {
        let dir = std::env::temp_dir().join(format!("liandong-images-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for n in ["1000-a-0.jpg", "3000-d-0.jpg", "notes.txt", "500.jpg"] {
            std::fs::write(dir.join(n), [0xFF, 0xD8]).unwrap();
        }
        assert_eq!(prune_dir(&dir, 2000).unwrap(), 1);
        let mut left: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["3000-d-0.jpg", "500.jpg", "notes.txt"]);
        assert_eq!(prune_dir(&dir.join("missing"), 2000).unwrap(), 0, "no directory yet: nothing to do");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
