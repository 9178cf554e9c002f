//! AFL target: a PromQL query evaluated at one instant over an empty store,
//! then parsed and formatted as `format_query` does.

use std::ops::Deref;
use std::panic::AssertUnwindSafe;

use fenghuo_query::{Engine, EngineOptions};
use fenghuo_storage_api::api::Queryable;
use fenghuo_storage_api::memory::MemStore;
use fenghuo_storage_api::model::TenantId;

fn main() {
    let store = MemStore::new();
    let querier = AssertUnwindSafe(
        store
            .querier(&TenantId::default_tenant())
            .expect("an in-memory querier"),
    );
    let engine = AssertUnwindSafe(Engine::new(EngineOptions {
        timeout: std::time::Duration::from_secs(1),
        ..EngineOptions::default()
    }));
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        // `Deref::deref` keeps the closure capturing the unwind-safe wrappers.
        let _ = Deref::deref(&engine).instant(Deref::deref(&querier).as_ref(), text, 1_000);
        if let Ok(expr) = fenghuo_query::depth::parse(text) {
            let _ = expr.prettify();
        }
    });
}
