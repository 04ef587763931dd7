//! The test side of the one world (`entra_daemon::tools::world`), included
//! with `#[path]` by the test binaries that run the daemon: the tests'
//! builder and cast, and the world's steps as test steps (a failure fails
//! the test).
#![allow(dead_code)]

use std::ops::Deref;
use std::time::Duration;

use entra_daemon::emulator::EmulatedUser;
use entra_daemon::store::StateDb;
use entra_daemon::tools::world::{World, WorldBuilder, TICK};

pub const CONTOSO: i64 = 1;
pub const FABRIKAM: i64 = 2;
pub const T1: &str = "11111111-1111-4111-8111-111111111111";
pub const T2: &str = "22222222-2222-4222-8222-222222222222";
pub const CONTOSO_ADMIN: &str = "admin@contoso.com";
pub const FABRIKAM_ADMIN: &str = "admin@fabrikam.com";

/// A world with the tests' short timings.
pub fn builder() -> WorldBuilder {
    World::builder()
        .scratch("entra-daemon-test")
        .short_timings()
}

/// The connect server on a free loopback port, its Store signing key in
/// `store.key`, answering the Store at an address nothing listens on.
pub fn with_connect_server(b: WorldBuilder, store_key: &str) -> WorldBuilder {
    b.http(
        "listen = \"127.0.0.1:0\"\n\
         store_return_url = \"http://127.0.0.1:9/store/apps/entra\"\n\
         store_signing_key_file = \"store.key\"\n\
         consent_retry_interval = \"20ms\"",
    )
    .private_file("store.key", store_key)
}

/// Polls `cond` every few milliseconds; fails the test with `what` if it
/// does not hold within `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    if let Err(e) = entra_daemon::tools::world::wait_for(what, timeout, cond).await {
        panic!("{e:#}");
    }
}

/// A built [`World`] whose steps fail the test instead of returning errors.
pub struct TestWorld(pub World);

impl Deref for TestWorld {
    type Target = World;
    fn deref(&self) -> &World {
        &self.0
    }
}

impl TestWorld {
    pub async fn build(b: WorldBuilder) -> Self {
        Self(b.build().await.expect("the test world"))
    }

    /// Runs SQL in Plumm's database, as Plumm's app would (one transaction).
    pub fn plumm(&self, sql: &str) {
        self.0.plumm(sql).expect("plumm sql");
    }

    pub fn state(&self) -> StateDb {
        self.0.state().expect("state")
    }

    pub fn config_text(&self) -> String {
        self.0.config_text().expect("config")
    }

    pub fn write_config(&self, text: &str) {
        self.0.write_config(text).expect("config");
    }

    /// Connects a company through the CLI's code path (token + Graph read verified).
    pub async fn connect(&self, company: i64, tenant: &str) {
        self.0
            .connect(company, tenant, "test")
            .await
            .expect("connect");
    }

    /// Waits until the outbox is consumed and nothing is pending.
    pub async fn converged(&self) {
        if let Err(e) = self.0.converged(Duration::from_secs(15), TICK).await {
            panic!("{e:#}");
        }
    }

    /// The tenant's accounts, the deleted ones left out.
    pub fn users(&self, tenant: &str) -> Vec<EmulatedUser> {
        self.control
            .users(tenant)
            .into_iter()
            .filter(|u| !u.deleted)
            .collect()
    }
}
