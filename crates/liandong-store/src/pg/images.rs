//! Images on PostgreSQL: one row each in `images` (schema 9), so that every instance on
//! the database serves every image, whichever instance took it in.

use sqlx::Row;

use super::PgStore;
use crate::error::{q, StoreError};
use crate::rows::ImageRow;

/// Rows one prune deletes at most: a few megabytes of snapshots.
const PRUNE_BATCH: i64 = 500;

impl PgStore {
    /// Inserts the images (a name already stored keeps its bytes); durable when this
    /// returns, with the server's `synchronous_commit`.
    pub async fn put_images(&self, images: &[ImageRow]) -> Result<(), StoreError> {
        if images.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(q("begin writing images"))?;
        for image in images {
            sqlx::query(
                "INSERT INTO images (name, stored_ms, bytes) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
            )
            .bind(&image.name)
            .bind(image.stored_ms)
            .bind(&image.bytes)
            .execute(&mut *tx)
            .await
            .map_err(q("write an image"))?;
        }
        tx.commit().await.map_err(q("commit images"))
    }

    pub async fn image(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT bytes FROM images WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read an image"))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Deletes the images stored before `before_ms`, a batch at a time. Returns how many.
    pub async fn prune_images(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let done =
                sqlx::query("DELETE FROM images WHERE name IN (SELECT name FROM images WHERE stored_ms < $1 LIMIT $2)")
                    .bind(before_ms)
                    .bind(PRUNE_BATCH)
                    .execute(&self.pool)
                    .await
                    .map_err(q("prune images"))?
                    .rows_affected();
            total += done;
            if done < PRUNE_BATCH as u64 {
                return Ok(total);
            }
        }
    }
}
