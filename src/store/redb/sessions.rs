//! Portal sessions, under the hex SHA-256 of their cookie token: a restart signs no one out,
//! and the file never holds a token itself.

use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::RedbStore;
use super::records::{decode, encode};
use super::tables::*;
use crate::domain::secret::{hex, random_bytes};
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

    fn put_portal_link(
        &self,
        token_hash: [u8; 32],
        customer_id: &str,
        expires_at: i64,
    ) -> Result<()> {
        let link = PortalLink {
            customer_id: customer_id.to_owned(),
            expires_at,
        };
        self.write(move |ctx| {
            if ctx
                .tx
                .open_table(CUSTOMERS)?
                .get(link.customer_id.as_str())?
                .is_none()
            {
                return Err(crate::store::StoreError::NotFound);
            }
            ctx.tx
                .open_table(PORTAL_LINKS)?
                .insert(hex(&token_hash).as_str(), encode(&link).as_slice())?;
            Ok(())
        })
    }

    fn take_portal_link(&self, token_hash: &[u8; 32], now: i64) -> Result<Option<String>> {
        let key = hex(token_hash);
        self.write(move |ctx| {
            let link: Option<PortalLink> = ctx
                .tx
                .open_table(PORTAL_LINKS)?
                .remove(key.as_str())?
                .map(|v| decode(v.value()))
                .transpose()?;
            let Some(link) = link.filter(|l| l.expires_at > now) else {
                return Ok(None);
            };
            let exists = ctx
                .tx
                .open_table(CUSTOMERS)?
                .get(link.customer_id.as_str())?
                .is_some();
            Ok(exists.then_some(link.customer_id))
        })
    }

    fn peek_portal_link(&self, token_hash: &[u8; 32], now: i64) -> Result<Option<String>> {
        self.read(|tx| {
            let link: Option<PortalLink> = tx
                .open_table(PORTAL_LINKS)?
                .get(hex(token_hash).as_str())?
                .map(|v| decode(v.value()))
                .transpose()?;
            Ok(link.filter(|l| l.expires_at > now).map(|l| l.customer_id))
        })
    }

    fn end_customer_sessions(&self, customer_id: &str) -> Result<()> {
        let id = customer_id.to_owned();
        self.write(move |ctx| end_customer_sessions(ctx.tx, &id))
    }

    fn form_key(&self) -> Result<[u8; 32]> {
        self.write(move |ctx| {
            let mut meta = ctx.tx.open_table(META)?;
            if let Some(k) = meta.get(FORM_KEY)?
                && let Ok(key) = <[u8; 32]>::try_from(k.value())
            {
                return Ok(key);
            }
            let key = random_bytes::<32>();
            meta.insert(FORM_KEY, key.as_slice())?;
            Ok(key)
        })
    }

    fn end_operator_sessions(&self) -> Result<usize> {
        self.write(move |ctx| {
            let mut table = ctx.tx.open_table(SESSIONS)?;
            let before = table.len()?;
            table.retain(|_, v| decode::<Session>(v).map_or(true, |s| s.who != Who::Admin))?;
            Ok(usize::try_from(before - table.len()?).unwrap_or(usize::MAX))
        })
    }

    fn end_session(&self, token_hash: &[u8; 32]) -> Result<()> {
        let key = hex(token_hash);
        self.write(move |ctx| {
            ctx.tx.open_table(SESSIONS)?.remove(key.as_str())?;
            Ok(())
        })
    }
}

/// The `meta` key of the sign-in forms' token key.
const FORM_KEY: &str = "form_key";

/// A one-time portal sign-in link, under the hash of its token.
#[derive(serde::Serialize, serde::Deserialize)]
struct PortalLink {
    customer_id: String,
    expires_at: i64,
}

/// Ends every portal session of a customer (it is being deleted).
pub(super) fn end_customer_sessions(tx: &WriteTransaction, customer_id: &str) -> Result<()> {
    let mut table = tx.open_table(SESSIONS)?;
    table.retain(|_, v| {
        decode::<Session>(v).map_or(
            true,
            |s| {
                !matches!(&s.who, Who::Customer { customer_id: c, .. } | Who::Linked { customer_id: c } if c == customer_id)
            },
        )
    })?;
    Ok(())
}

/// Removes up to `max` records of `table` (keyed by token hash) whose expiry, as `expires`
/// reads it, is at or before `now` (an unreadable one goes too); returns how many.
fn prune_table<T: serde::de::DeserializeOwned>(
    tx: &WriteTransaction,
    table: redb::TableDefinition<&str, &[u8]>,
    now: i64,
    max: usize,
    expires: impl Fn(&T) -> i64,
) -> Result<usize> {
    let mut table = tx.open_table(table)?;
    let mut old = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        if decode::<T>(v.value()).map_or(true, |r| expires(&r) <= now) {
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

/// Removes up to `max` sessions (and portal links) that expired before `now`; returns how
/// many sessions.
pub(super) fn prune_expired(tx: &WriteTransaction, now: i64, max: usize) -> Result<usize> {
    prune_table(tx, PORTAL_LINKS, now, max, |l: &PortalLink| l.expires_at)?;
    prune_table(tx, SESSIONS, now, max, |s: &Session| s.expires_at)
}
