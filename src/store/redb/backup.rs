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

#[cfg(test)]
mod tests {
    use redb::{ReadableDatabase, ReadableTableMetadata, TableHandle};

    use super::super::RedbStore;
    use super::super::tables::{self, *};
    use crate::store::Engine;

    /// Every table the file has is in the one list, and a backup has every one of them with
    /// the same number of rows: a table added to the file and not to the list fails here.
    #[test]
    fn a_backup_holds_every_table_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("w.redb"), 1 << 20).unwrap();
        let dest = dir.path().join("copy.redb");
        store.backup_to(&dest).unwrap();
        let mut in_file: Vec<String> = {
            let tx = store.db.get().unwrap().begin_read().unwrap();
            tx.list_tables()
                .unwrap()
                .map(|t| t.name().to_owned())
                .collect()
        };
        in_file.sort();
        let mut listed: Vec<String> = tables::names().into_iter().map(str::to_owned).collect();
        listed.sort();
        assert_eq!(in_file, listed, "the file's tables and the list");
        store.close();

        let copy = redb::Database::open(&dest).unwrap();
        let (a, b) = (
            store.db.get().unwrap().begin_read().unwrap(),
            copy.begin_read().unwrap(),
        );
        macro_rules! same_len {
            ($($t:ident),*) => {$(
                assert_eq!(
                    a.open_table($t).unwrap().len().unwrap(),
                    b.open_table($t).unwrap().len().unwrap(),
                    "{}", $t.name()
                );
            )*};
        }
        for_each_table!(same_len);
        let mut in_copy: Vec<String> = b
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_owned())
            .collect();
        in_copy.sort();
        assert_eq!(in_copy, listed);
    }
}
