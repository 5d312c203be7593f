//! Signing in: passwords, sessions and one-time sign-in codes, in SQL both databases
//! agree on, written once like [`crate::shared`]. Every secret is kept as a hash (the
//! server hashes; the store never sees a password, a token or a code), and every change
//! commits with its audit entry in one transaction.
//!
//! Both backends expand [`signin_calls!`] after `shared_calls!`, whose `audit_in` and
//! `write_pool()` it uses.

/// The columns of a [`crate::SessionRow`], in its order.
pub(crate) const SESSION_COLUMNS: &str = "token_hash, person_id, role, created_ms, expires_ms, max_expires_ms, \
     last_used_ms, revoked_ms, kind, user_agent";

/// Implements the sign-in calls on `$store`, whose rows are `$row`.
macro_rules! signin_calls {
    ($store:ty, $row:ty) => {
        const _: () = {
            use $crate::error::{q, StoreError};
            use $crate::rows::{AuditEntry, SessionRow, SignInCode};
            use $crate::signin::SESSION_COLUMNS;

            impl $store {
                /// Sets a person's password (a PHC string) and writes its audit entry in
                /// one transaction.
                pub async fn set_password(
                    &self,
                    person_id: &str,
                    phc: &str,
                    at_ms: i64,
                    audit: &AuditEntry,
                ) -> Result<(), StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    sqlx::query(
                        "INSERT INTO passwords (person_id, phc, updated_ms) VALUES ($1, $2, $3)
                         ON CONFLICT (person_id) DO UPDATE SET phc = excluded.phc, updated_ms = excluded.updated_ms",
                    )
                    .bind(person_id)
                    .bind(phc)
                    .bind(at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("set password"))?;
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))
                }

                /// A person's password as a PHC string; None when none is set.
                pub async fn password(&self, person_id: &str) -> Result<Option<String>, StoreError> {
                    sqlx::query_scalar("SELECT phc FROM passwords WHERE person_id = $1")
                        .bind(person_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(q("read password"))
                }

                async fn insert_session_in(
                    tx: &mut sqlx::Transaction<'static, <$row as sqlx::Row>::Database>,
                    s: &SessionRow,
                ) -> Result<(), StoreError> {
                    let sql =
                        format!("INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
                    sqlx::query(&sql)
                        .bind(&s.token_hash)
                        .bind(&s.person_id)
                        .bind(&s.role)
                        .bind(s.created_ms)
                        .bind(s.expires_ms)
                        .bind(s.max_expires_ms)
                        .bind(s.last_used_ms)
                        .bind(s.revoked_ms)
                        .bind(&s.kind)
                        .bind(&s.user_agent)
                        .execute(&mut **tx)
                        .await
                        .map_err(q("insert session"))?;
                    Ok(())
                }

                /// Opens a session and writes its audit entry in one transaction.
                pub async fn insert_session(&self, s: &SessionRow, audit: &AuditEntry) -> Result<(), StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    Self::insert_session_in(&mut tx, s).await?;
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))
                }

                /// The session of a token hash, as stored (revoked and expired ones too).
                pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, StoreError> {
                    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1");
                    sqlx::query_as(&sql).bind(token_hash).fetch_optional(&self.pool).await.map_err(q("read session"))
                }

                /// Pushes a live session's end on to `expires_ms` (at most its
                /// `max_expires_ms`); false, writing nothing, when the session is revoked,
                /// has ended at `now_ms`, or `expires_ms` is past its cap.
                pub async fn renew_session(
                    &self,
                    token_hash: &str,
                    expires_ms: i64,
                    now_ms: i64,
                ) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE sessions SET expires_ms = $2, last_used_ms = $3
                         WHERE token_hash = $1 AND revoked_ms IS NULL AND expires_ms > $3 AND max_expires_ms >= $2",
                    )
                    .bind(token_hash)
                    .bind(expires_ms)
                    .bind(now_ms)
                    .execute(self.write_pool())
                    .await
                    .map_err(q("renew session"))?;
                    Ok(done.rows_affected() == 1)
                }

                /// Revokes one session and writes its audit entry in one transaction;
                /// false, writing nothing, when it was already revoked or never was.
                pub async fn revoke_session(
                    &self,
                    token_hash: &str,
                    now_ms: i64,
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let done = sqlx::query(
                        "UPDATE sessions SET revoked_ms = $2 WHERE token_hash = $1 AND revoked_ms IS NULL",
                    )
                    .bind(token_hash)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("revoke session"))?;
                    if done.rows_affected() != 1 {
                        return Ok(false);
                    }
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(true)
                }

                /// Revokes every unrevoked session of a person and writes the audit entry
                /// in one transaction; returns the revoked sessions' token hashes. When
                /// there was none, nothing is written, the audit entry neither.
                pub async fn revoke_sessions(
                    &self,
                    person_id: &str,
                    now_ms: i64,
                    audit: &AuditEntry,
                ) -> Result<Vec<String>, StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let hashes: Vec<String> = sqlx::query_scalar(
                        "UPDATE sessions SET revoked_ms = $2 WHERE person_id = $1 AND revoked_ms IS NULL
                         RETURNING token_hash",
                    )
                    .bind(person_id)
                    .bind(now_ms)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(q("revoke sessions"))?;
                    if hashes.is_empty() {
                        return Ok(hashes);
                    }
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(hashes)
                }

                /// A person's sessions that are neither revoked nor ended at `now_ms`,
                /// newest first.
                pub async fn live_sessions(&self, person_id: &str, now_ms: i64) -> Result<Vec<SessionRow>, StoreError> {
                    let sql = format!(
                        "SELECT {SESSION_COLUMNS} FROM sessions
                         WHERE person_id = $1 AND revoked_ms IS NULL AND expires_ms > $2
                         ORDER BY created_ms DESC, token_hash"
                    );
                    sqlx::query_as(&sql)
                        .bind(person_id)
                        .bind(now_ms)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("list sessions"))
                }

                /// Stores a one-time sign-in code and its audit entry in one transaction.
                pub async fn insert_sign_in_code(&self, c: &SignInCode, audit: &AuditEntry) -> Result<(), StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    sqlx::query(
                        "INSERT INTO sign_in_codes (code_hash, person_id, created_ms, expires_ms, used_ms)
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&c.code_hash)
                    .bind(&c.person_id)
                    .bind(c.created_ms)
                    .bind(c.expires_ms)
                    .bind(c.used_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("insert sign-in code"))?;
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))
                }

                /// A sign-in code by its hash, as stored (used and expired ones too).
                pub async fn sign_in_code(&self, code_hash: &str) -> Result<Option<SignInCode>, StoreError> {
                    sqlx::query_as(
                        "SELECT code_hash, person_id, created_ms, expires_ms, used_ms FROM sign_in_codes
                         WHERE code_hash = $1",
                    )
                    .bind(code_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(q("read sign-in code"))
                }

                /// Uses a code for `session.person_id` and opens the session, with its
                /// audit entry, in one transaction: false, writing nothing, when the code
                /// is unknown, someone else's, used, or expired at `now_ms`. Of two
                /// requests racing with one code, exactly one gets true.
                pub async fn use_sign_in_code(
                    &self,
                    code_hash: &str,
                    now_ms: i64,
                    session: &SessionRow,
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let used = sqlx::query(
                        "UPDATE sign_in_codes SET used_ms = $3
                         WHERE code_hash = $1 AND person_id = $2 AND used_ms IS NULL AND expires_ms > $3",
                    )
                    .bind(code_hash)
                    .bind(&session.person_id)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("use sign-in code"))?;
                    if used.rows_affected() != 1 {
                        return Ok(false);
                    }
                    Self::insert_session_in(&mut tx, session).await?;
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(true)
                }
            }
        };
    };
}

pub(crate) use signin_calls;
