//! `server.management_listen`: off by default, set from the file or the environment,
//! refused where it would collide with `listen`.

use super::tests::{VALID, problems};
use super::*;

fn with_management(addr: &str) -> String {
    VALID.replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:8080\"\nmanagement_listen = \"{addr}\""),
    )
}

#[test]
fn one_port_serves_everything_by_default() {
    let config = load_str(VALID, &Environment::default()).unwrap();
    assert_eq!(config.server.management_listen, None);
}

#[test]
fn the_management_port_is_read_from_the_file_and_the_environment() {
    let config = load_str(&with_management("127.0.0.1:9090"), &Environment::default()).unwrap();
    assert_eq!(
        config.server.management_listen,
        Some("127.0.0.1:9090".parse().unwrap())
    );
    let env = Environment::from_pairs([(
        "TOKEN_BROKER__SERVER__MANAGEMENT_LISTEN".to_owned(),
        "0.0.0.0:9191".to_owned(),
    )]);
    let config = load_str(VALID, &env).unwrap();
    assert_eq!(
        config.server.management_listen,
        Some("0.0.0.0:9191".parse().unwrap())
    );
}

#[test]
fn a_management_port_colliding_with_listen_is_refused() {
    for addr in ["127.0.0.1:8080", "0.0.0.0:8080"] {
        let found = problems(&with_management(addr), &Environment::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("server.management_listen:")
                && found[0].contains("a port of its own"),
            "{found:?}"
        );
    }
    // Another address family, or a port the system picks, does not collide.
    for addr in ["[::1]:8080", "127.0.0.1:0"] {
        assert!(load_str(&with_management(addr), &Environment::default()).is_ok());
    }
}

#[test]
fn a_malformed_management_port_is_named() {
    let found = problems(&with_management("nowhere"), &Environment::default());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("server.management_listen:"),
        "{found:?}"
    );
}
