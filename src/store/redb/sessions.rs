//! Portal sessions, under the hex SHA-256 of their cookie token: a restart signs no one out,
//! and the file never holds a token itself.

use redb::{ReadableTable, WriteTransaction};

use super::RedbStore;
use super::records::{decode, encode};
use super::tables::*;
use crate::domain::secret::hex;
use crate::domain::session::{Session, Who};
use crate::store::{Result, Sessions};

impl Sessions for RedbStore {
    fn put_session(&self, token_hash: [u8; 32], session: Session) -> Result<()> {
        self.write(move |ctx| {
            ctx.tx
                .open_table(SESSIONS)?
                .insert(hex(&token_hash).as_str(), encode(&session).as_slice())?;
            Ok(())
        })
    }

    fn get_session(&self, token_hash: &[u8; 32]) -> Result<Option<Session>> {
        let now = self.clock.now_ms();
        self.read(|tx| {
            let s: Option<Session> = tx
                .open_table(SESSIONS)?
                .get(hex(token_hash).as_str())?
                .map(|v| decode(v.value()))
                .transpose()?;
            Ok(s.filter(|s| s.expires_at > now))
        })
    }

    fn end_customer_sessions(&self, customer_id: &str) -> Result<()> {
        let id = customer_id.to_owned();
        self.write(move |ctx| end_customer_sessions(ctx.tx, &id))
    }

    fn end_session(&self, token_hash: &[u8; 32]) -> Result<()> {
        let key = hex(token_hash);
        self.write(move |ctx| {
            ctx.tx.open_table(SESSIONS)?.remove(key.as_str())?;
            Ok(())
        })
    }
}

/// Ends every portal session of a customer (it is being deleted).
pub(super) fn end_customer_sessions(tx: &WriteTransaction, customer_id: &str) -> Result<()> {
    let mut table = tx.open_table(SESSIONS)?;
    table.retain(|_, v| {
        decode::<Session>(v).map_or(
            true,
            |s| !matches!(&s.who, Who::Customer { customer_id: c, .. } if c == customer_id),
        )
    })?;
    Ok(())
}

/// Removes up to `max` sessions that expired before `now`; returns how many.
pub(super) fn prune_expired(tx: &WriteTransaction, now: i64, max: usize) -> Result<usize> {
    let mut table = tx.open_table(SESSIONS)?;
    let mut old = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        if decode::<Session>(v.value()).map_or(true, |s| s.expires_at <= now) {
            old.push(k.value().to_owned());
            if old.len() == max {
                break;
            }
        }
    }
    for k in &old {
        table.remove(k.as_str())?;
    }
    Ok(old.len())
}
