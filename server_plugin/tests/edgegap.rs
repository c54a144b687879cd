//! An Edgegap deployment: context from the `ARBITRIUM_*` environment, and a server that stops
//! by itself calls the deployment's self-stop URL. Edgegap's endpoint is played by a local
//! HTTP server.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bevy::prelude::*;
use bevygap_server_plugin::context::EdgegapContext;
use bevygap_server_plugin::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_testkit::lightyear_client::disconnect;
use bevygap_testkit::{DEADLINE, expect_step_until, test_keys};
use common::*;

const DELETE_TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// Requests received: (method, url, authorization header).
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// The live context body shape (captured while deploying), for this deployment.
const CONTEXT_BODY: &str = r#"{"fqdn":"a1b2c3d4e5f6.pr.edgegap.net","location":{"administrative_division":"Quebec","city":"Montreal","continent":"North America","country":"Canada","latitude":45.513707,"longitude":-73.619073,"timezone":"Eastern Time"},"ports":{"gameport":{"external":PORT,"internal":PORT,"link":"a1b2c3d4e5f6.pr.edgegap.net:PORT","name":"gameport","protocol":"UDP","proxy":null,"tls_upgrade":false}},"public_ip":"127.0.0.1","ready":false,"request_id":"a1b2c3d4e5f6","sockets":10,"sockets_usage":0,"status":"Status.DEPLOYING","whitelisting_active":false}"#;

fn fake_edgegap_endpoint(context_port: u16) -> (String, Seen) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let auth = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("authorization"))
                .map(|h| h.value.to_string())
                .unwrap_or_default();
            log.lock().unwrap().push((request.method().to_string(), request.url().to_string(), auth));
            let (status, body) = if request.url().starts_with("/v1/context/") {
                (200, CONTEXT_BODY.replace("PORT", &context_port.to_string()))
            } else {
                (202, r#"{"message":"a1b2c3d4e5f6 - Delete request will be processed soon"}"#.to_string())
            };
            let _ = request.respond(tiny_http::Response::from_string(body).with_status_code(status));
        }
    });
    (base, seen)
}

#[test]
fn an_edgegap_server_registers_from_arbitrium_env_and_self_stops() {
    let buckets = GrantBuckets::start("edgegap");
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (base, seen) = fake_edgegap_endpoint(port);
    let ports = format!(
        r#"{{"ports":{{"gameport":{{"name":"gameport","internal":{port},"external":{port},"protocol":"UDP"}}}}}}"#
    );
    let location = r#"{"city":"Montreal","country":"Canada","continent":"North America","administrative_division":"Quebec","timezone":"Eastern Time","latitude":45.513707,"longitude":-73.619073}"#;
    let env: HashMap<String, String> = [
        ("ARBITRIUM_REQUEST_ID", "a1b2c3d4e5f6".to_string()),
        ("ARBITRIUM_PUBLIC_IP", "127.0.0.1".into()),
        ("ARBITRIUM_CONTEXT_URL", format!("{base}/v1/context/a1b2c3d4e5f6/17")),
        ("ARBITRIUM_CONTEXT_TOKEN", "dfaf50b9333b9ee07b22ed247e4a17e6".into()),
        ("ARBITRIUM_DELETE_URL", format!("{base}/v1/self/stop/a1b2c3d4e5f6/9")),
        ("ARBITRIUM_DELETE_TOKEN", DELETE_TOKEN.into()),
        ("ARBITRIUM_DEPLOYMENT_LOCATION", location.into()),
        ("ARBITRIUM_PORTS_MAPPING", ports),
        ("BEVYGAP_NAMESPACE", "edgegap".into()),
        ("BEVYGAP_GAME", "testgame".into()),
        ("BEVYGAP_VERSION", "1.0".into()),
        ("NATS_URL", buckets.nats.url()),
    ]
    .into_iter()
    .chain(test_keys().to_env())
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    let mut config = ServerConfig::from_source(&env).expect("a valid Edgegap environment");
    config.shutdown.handle_signals = false;
    let id = ServerId::new("edgegap-a1b2c3d4e5f6").unwrap();
    assert_eq!(config.context.server_id, id);
    let mut server = server_app(config);
    let record = wait_ready(&mut server, &buckets, &id);
    assert_eq!(record.provider, "edgegap");
    let addr = record.addresses.udp.expect("UDP from the port mapping");
    assert_eq!(addr, format!("127.0.0.1:{port}").parse().unwrap());
    let location = server.world().resource::<ServerContext>().edgegap().map(|d| d.location.city.clone());
    assert_eq!(location.as_deref(), Some("Montreal"));

    // The context endpoint was read in the background and agrees with the environment.
    expect_step_until(&mut [&mut server], DEADLINE, "the Edgegap context", |apps| {
        apps[0].world().contains_resource::<EdgegapContext>()
    });
    let context = server.world().resource::<EdgegapContext>().0.clone();
    assert_eq!((context.fqdn.as_str(), context.sockets), ("a1b2c3d4e5f6.pr.edgegap.net", Some(10)));
    let ctx = server.world().resource::<ServerContext>().clone();
    assert!(bevygap_server_plugin::context::edgegap::context_mismatches(&ctx, &context).is_empty());

    buckets.grant(&id, 9001, "edgegap-session");
    let (mut client, entity) = connected_udp_client(&mut [&mut server], addr, 9001);

    // The game decides to end the match: drain, and the server stops itself once empty.
    server.world_mut().write_message(ServerControl::Drain { reason: "match over".into() });
    disconnect(&mut client, entity);
    expect_step_until(&mut [&mut server, &mut client], DEADLINE, "the server to stop", |apps| exited(apps[0]));
    assert!(buckets.server_record(&id).is_none(), "server record left behind");

    let calls = seen.lock().unwrap().clone();
    let stop = calls.iter().find(|(method, url, _)| method == "DELETE" && url == "/v1/self/stop/a1b2c3d4e5f6/9");
    let (_, _, auth) = stop.unwrap_or_else(|| panic!("no self-stop call; Edgegap saw {calls:?}"));
    assert_eq!(auth, DELETE_TOKEN, "self-stop must send the raw delete token");
}
