//! The Lua scripts: every write that reads before it writes, or touches more than one
//! key with a condition, is one script, so Redis applies it whole and no other
//! client's command runs in between. Each is sent as `EVALSHA`, falling back to
//! loading it when Redis does not know it (first use, or after a restart).

use ::redis::Script;

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/common.lua"),
            include_str!(concat!("lua/", $file))
        ))
    };
}

pub struct Scripts {
    pub touch_client: Script,
    pub set_upstream: Script,
    pub revoke_grant: Script,
    pub put_refresh: Script,
    pub find_refresh: Script,
    pub delete_refresh: Script,
    pub rotate_refresh: Script,
    pub undo_rotation: Script,
    pub sweep_grants: Script,
    pub add_signing_keys: Script,
    pub put_grant: Script,
    pub index_grants: Script,
    pub index_clients: Script,
    pub read_grants: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Self {
            touch_client: script!("touch_client.lua"),
            set_upstream: script!("set_upstream.lua"),
            revoke_grant: script!("revoke_grant.lua"),
            put_refresh: script!("put_refresh.lua"),
            find_refresh: script!("find_refresh.lua"),
            delete_refresh: script!("delete_refresh.lua"),
            rotate_refresh: script!("rotate_refresh.lua"),
            undo_rotation: script!("undo_rotation.lua"),
            sweep_grants: script!("sweep_grants.lua"),
            add_signing_keys: script!("add_signing_keys.lua"),
            put_grant: script!("put_grant.lua"),
            index_grants: script!("index_grants.lua"),
            index_clients: script!("index_clients.lua"),
            read_grants: script!("read_grants.lua"),
        }
    }
}
