//! Bulk loading into PostgreSQL with `COPY … FROM STDIN` (text format), for the history
//! benchmark's generated year (`liandong bench history generate`): tens of millions of
//! rows that the group commit's `INSERT … SELECT FROM UNNEST` would take far longer to
//! write. The column lists come from the tables' one declaration (`columns.rs`), so a
//! column added there and forgotten here fails the unit test below, not a load.
//!
//! Not for the server: a load writes rows whose numbers the caller chose (above the
//! store's `max_seq`), outside the write lock, and commits asynchronously until
//! [`PgBulk::finish`], which waits for everything to be durable.

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

use crate::columns::{Table, Written};
use crate::error::{q, StoreError};
use crate::rows::{AlertRow, CameraEventRow, PositionRow};

/// A connection of its own for bulk loading.
pub struct PgBulk {
    conn: PgConnection,
}

impl PgBulk {
    /// Connects to `url` (a database the store has already migrated). The session
    /// commits without waiting for the disk: [`PgBulk::finish`] waits once at the end.
    pub async fn connect(url: &str) -> Result<PgBulk, StoreError> {
        let mut conn = PgConnection::connect(url).await.map_err(q("connect for a bulk load"))?;
        conn.execute("SET synchronous_commit = off").await.map_err(q("set up a bulk load"))?;
        conn.execute("SET maintenance_work_mem = '512MB'").await.map_err(q("set up a bulk load"))?;
        Ok(PgBulk { conn })
    }

    /// Makes the monthly partitions of `positions` and `camera_events` for rows with
    /// times in `from_ms..to_ms` (`liandong_ensure_partitions`, migration 0021), so that
    /// the load goes into its months rather than the default partitions; answers how
    /// many it made.
    pub async fn ensure_partitions(&mut self, from_ms: i64, to_ms: i64) -> Result<u32, StoreError> {
        let made: i32 = sqlx::query_scalar("SELECT liandong_ensure_partitions($1, $2)")
            .bind(from_ms)
            .bind(to_ms)
            .fetch_one(&mut self.conn)
            .await
            .map_err(q("create partitions"))?;
        Ok(u32::try_from(made).unwrap_or(0))
    }

    /// Writes the rows in one transaction, each table with one `COPY`, and moves the
    /// sequence's head (migration 0023) up to their highest number, so that the server
    /// numbers what it writes next above them.
    pub async fn copy(
        &mut self,
        positions: &[PositionRow],
        camera_events: &[CameraEventRow],
        alerts: &[AlertRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.conn.begin().await.map_err(q("begin a bulk load"))?;
        copy_rows(&mut tx, positions, &mut Vec::new()).await?;
        copy_rows(&mut tx, camera_events, &mut Vec::new()).await?;
        copy_rows(&mut tx, alerts, &mut Vec::new()).await?;
        let loaded = crate::batch::Batch { positions, camera_events, alerts, ..Default::default() };
        if let Some(last) = loaded.last_seq() {
            sqlx::query("UPDATE seq_head SET seq = GREATEST(seq, $1)")
                .bind(last)
                .execute(&mut *tx)
                .await
                .map_err(q("move the sequence's head"))?;
        }
        tx.commit().await.map_err(q("commit a bulk load"))
    }

    /// Brings the loaded tables to the state a year's closed months are in, and waits
    /// until everything loaded is durable. `VACUUM (ANALYZE)` sets the visibility map,
    /// as autovacuum does to a month once it stops growing (without it every index-only
    /// history question would read the table too), and updates the planner's
    /// statistics; it commits synchronously, and a synchronous commit flushes the WAL
    /// up to itself, which covers every earlier asynchronous commit of the load.
    pub async fn finish(mut self) -> Result<(), StoreError> {
        self.conn.execute("SET synchronous_commit = on").await.map_err(q("finish a bulk load"))?;
        self.conn
            .execute("VACUUM (ANALYZE) positions, camera_events, alerts")
            .await
            .map_err(q("vacuum after a bulk load"))?;
        self.conn.close().await.map_err(q("close a bulk load"))
    }
}

/// A row as one line of `COPY`'s text format, its columns in the table's declared order.
trait CopyRow: Written {
    fn write_line(&self, out: &mut Vec<u8>);
}

/// COPY text rows are sent in pieces of about this many bytes.
const SEND_BYTES: usize = 4 << 20;

async fn copy_rows<R: CopyRow>(conn: &mut PgConnection, rows: &[R], buf: &mut Vec<u8>) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let table: &Table = &R::TABLE;
    let sql = format!("COPY {} ({}) FROM STDIN", table.name, table.select(""));
    let mut copy = conn.copy_in_raw(&sql).await.map_err(q(table.op))?;
    for row in rows {
        row.write_line(buf);
        if buf.len() >= SEND_BYTES {
            copy.send(std::mem::take(buf)).await.map_err(q(table.op))?;
        }
    }
    if !buf.is_empty() {
        copy.send(std::mem::take(buf)).await.map_err(q(table.op))?;
    }
    copy.finish().await.map_err(q(table.op))?;
    Ok(())
}

