//! Environment resolution and authorization, in one function used by every operation
//! (DESIGN.md §3). An environment the principal may not see is answered exactly like one
//! that does not exist: same error, same message.

use crate::audit::Call;
use assay_core::ports::Store;
use assay_core::{EnvRef, Environment, Error, Result};

/// A resolved environment the caller may act in (at least at the operation's level).
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub env: Environment,
}

pub(crate) async fn authorize(
    store: &dyn Store,
    call: &mut Call<'_>,
    env_ref: &EnvRef,
) -> Result<Scope> {
    let hidden = || Error::NotFound {
        kind: "environment",
        name: format!("{}/{}", env_ref.org, env_ref.env),
    };
    let principal = &call.actor.principal;
    let org = match store.find_org(&env_ref.org).await? {
        Some(org) if org.id == principal.org_id => org,
        // Unknown, or another organization: the event goes to the principal's own chain.
        _ => {
            call.denied = true;
            return Err(hidden());
        }
    };
    call.org_id = org.id;
    let Some(env) = store.find_env(org.id, &env_ref.env).await? else {
        call.denied = true;
        return Err(hidden());
    };
    call.env_id = Some(env.id);
    let Some(level) = principal.level_in(org.id, env.id) else {
        call.denied = true;
        return Err(hidden());
    };
    let needed = call.operation.required_level();
    if level < needed {
        call.denied = true;
        return Err(Error::Forbidden { needed });
    }
    Ok(Scope { env })
}
