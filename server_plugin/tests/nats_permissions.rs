//! A game server under the shipped least-privilege NATS configurations: the shared game-server
//! role (`assets/nats/bevygap.conf`) and per-server credentials through auth callout
//! (`assets/nats/bevygap-per-server.conf`). With only those rights and its own inbox, it
//! registers, admits a granted client, keeps its player record, obeys control commands and
//! removes its records on the way out, and NATS refuses nothing it does.

mod common;

use bevygap_server_plugin::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_shared::nats::NatsAuth;
use bevygap_shared::nats::server_credentials::issue;
use bevygap_shared::records::ServerStatus;
use bevygap_testkit::lightyear_client::disconnect;
use bevygap_testkit::{DEADLINE, every, expect_step_until};
use common::*;

#[test]
fn a_game_server_does_its_whole_job_with_the_game_server_role() {
    let buckets = GrantBuckets::start_with_shipped_permissions();
    let id = ServerId::new("local-least-privilege").unwrap();
    let mut config = server_config(&buckets, id.as_str(), true, false);
    config.nats = shipped_role_config(&buckets.nats, "gameserver");
    whole_job(&buckets, &id, config);
}

#[test]
fn a_game_server_does_its_whole_job_with_its_own_credentials() {
    let (buckets, key) = GrantBuckets::start_with_per_server_credentials();
    let id = ServerId::new("local-own-credentials").unwrap();
    let mut config = server_config(&buckets, id.as_str(), true, false);
    let valid_until = bevygap_shared::records::now_ms() / 1000 + 3600;
    let credentials = issue(&key, &buckets.names, &id, valid_until);
    config.nats.auth = NatsAuth::UserPassword { user: credentials.user, password: credentials.password };
    whole_job(&buckets, &id, config);
}

fn whole_job(buckets: &GrantBuckets, id: &ServerId, config: ServerConfig) {
    let id = id.clone();
    let mut server = server_app(config);
    let record = wait_ready(&mut server, buckets, &id);
    let addr = record.addresses.udp.expect("UDP address");

    buckets.grant(&id, 9101, "session-least");
    let (mut client, entity) = connected_udp_client(&mut [&mut server], addr, 9101);
    let player = wait_for_player_record(&mut [&mut server, &mut client], buckets, &id, 9101);
    assert_eq!(player.session_id, "session-least");

    buckets.command(&id, r#"{"command":"drain"}"#);
    expect_step_until(
        &mut [&mut server, &mut client],
        DEADLINE,
        "the drain to be reported",
        every(NATS_POLL, || buckets.server_record(&id).is_some_and(|r| r.status == ServerStatus::Draining)),
    );
    assert_eq!(phase(&server), BevygapServerState::Draining);
    disconnect(&mut client, entity);
    wait_for_no_player_record(&mut [&mut server, &mut client], buckets, &id, 9101);
    // Drained: it stops by itself, removing its server record on the way out.
    expect_step_until(&mut [&mut server], DEADLINE, "the drained server to exit", |apps| exited(apps[0]));
    assert!(buckets.server_record(&id).is_none(), "the server record was removed");
    assert_eq!(permission_violations(&buckets.nats), Vec::<String>::new(), "NATS refused something the server did");
}
