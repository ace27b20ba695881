//! A consistent copy of the data file, taken while serving: every table of the one list
//! read from one read transaction (a snapshot that writers do not disturb) into a new file.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable};

use super::tables::*;
use crate::store::{Result, StoreError};

/// Writes a copy of everything in `db`, as of one moment, to a new data file at `dest`.
/// Restoring is putting that file in place of the data file while the server is stopped.
pub(super) fn copy_all(db: &Database, dest: &Path) -> Result<()> {
    let src = db.begin_read()?;
    let out = Database::builder()
        .set_cache_size(8 * 1024 * 1024)
        .create(dest)
        .map_err(|e| StoreError::Storage(format!("cannot create the backup file: {e}")))?;
    let tx = out.begin_write()?;
    macro_rules! copy {
        ($($table:ident),*) => {$({
            let from = src.open_table($table)?;
            let mut to = tx.open_table($table)?;
            for row in from.iter()? {
                let (k, v) = row?;
                to.insert(k.value(), v.value())?;
            }
        })*};
    }
    for_each_table!(copy);
    tx.commit()?;
    Ok(())
}
