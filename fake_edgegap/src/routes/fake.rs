//! `/_fake/*`: control endpoints outside Edgegap's namespace, for tests and
//! benchmarks that run the fake as a separate process.

use super::{Incoming, Reply, parse_body};
use crate::faults::FaultConfig;
use crate::inventory::Inventory;
use crate::server::Shared;

pub(super) fn inventory(shared: &Shared) -> Reply {
    match serde_json::to_value(Inventory::collect(shared)) {
        Ok(body) => Reply::ok(body),
        Err(err) => Reply::error(500, err.to_string()),
    }
}

pub(super) fn get_faults(shared: &Shared) -> Reply {
    match serde_json::to_value(&shared.faults().config) {
        Ok(body) => Reply::ok(body),
        Err(err) => Reply::error(500, err.to_string()),
    }
}

pub(super) fn put_faults(shared: &Shared, req: &Incoming) -> Reply {
    let faults: FaultConfig = match parse_body(req) {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let mut state = shared.faults();
    state.config = faults;
    state.injected.clear();
    match serde_json::to_value(&state.config) {
        Ok(body) => Reply::ok(body),
        Err(err) => Reply::error(500, err.to_string()),
    }
}
