//! Throwaway databases for tests: a brand-new PostgreSQL database per test
//! (dropped afterwards) or a SQLite file in a temporary directory.

use sea_orm::{ConnectionTrait, Database};

use crate::DatabaseSettings;

/// The server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("CRENEAU_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

pub enum TestDatabase {
    Postgres { admin_url: String, name: String },
    Sqlite { _dir: tempfile::TempDir, url: String },
}

impl TestDatabase {
    /// A fresh PostgreSQL database, or `None` (with a notice) when no server
    /// answers. In CI a missing server is a failure, never a silent skip.
    pub async fn postgres() -> Option<Self> {
        let admin_url = postgres_admin_url();
        let admin = match Database::connect(format!("{admin_url}/postgres")).await {
            Ok(db) => db,
            Err(error) => {
                if in_ci() {
                    panic!("PostgreSQL is required in CI but unreachable at {admin_url}: {error}");
                }
                eprintln!("NOTICE: PostgreSQL unreachable at {admin_url} ({error}); skipping this PostgreSQL test");
                return None;
            }
        };
        let name = format!("creneau_test_{}", uuid::Uuid::new_v4().simple());
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
        let _ = admin.close().await;
        Some(Self::Postgres { admin_url, name })
    }

    /// A fresh database on `backend`; `None` only for a PostgreSQL server
    /// that is absent outside CI.
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Postgres => Self::postgres().await,
            Backend::Sqlite => Some(Self::sqlite()),
        }
    }

    /// A fresh database with `service`'s migrations applied, and a
    /// connection to it for assertions.
    pub async fn migrated(backend: Backend, service: &str) -> Option<(Self, sea_orm::DatabaseConnection)> {
        let database = Self::new(backend).await?;
        let db = crate::db::connect(&database.settings()).await.expect("connect to test database");
        creneau_migrations::up(service, &db).await.expect("migrations apply");
        Some((database, db))
    }

    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = crate::db::sqlite_url(&dir.path().join("test.sqlite"));
        Self::Sqlite { _dir: dir, url }
    }

    pub fn url(&self) -> String {
        match self {
            Self::Postgres { admin_url, name } => format!("{admin_url}/{name}"),
            Self::Sqlite { url, .. } => url.clone(),
        }
    }

    pub fn settings(&self) -> DatabaseSettings {
        DatabaseSettings::new(self.url())
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Self::Postgres { admin_url, name } = self else {
            return;
        };
        let (admin_url, db_name) = (admin_url.clone(), name.clone());
        // Drop may run inside a runtime that is shutting down: use a thread
        // with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let admin = Database::connect(format!("{admin_url}/postgres")).await?;
                admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")).await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {name}");
        }
    }
}

/// A gRPC channel to a server this test started on `port`.
pub async fn channel(port: u16) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("valid address")
        .connect()
        .await
        .expect("test server accepts connections")
}

/// Runs each scenario `async fn(TestApp)` twice, on PostgreSQL and on
/// SQLite, with an app from `spawn(Backend) -> Option<TestApp>`.
#[macro_export]
macro_rules! backend_tests {
    ($spawn:path; $($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                use $crate::testing::Backend;

                #[tokio::test(flavor = "multi_thread")]
                async fn postgres() {
                    if let Some(app) = $spawn(Backend::Postgres).await {
                        super::$scenario(app).await;
                    }
                }

                #[tokio::test(flavor = "multi_thread")]
                async fn sqlite() {
                    let app = $spawn(Backend::Sqlite).await.expect("SQLite is always available");
                    super::$scenario(app).await;
                }
            }
        )+
    };
}
