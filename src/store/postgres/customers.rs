//! Customers; deleting one removes everything it owns (the schema cascades).

use super::PgStore;
use crate::domain::time::now_ms;
use crate::domain::{ApiKey, Customer, IdKind, ValidationError};
use crate::store::{Customers, NewCustomer, NewKey, Page, PageQuery, Result, StoreError};

fn customer(row: &postgres::Row) -> Customer {
    Customer {
        id: row.get(0),
        name: row.get(1),
        created_at: row.get(2),
    }
}

impl Customers for PgStore {
    fn create_customer(&self, name: String) -> Result<NewCustomer> {
        let c = Customer {
            id: self.ids.next(IdKind::Customer),
            name,
            created_at: now_ms(),
        };
        let key = ApiKey::generate(ApiKey::CUSTOMER_PREFIX);
        let record = self.key_record(&c.id, &key);
        self.write(|tx, _| {
            let n = tx.execute(
                "INSERT INTO customers (id, name, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
                &[&c.id, &c.name, &c.created_at],
            )?;
            if n == 0 {
                return Err(StoreError::Invalid(ValidationError::new(
                    "name_taken",
                    format!("a customer named {:?} already exists", c.name),
                )));
            }
            super::keys::insert(tx, &record)
        })?;
        self.keys.remember(key.hash(), &record);
        Ok(NewCustomer {
            customer: c,
            key: NewKey {
                record,
                plaintext: key.as_str().to_owned(),
            },
        })
    }

    fn get_customer(&self, id: &str) -> Result<Option<Customer>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT id, name, created_at FROM customers WHERE id = $1",
                    &[&id],
                )?
                .as_ref()
                .map(customer))
        })
    }

    fn find_customer(&self, name_or_id: &str) -> Result<Option<Customer>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT id, name, created_at FROM customers WHERE id = $1
                     UNION ALL
                     SELECT id, name, created_at FROM customers WHERE name = $1 AND id <> $1
                     LIMIT 1",
                    &[&name_or_id],
                )?
                .as_ref()
                .map(customer))
        })
    }

    /// Customers, newest first.
    fn list_customers(&self, page: PageQuery) -> Result<Page<Customer>> {
        self.read(|tx| {
            let rows = tx.query(
                "SELECT id, name, created_at FROM customers
                 WHERE $1::text IS NULL OR id < $1 ORDER BY id DESC LIMIT $2",
                &[&page.before, &(page.limit as i64 + 1)],
            )?;
            let mut data: Vec<Customer> = rows.iter().map(customer).collect();
            Ok(page_of(&mut data, page.limit, |c| c.id.clone()))
        })
    }

    fn owner_of(&self, id: &str) -> Result<Option<String>> {
        let table = match id.split('_').next() {
            Some("ep") => "endpoints",
            Some("evt") => "events",
            Some("dlv") => "deliveries",
            _ => return Ok(None),
        };
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    &format!("SELECT customer_id FROM {table} WHERE id = $1"),
                    &[&id],
                )?
                .map(|r| r.get(0)))
        })
    }

    fn delete_customer(&self, id: &str) -> Result<()> {
        self.write(|tx, _| {
            let n = tx.execute("DELETE FROM customers WHERE id = $1", &[&id])?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            super::keys::announce(tx)
        })?;
        self.keys.forget(|owner| owner.customer_id == id);
        Ok(())
    }

    fn take_sends(
        &self,
        customer_id: &str,
        per_minute: u32,
        most: u32,
    ) -> Result<Option<std::result::Result<u32, std::time::Duration>>> {
        let full = f64::from(per_minute);
        self.write(|tx, _| {
            // The database's clock: every node reads the same time.
            tx.execute(
                "INSERT INTO send_budget (customer_id, tokens, at_ms)
                 VALUES ($1, $2, (extract(epoch FROM now()) * 1000)::bigint)
                 ON CONFLICT (customer_id) DO NOTHING",
                &[&customer_id, &full],
            )?;
            let row = tx.query_one(
                "SELECT tokens, at_ms, (extract(epoch FROM now()) * 1000)::bigint
                 FROM send_budget WHERE customer_id = $1 FOR UPDATE",
                &[&customer_id],
            )?;
            let (tokens, at, now): (f64, i64, i64) = (row.get(0), row.get(1), row.get(2));
            let now_tokens = (tokens + (now - at).max(0) as f64 * full / 60_000.0).min(full);
            if now_tokens < 1.0 {
                let wait = (1.0 - now_tokens) * 60.0 / full;
                return Ok(Some(Err(std::time::Duration::from_secs_f64(wait))));
            }
            let taken = (now_tokens.floor() as u32).min(most);
            tx.execute(
                "UPDATE send_budget SET tokens = $2, at_ms = $3 WHERE customer_id = $1",
                &[&customer_id, &(now_tokens - f64::from(taken)), &now],
            )?;
            Ok(Some(Ok(taken)))
        })
    }

    fn refund_sends(&self, customer_id: &str, per_minute: u32, n: u32) -> Result<()> {
        self.write(|tx, _| {
            tx.execute(
                "UPDATE send_budget SET tokens = least($2, tokens + $3) WHERE customer_id = $1",
                &[&customer_id, &f64::from(per_minute), &f64::from(n)],
            )?;
            Ok(())
        })
    }
}

/// Cuts `limit + 1` rows to a page: the extra row only says there is a next one.
pub(super) fn page_of<T>(data: &mut Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> Page<T> {
    let more = data.len() > limit;
    data.truncate(limit);
    let next = more.then(|| data.last().map(&key)).flatten();
    Page {
        data: std::mem::take(data),
        next,
    }
}
