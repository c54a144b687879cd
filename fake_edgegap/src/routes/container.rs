//! In-container endpoints: context and self-stop. They authenticate with the
//! raw per-deployment tokens injected as `ARBITRIUM_*_TOKEN`, not the API key.

use super::{Incoming, Reply, request_stop};
use crate::server::Shared;
use crate::views;

pub(super) fn context(shared: &Shared, req: &Incoming, id: &str, number: &str) -> Reply {
    let world = shared.world();
    let Some(dep) = world.deployments.get(id) else {
        return Reply::error(400, format!("Deployment {id} not found"));
    };
    if number.parse::<u32>().ok() != Some(dep.security_number) {
        return Reply::error(400, "Invalid security number");
    }
    if req.authorization.as_deref() != Some(dep.context_token.as_str()) {
        return Reply::error(401, "Unauthorized");
    }
    Reply::ok(views::context(&shared.config, &world, dep))
}

pub(super) fn self_stop(shared: &Shared, req: &Incoming, id: &str, access_point: &str) -> Reply {
    {
        let world = shared.world();
        let Some(dep) = world.deployments.get(id) else {
            return Reply::error(400, format!("Deployment {id} not found"));
        };
        if access_point.parse::<u32>().ok() != Some(dep.access_point_id) {
            return Reply::error(400, "Invalid access point");
        }
        if req.authorization.as_deref() != Some(dep.delete_token.as_str()) {
            return Reply::error(401, "Unauthorized");
        }
    }
    request_stop(shared, id)
}
