//! The only module that touches diesel. One connection type over SQLite (the
//! embedded default) and PostgreSQL, chosen from the URL scheme at run time;
//! every query runs on tokio's blocking pool so actix workers never wait on I/O.

pub mod agents;
pub mod audit;
pub mod clients;
pub mod grants;
pub mod interactions;
pub mod jtis;
pub mod keys;
pub mod kill_switches;
pub mod policies;
pub mod revocation_log;
pub mod revocations;
mod schema;
pub mod secrets;
pub mod sessions;
pub mod users;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database could not be reached in time (pool exhausted, server down).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness constraint refused the write (used for single-use marks).
    #[error("duplicate key")]
    Duplicate,
    #[error("database error: {0}")]
    Query(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<diesel::result::Error> for StorageError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StorageError::Duplicate,
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                StorageError::Unavailable(info.message().to_owned())
            }
            other => StorageError::Query(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `postgres://` and `postgresql://` select PostgreSQL; anything else is a
    /// SQLite path (optionally prefixed `sqlite://`).
    pub fn from_url(url: &str) -> (Backend, String) {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            (Backend::Sqlite, path.to_owned())
        }
    }
}

/// Builds the right variant of [`DbConnection`] for the configured backend,
/// instead of letting diesel guess from the URL.
pub struct Manager {
    backend: Backend,
    url: String,
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match self.backend {
            Backend::Sqlite => {
                let mut c = SqliteConnection::establish(&self.url).map_err(r2d2::Error::ConnectionError)?;
                // busy_timeout makes concurrent writers wait instead of failing. WAL
                // (set once in `Db::connect`, persistent in the file) lets readers
                // proceed during a write.
                c.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
                    .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(c))
            }
            Backend::Postgres => PgConnection::establish(&self.url)
                .map(DbConnection::Postgres)
                .map_err(r2d2::Error::ConnectionError),
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1").map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// How long a query may wait for a free connection before the caller answers 503.
const CONNECTION_WAIT: Duration = Duration::from_secs(5);

/// A pooled database handle. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<Manager>,
    backend: Backend,
    /// One permit per pooled connection: requests queue here, asynchronously and
    /// in order, rather than as blocked threads inside the pool. Under load this
    /// keeps the number of blocking threads at the pool size, which on a busy
    /// core is what keeps the slowest answers close to the median.
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Db {
    /// Opens the pool and runs pending migrations.
    pub fn connect(url: &str, max_connections: u32) -> anyhow::Result<Db> {
        let (backend, url) = Backend::from_url(url);
        if backend == Backend::Sqlite {
            // Switching to WAL takes an exclusive lock: do it once, before the pool
            // opens its connections in parallel (they would see "database is locked").
            let mut c =
                SqliteConnection::establish(&url).map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
            c.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")
                .map_err(|e| anyhow::anyhow!("cannot set up the database: {e}"))?;
        }
        let manager = Manager { backend, url };
        let pool = r2d2::Pool::builder()
            .max_size(max_connections)
            // A file database does not drop connections: checking each one out
            // with a `SELECT 1` would only cost a statement per query. A server
            // connection is checked (it may have been closed under us).
            .test_on_check_out(backend == Backend::Postgres)
            .connection_timeout(CONNECTION_WAIT)
            .build(manager)
            .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
        let db = Db {
            pool,
            backend,
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(max_connections as usize)),
        };
        db.migrate()?;
        Ok(db)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn migrate(&self) -> anyhow::Result<()> {
        let mut conn = self
            .pool
            .get()
            .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
        let applied = match &mut *conn {
            DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
            DbConnection::Postgres(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len()),
        }
        .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
        if applied > 0 {
            tracing::info!(applied, "database migrations applied");
        }
        Ok(())
    }

    /// Runs `f` with a pooled connection on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StorageError> + Send + 'static,
    {
        let permit = tokio::time::timeout(CONNECTION_WAIT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| StorageError::Unavailable("no database connection became free in time".into()))?
            .map_err(|_| StorageError::Unavailable("the database pool is closed".into()))?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = pool.get().map_err(|e| StorageError::Unavailable(e.to_string()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StorageError::Unavailable(format!("storage task failed: {e}")))?
    }

    /// Runs `f` on the calling thread: for the CLI and start-up, never on a request path.
    pub fn run_blocking<T>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut conn = self.pool.get().map_err(|e| StorageError::Unavailable(e.to_string()))?;
        f(&mut conn)
    }

    /// Readiness probe: can a connection run a trivial statement?
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.run(|c| c.batch_execute("SELECT 1").map_err(StorageError::from))
            .await
    }

    /// Deletes revocation and replay marks whose tokens have expired.
    pub async fn prune_expired(&self, before: i64) -> Result<usize, StorageError> {
        self.run(move |c| {
            Ok(revocations::delete_expired(c, before)?
                + revocation_log::delete_expired(c, before)?
                + jtis::delete_expired(c, before)?
                + grants::delete_expired_revocations(c, before)?
                + interactions::delete_expired_requests(c, before)?
                + interactions::delete_expired_codes(c, before)?
                + interactions::delete_expired_refresh(c, before)?
                + sessions::delete_ended(c, before - sessions::KEEP_ENDED_SECS)?)
        })
        .await
    }
}