/// One field of a text-format line: text with `\`, tab, newline and carriage return
/// escaped (`COPY`'s own escapes), or `\N` for NULL.
struct Line<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Line<'a> {
    fn new(out: &'a mut Vec<u8>) -> Line<'a> {
        Line { out, first: true }
    }

    fn sep(&mut self) {
        if !self.first {
            self.out.push(b'\t');
        }
        self.first = false;
    }

    fn text(&mut self, s: &str) -> &mut Self {
        self.sep();
        for b in s.bytes() {
            match b {
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                b'\t' => self.out.extend_from_slice(b"\\t"),
                b'\n' => self.out.extend_from_slice(b"\\n"),
                b'\r' => self.out.extend_from_slice(b"\\r"),
                _ => self.out.push(b),
            }
        }
        self
    }

    fn null(&mut self) -> &mut Self {
        self.sep();
        self.out.extend_from_slice(b"\\N");
        self
    }

    fn opt_text(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    fn int(&mut self, v: i64) -> &mut Self {
        self.sep();
        self.out.extend_from_slice(v.to_string().as_bytes());
        self
    }

    fn opt_int(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }

    /// A float as Rust's shortest text that reads back as the same value.
    fn float(&mut self, v: f64) -> &mut Self {
        self.sep();
        self.out.extend_from_slice(format!("{v:?}").as_bytes());
        self
    }

    fn opt_float(&mut self, v: Option<f64>) -> &mut Self {
        match v {
            Some(v) => self.float(v),
            None => self.null(),
        }
    }

    fn boolean(&mut self, v: bool) -> &mut Self {
        self.sep();
        self.out.push(if v { b't' } else { b'f' });
        self
    }

    fn end(&mut self) {
        self.out.push(b'\n');
    }
}

impl CopyRow for PositionRow {
    fn write_line(&self, out: &mut Vec<u8>) {
        Line::new(out)
            .int(self.seq)
            .text(&self.device_id)
            .int(self.fix_ms)
            .int(self.recv_ms)
            .float(self.lon)
            .float(self.lat)
            .text(self.datum)
            .opt_float(self.speed_mps)
            .opt_float(self.course_deg)
            .opt_float(self.altitude_m)
            .opt_float(self.accuracy_m)
            .opt_float(self.battery_pct)
            .int(i64::from(self.flags))
            .text(&self.attributes)
            .text(&self.enrichment)
            .end();
    }
}

impl CopyRow for CameraEventRow {
    fn write_line(&self, out: &mut Vec<u8>) {
        Line::new(out)
            .int(self.seq)
            .text(&self.camera_id)
            .text(&self.event_type)
            .text(self.kind)
            .boolean(self.active)
            .opt_int(self.active_post_count)
            .int(self.time_ms)
            .int(self.recv_ms)
            .opt_text(self.plate.as_deref())
            .opt_text(self.person_id.as_deref())
            .text(&self.payload)
            .end();
    }
}

impl CopyRow for AlertRow {
    fn write_line(&self, out: &mut Vec<u8>) {
        let roles = serde_json::to_string(&self.roles).unwrap_or_else(|_| "[]".into());
        Line::new(out)
            .int(self.seq)
            .text(&self.rule)
            .int(self.priority)
            .opt_text(self.camera_id.as_deref())
            .opt_int(self.event_seq)
            .int(self.time_ms)
            .float(self.lon)
            .float(self.lat)
            .text(&roles)
            .text(&self.payload)
            .opt_text(self.township.as_deref())
            .end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of one line, unescaped as PostgreSQL reads them (`None` for `\N`).
    fn fields(line: &[u8]) -> Vec<Option<String>> {
        let text = std::str::from_utf8(line).unwrap().strip_suffix('\n').unwrap();
        text.split('\t')
            .map(|f| {
                (f != "\\N").then(|| {
                    let mut out = String::new();
                    let mut chars = f.chars();
                    while let Some(c) = chars.next() {
                        out.push(match (c, c == '\\') {
                            (_, true) => match chars.next() {
                                Some('t') => '\t',
                                Some('n') => '\n',
                                Some('r') => '\r',
                                Some(other) => other,
                                None => '\\',
                            },
                            (c, false) => c,
                        });
                    }
                    out
                })
            })
            .collect()
    }

    #[test]
    fn each_line_has_one_field_per_declared_column_in_order_with_escapes_undone() {
        let p = PositionRow {
            seq: 7,
            device_id: "a\tb\\c".into(),
            fix_ms: 1_700_000_000_000,
            recv_ms: 1_700_000_000_500,
            lon: 107.2,
            lat: 30.7,
            datum: "wgs84",
            speed_mps: None,
            course_deg: Some(90.5),
            altitude_m: None,
            accuracy_m: Some(8.0),
            battery_pct: None,
            flags: 2,
            attributes: "{\"note\":\"line\\nbreak\"}".into(),
            enrichment: "{}".into(),
        };
        let mut out = Vec::new();
        p.write_line(&mut out);
        let f = fields(&out);
        assert_eq!(f.len(), PositionRow::TABLE.columns.len());
        assert_eq!(f[0].as_deref(), Some("7"));
        assert_eq!(f[1].as_deref(), Some("a\tb\\c"));
        assert_eq!(f[4].as_deref().map(|v| v.parse::<f64>().unwrap()), Some(107.2));
        assert_eq!(f[7], None);
        assert_eq!(f[12].as_deref(), Some("2"));
        assert_eq!(f[13].as_deref(), Some("{\"note\":\"line\\nbreak\"}"));

        let e = CameraEventRow {
            seq: 8,
            camera_id: "cam".into(),
            event_type: "ANPR".into(),
            kind: "anpr",
            active: true,
            active_post_count: Some(1),
            time_ms: 1,
            recv_ms: 2,
            plate: Some("川S12345".into()),
            person_id: None,
            payload: "{}".into(),
        };
        let mut out = Vec::new();
        e.write_line(&mut out);
        let f = fields(&out);
        assert_eq!(f.len(), CameraEventRow::TABLE.columns.len());
        assert_eq!((f[4].as_deref(), f[8].as_deref(), f[9].as_deref()), (Some("t"), Some("川S12345"), None));

        let a = AlertRow {
            seq: 9,
            rule: "watchlist_plate".into(),
            priority: 1,
            camera_id: Some("cam".into()),
            event_seq: Some(8),
            time_ms: 3,
            lon: 107.0,
            lat: 30.0,
            roles: vec!["operator".into()],
            payload: "{}".into(),
            township: Some("竹阳街道".into()),
        };
        let mut out = Vec::new();
        a.write_line(&mut out);
        let f = fields(&out);
        assert_eq!(f.len(), AlertRow::TABLE.columns.len());
        assert_eq!(AlertRow::TABLE.columns[8].0, "roles");
        assert_eq!(f[8].as_deref(), Some("[\"operator\"]"));
        assert_eq!(f[10].as_deref(), Some("竹阳街道"));
    }
}
