//! Portal sessions under the hex SHA-256 of their cookie token, shared by every node: sign in
//! through one, carry on through another.

use super::PgStore;
use super::rows::{decode, encode};
use crate::domain::secret::{hex, random_bytes};
use crate::domain::session::{Session, Who};
use crate::store::{Result, Sessions};

impl Sessions for PgStore {
    fn put_session(&self, token_hash: [u8; 32], session: Session) -> Result<()> {
        let customer = match &session.who {
            Who::Customer { customer_id, .. } | Who::Linked { customer_id } => {
                Some(customer_id.clone())
            }
            Who::Admin => None,
        };
        self.write(|tx, _| {
            tx.execute(
                "INSERT INTO sessions (token_hash, customer_id, expires_at, record)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (token_hash) DO UPDATE
                 SET expires_at = EXCLUDED.expires_at, record = EXCLUDED.record",
                &[
                    &hex(&token_hash),
                    &customer,
                    &session.expires_at,
                    &encode(&session),
                ],
            )?;
            Ok(())
        })
    }

    fn get_session(&self, token_hash: &[u8; 32]) -> Result<Option<Session>> {
        let now = self.clock.now_ms();
        self.read(|tx| {
            let row = tx.query_opt(
                "SELECT record FROM sessions WHERE token_hash = $1 AND expires_at > $2",
                &[&hex(token_hash), &now],
            )?;
            row.map(|r| decode(r.get::<_, &str>(0))).transpose()
        })
    }

    fn sign_in_failed(&self, client: &str, minute: i64) -> Result<()> {
        self.write(|tx, _| {
            tx.execute(
                "INSERT INTO sign_in_failures (client, minute, failures) VALUES ($1, $2, 1)
                 ON CONFLICT (client, minute) DO UPDATE
                 SET failures = sign_in_failures.failures + 1",
                &[&client, &minute],
            )?;
            // Old minutes are of no use: a few at a time go with each new failure.
            tx.execute(
                "DELETE FROM sign_in_failures WHERE ctid IN
                   (SELECT ctid FROM sign_in_failures WHERE minute < $1::bigint - 60 LIMIT 100)",
                &[&minute],
            )?;
            Ok(())
        })
    }

    fn sign_in_failures(&self, client: &str, since: i64) -> Result<u32> {
        self.read(|tx| {
            let n: i64 = tx
                .query_one(
                    "SELECT coalesce(sum(failures), 0)::bigint FROM sign_in_failures
                     WHERE client = $1 AND minute >= $2",
                    &[&client, &since],
                )?
                .get(0);
            Ok(n as u32)
        })
    }

    fn put_portal_link(
        &self,
        token_hash: [u8; 32],
        customer_id: &str,
        expires_at: i64,
    ) -> Result<()> {
        self.write(|tx, _| {
            let n = tx.execute(
                "INSERT INTO portal_links (token_hash, customer_id, expires_at)
                 SELECT $1, id, $3 FROM customers WHERE id = $2",
                &[&hex(&token_hash), &customer_id, &expires_at],
            )?;
            if n == 0 {
                return Err(crate::store::StoreError::NotFound);
            }
            Ok(())
        })
    }

    fn take_portal_link(&self, token_hash: &[u8; 32], now: i64) -> Result<Option<String>> {
        self.write(|tx, _| {
            // Deleted whether or not it is still good: a link is spent by any use.
            let row = tx.query_opt(
                "DELETE FROM portal_links WHERE token_hash = $1 RETURNING customer_id, expires_at",
                &[&hex(token_hash)],
            )?;
            Ok(row.filter(|r| r.get::<_, i64>(1) > now).map(|r| r.get(0)))
        })
    }

    fn peek_portal_link(&self, token_hash: &[u8; 32], now: i64) -> Result<Option<String>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT customer_id FROM portal_links WHERE token_hash = $1 AND expires_at > $2",
                    &[&hex(token_hash), &now],
                )?
                .map(|r| r.get(0)))
        })
    }

    fn end_customer_sessions(&self, customer_id: &str) -> Result<()> {
        self.write(|tx, _| {
            tx.execute(
                "DELETE FROM sessions WHERE customer_id = $1",
                &[&customer_id],
            )?;
            Ok(())
        })
    }

    fn form_key(&self) -> Result<[u8; 32]> {
        let fresh = random_bytes::<32>();
        self.write(|tx, _| {
            // The first node to ask makes it; every other reads that one.
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('form_key', $1) ON CONFLICT (key) DO NOTHING",
                &[&fresh.as_slice()],
            )?;
            let row = tx.query_one("SELECT value FROM meta WHERE key = 'form_key'", &[])?;
            <[u8; 32]>::try_from(row.get::<_, &[u8]>(0)).map_err(|_| {
                crate::store::StoreError::Storage("the stored form key is not 32 bytes".into())
            })
        })
    }

    fn end_operator_sessions(&self) -> Result<usize> {
        self.write(|tx, _| {
            // Only the operator's sessions have no customer.
            let n = tx.execute("DELETE FROM sessions WHERE customer_id IS NULL", &[])?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn end_session(&self, token_hash: &[u8; 32]) -> Result<()> {
        self.write(|tx, _| {
            tx.execute(
                "DELETE FROM sessions WHERE token_hash = $1",
                &[&hex(token_hash)],
            )?;
            Ok(())
        })
    }
}
