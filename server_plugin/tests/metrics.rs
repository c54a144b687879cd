//! The game server's optional `/metrics` page, over real HTTP, with a real UDP client admitted
//! and another refused, against a real nats-server. Its own binary: the recorder is global to
//! the process, so the counts here are this test's alone.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use bevy::prelude::*;
use bevygap_server_plugin::{MetricsConfig, MetricsEndpoint};
use bevygap_testkit::lightyear_client::{ClientConnection, client_connection, is_disconnected};
use bevygap_testkit::{DEADLINE, every, expect_step_until};
use common::*;

/// (status line, body) of one request.
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).expect("the metrics listener accepts");
    write!(stream, "GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n").expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.lines().next().unwrap_or_default().to_string(), body.to_string())
}

fn value(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn the_metrics_page_counts_players_admissions_by_reason_and_the_nats_link() {
    let buckets = GrantBuckets::start("server-metrics");
    let mut config = server_config(&buckets, "local-metrics", true, false);
    config.metrics = MetricsConfig { listen: Some("127.0.0.1:0".parse().expect("an address")) };
    let mut server = server_app(config);
    let id = bevygap_shared::naming::ServerId::new("local-metrics").expect("an id");
    let record = wait_ready(&mut server, &buckets, &id);
    let addr = record.addresses.udp.expect("UDP address");
    let page_addr = server.world().resource::<MetricsEndpoint>().addr;

    buckets.grant(&id, 3001, "session-m");
    let (mut admitted, _) = connected_udp_client(&mut [&mut server], addr, 3001);
    let (mut stranger, stranger_e) = udp_client(addr, 3002); // never granted
    expect_step_until(&mut [&mut server, &mut admitted, &mut stranger], DEADLINE, "the stranger refused", |apps| {
        is_disconnected(apps[2], stranger_e)
    });
    assert!(matches!(client_connection(&stranger, stranger_e), ClientConnection::Disconnected(_)));

    let mut page = String::new();
    expect_step_until(
        &mut [&mut server, &mut admitted],
        DEADLINE,
        "the page to show the connected player",
        every(NATS_POLL, || {
            page = get(page_addr, "/metrics").1;
            value(&page, "bevygap_server_players") == Some(1.0)
        }),
    );
    assert_eq!(value(&page, "bevygap_server_capacity"), Some(8.0), "{page}");
    assert_eq!(value(&page, "bevygap_server_admitting"), Some(1.0), "{page}");
    assert_eq!(value(&page, "bevygap_server_nats_connected"), Some(1.0), "{page}");
    let admissions = |outcome: &str, reason: &str| {
        value(&page, &format!("bevygap_server_admissions_total{{outcome=\"{outcome}\",reason=\"{reason}\"}}"))
    };
    assert_eq!(admissions("admitted", "none"), Some(1.0), "{page}");
    assert!(admissions("refused", "no_grant").is_some_and(|n| n >= 1.0), "the stranger's tries: {page}");
    assert!(!page.contains("3001") && !page.contains("3002"), "no client ids on the page");

    let (status, _) = get(page_addr, "/");
    assert!(status.contains("404"), "{status}");
    let (status, _) = get(page_addr, "/metrics?x");
    assert!(status.contains("404"), "only the exact path: {status}");
}
