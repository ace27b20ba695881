//! The database's schema: refinery's versioned, forward-only migrations (embedded from
//! `migrations/`), run at start under an advisory lock so that nodes starting together do
//! not race; a database migrated by a newer release is refused. Migrations stay additive so
//! the previous release keeps running on them (rolling upgrades).

use postgres::Client;

use super::node::LOCK_CLASS;
use crate::domain::event::default_catalog;

mod embedded {
    refinery::embed_migrations!("src/store/postgres/migrations");
}

/// The newest migration this binary knows.
pub const SCHEMA_VERSION: u64 = 6;

pub enum PrepareError {
    TooNew(u64),
    Other(String),
}

impl From<postgres::Error> for PrepareError {
    fn from(e: postgres::Error) -> Self {
        PrepareError::Other(super::explain(&e))
    }
}

/// Migrates (under the lock), refusing a newer schema, and seeds EnableNow's event types.
pub fn prepare(client: &mut Client) -> Result<(), PrepareError> {
    client.execute("SELECT pg_advisory_lock($1, 0)", &[&LOCK_CLASS])?;
    let result = migrate(client);
    let _ = client.execute("SELECT pg_advisory_unlock($1, 0)", &[&LOCK_CLASS]);
    result
}

fn migrate(client: &mut Client) -> Result<(), PrepareError> {
    let history: Option<String> = client
        .query_one("SELECT to_regclass('refinery_schema_history')::text", &[])?
        .get(0);
    if history.is_some() {
        let found: Option<i32> = client
            .query_one("SELECT max(version) FROM refinery_schema_history", &[])?
            .get(0);
        if let Some(found) = found
            && found as u64 > SCHEMA_VERSION
        {
            return Err(PrepareError::TooNew(found as u64));
        }
    }
    let report = embedded::migrations::runner()
        .set_grouped(false)
        .run(client)
        .map_err(|e| {
            // refinery wraps the database's error: find it, to say what PostgreSQL said.
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                if let Some(pg) = s.downcast_ref::<postgres::Error>() {
                    return PrepareError::Other(format!(
                        "migrating the schema failed: {}",
                        super::explain(pg)
                    ));
                }
                source = s.source();
            }
            PrepareError::Other(format!("migrating the schema failed: {e}"))
        })?;
    for m in report.applied_migrations() {
        tracing::info!(
            version = m.version(),
            name = m.name(),
            "database schema migrated"
        );
    }
    let mut tx = client.transaction()?;
    for (rank, et) in default_catalog().into_iter().enumerate() {
        tx.execute(
            "INSERT INTO event_types (name, builtin_rank, description, example)
             VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
            &[&et.name, &(rank as i32), &et.description, &et.example],
        )?;
    }
    tx.commit()?;
    Ok(())
}
