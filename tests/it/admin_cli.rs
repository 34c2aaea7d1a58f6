//! `token-broker admin …` against a running broker: every operation through the
//! binary, tables by default and the API's JSON with `--json`, URL and token from the
//! environment or flags, the broker's refusals on standard error with exit status 1.

use serde_json::Value;

use crate::admin_api::{ADMIN, admin_broker, alice_client, seeded};
use crate::login_consent::{authorize_url, open_consent, register};
use crate::login_flow::verify;
use crate::support::{TestBroker, binary};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// The binary with `args`, the broker and token in the environment (`token`: None
/// leaves it out).
async fn admin(broker: &TestBroker, token: Option<&str>, args: &[&str]) -> Run {
    let mut command = binary();
    command
        .arg("admin")
        .args(args)
        .env("TOKEN_BROKER_ADMIN_URL", &broker.url)
        .env_remove("TOKEN_BROKER_ADMIN_TOKEN");
    if let Some(token) = token {
        command.env("TOKEN_BROKER_ADMIN_TOKEN", token);
    }
    let output = actix_web::rt::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn ok(broker: &TestBroker, args: &[&str]) -> String {
    let run = admin(broker, Some(ADMIN), args).await;
    assert_eq!(run.code, Some(0), "{args:?}: {}", run.stderr);
    run.stdout
}

async fn json(broker: &TestBroker, args: &[&str]) -> Value {
    let mut with = args.to_vec();
    with.push("--json");
    serde_json::from_str(&ok(broker, &with).await).unwrap()
}

#[actix_web::test]
async fn every_operation_works_from_the_command_line() {
    let broker = admin_broker().await;
    let (first, first_token) = alice_client(&broker, "Cli first").await;
    let (second, second_token) = alice_client(&broker, "Cli second").await;
    let (third, third_token) = alice_client(&broker, "Cli third").await;
    let pending = register(&broker, "Cli pending").await;
    open_consent(&authorize_url(&broker, &pending, &[])).await;

    let table = ok(&broker, &["clients", "list"]).await;
    assert!(table.starts_with("CLIENT_ID"), "{table}");
    assert!(
        table.contains(&first) && table.contains("Cli second"),
        "{table}"
    );
    let shown = ok(&broker, &["clients", "show", &second]).await;
    assert!(
        shown.contains("client_name") && shown.contains("Cli second"),
        "{shown}"
    );

    let grants = json(&broker, &["grants", "list", "--subject", "alice"]).await;
    assert_eq!(grants["items"].as_array().unwrap().len(), 3, "{grants}");
    let of_first = json(&broker, &["grants", "list", "--client-id", &first]).await;
    let grant_id = of_first["items"][0]["grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let table = ok(&broker, &["grants", "list"]).await;
    assert!(
        table.starts_with("GRANT_ID") && table.contains(&grant_id),
        "{table}"
    );
    let shown = json(&broker, &["grants", "show", &grant_id]).await;
    assert_eq!(shown["client_id"], first.as_str());

    let sessions = ok(&broker, &["sessions", "list", "--client-id", &pending]).await;
    assert_eq!(sessions.lines().count(), 2, "{sessions}");
    assert!(sessions.contains(&pending));

    assert_eq!(
        ok(&broker, &["grants", "revoke", &grant_id]).await,
        "revoked 1 grant(s)\n"
    );
    assert_eq!(verify(&broker, &first_token).await.0, 401);
    assert_eq!(
        ok(&broker, &["grants", "revoke", &grant_id]).await,
        "revoked 0 grant(s)\n",
        "idempotent"
    );
    let revoked = json(&broker, &["grants", "revoke-client", &second]).await;
    assert_eq!(revoked["revoked"], 1);
    assert_eq!(verify(&broker, &second_token).await.0, 401);

    let deleted = ok(&broker, &["clients", "delete", &third]).await;
    assert_eq!(
        deleted,
        format!("deleted client {third}; 1 grant(s) revoked\n")
    );
    assert_eq!(verify(&broker, &third_token).await.0, 401);

    let (_, again) = alice_client(&broker, "Cli again").await;
    assert_eq!(
        ok(&broker, &["offboard", "alice"]).await,
        "revoked 1 grant(s) of subject alice\n"
    );
    assert_eq!(verify(&broker, &again).await.0, 401);
}

#[actix_web::test]
async fn pages_are_walked_with_the_cursor_or_all_at_once() {
    let broker = admin_broker().await;
    for i in 0..9 {
        let grant = seeded(&format!("g{i}"), "erin", "c1");
        broker.state.store.put_grant(grant).await.unwrap();
    }
    let first = ok(&broker, &["grants", "list", "--limit", "4"]).await;
    let more = first.lines().last().unwrap();
    assert!(more.starts_with("(more: --cursor "), "{first}");
    let cursor = more
        .trim_start_matches("(more: --cursor ")
        .trim_end_matches(')');
    let second = json(
        &broker,
        &["grants", "list", "--limit", "4", "--cursor", cursor],
    )
    .await;
    let ids: Vec<_> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["grant_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["g4", "g5", "g6", "g7"]);
    let all = json(&broker, &["grants", "list", "--limit", "2", "--all"]).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 9);
    assert_eq!(all["next_cursor"], Value::Null);
}

#[actix_web::test]
async fn refusals_are_reported_and_change_nothing() {
    let broker = admin_broker().await;
    let (client, token) = alice_client(&broker, "Cli guarded").await;

    let wrong = admin(
        &broker,
        Some("wrong-token-0123456789abcdef0123456789"),
        &["offboard", "alice"],
    )
    .await;
    assert_eq!(wrong.code, Some(1));
    assert!(wrong.stderr.contains("HTTP 401"), "{}", wrong.stderr);
    let missing = admin(&broker, None, &["clients", "delete", &client]).await;
    assert_eq!(missing.code, Some(2));
    assert!(
        missing.stderr.contains("TOKEN_BROKER_ADMIN_TOKEN"),
        "{}",
        missing.stderr
    );
    assert_eq!(verify(&broker, &token).await.0, 200, "nothing changed");

    let unknown = admin(&broker, Some(ADMIN), &["grants", "show", "nope"]).await;
    assert_eq!(unknown.code, Some(1));
    assert!(unknown.stderr.contains("HTTP 404") && unknown.stderr.contains("no such grant"));
    let unknown = admin(&broker, Some(ADMIN), &["clients", "delete", "nope"]).await;
    assert_eq!(unknown.code, Some(1));
    assert!(
        unknown.stderr.contains("no such client"),
        "{}",
        unknown.stderr
    );

    // Flags instead of the environment.
    let mut command = binary();
    command
        .args([
            "admin",
            "--url",
            &broker.url,
            "--token",
            ADMIN,
            "clients",
            "list",
            "--json",
        ])
        .env_remove("TOKEN_BROKER_ADMIN_URL")
        .env_remove("TOKEN_BROKER_ADMIN_TOKEN");
    let output = actix_web::rt::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(output.status.success());
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed["items"][0]["client_id"], client.as_str());
}
