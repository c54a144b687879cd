//! The matchmaker on a three-node NATS cluster (three nats-server processes routed on
//! loopback) with every bucket replicated three times: one node killed during joins loses no
//! join that was answered ready, and joins go on.

mod support;

use std::time::{Duration, Instant};

use bevygap_matchmaker::config::MatchmakerConfig;
use bevygap_matchmaker::harness::LocalMatchmaker;
use bevygap_shared::naming::Bucket;
use bevygap_shared::nats::NatsConfig;
use bevygap_testkit::NatsCluster;
use serde_json::{Value, json};
use support::*;

/// Joins until one is answered ready (a join during the fail-over may be told `unavailable`
/// and retried, as a client would); the ready answer.
fn join_ready(mm: &LocalMatchmaker) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join",
                      "params": {"game": GAME, "version": VERSION}});
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, answer) = post(&mm.public_url(), &body.to_string(), None);
        if status == 200 && answer["result"]["status"] == "ready" {
            return answer["result"].clone();
        }
        assert!(Instant::now() < deadline, "no join was served: {answer}");
        assert_eq!(answer["error"]["data"]["code"], "unavailable", "only a fail-over may refuse: {answer}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn with_replicated_buckets_joins_go_on_when_one_nats_node_of_three_dies_and_no_ready_join_is_lost() {
    let mut cluster = NatsCluster::start(3).expect("three nats-servers");
    assert!(cluster.wait_for_jetstream(30), "the JetStream cluster formed");
    let namespace = format!("t{:08x}", rand::random::<u32>());
    let mut config = MatchmakerConfig::for_tests(&namespace, vec![stand_in_server().display().to_string()]);
    config.replicas.nats_replicas = 3;
    config.servers.capacity = 64;
    config.tokens.ttl_secs = 300; // no grant expires during the test
    config.joins.limits.max_per_requester = 64; // the unused tokens all count against 127.0.0.1
    (config.front.rate_per_minute, config.front.rate_burst) = (60_000, 1_000); // retries during the fail-over
    let provider = local_provider(&config, cluster.urls());
    let mut nats_config = NatsConfig::new(cluster.nodes[0].url(), "bevygap-matchmaker");
    nats_config.urls = cluster.nodes.iter().map(|node| node.url()).collect();
    let mm = LocalMatchmaker::start_with_nats_config(None, nats_config, provider, config, test_keys(), |_| {})
        .expect("the matchmaker starts on the cluster");

    let mut ready: Vec<Value> = (0..4).map(|_| join_ready(&mm)).collect();
    cluster.nodes[0].stop(); // SIGKILL: the node both the matchmaker and the server reached first
    let killed = Instant::now();
    ready.push(join_ready(&mm));
    eprintln!("first join ready {:?} after the node was killed", killed.elapsed());
    ready.extend((0..3).map(|_| join_ready(&mm)));

    // Every join answered ready still has its grant and session (written grant first), read
    // from a surviving node.
    let survivor = cluster.nodes[1].url();
    let grants = bucket_keys(&survivor, &namespace, Bucket::Clients);
    let sessions = bucket_keys(&survivor, &namespace, Bucket::Sessions);
    assert!(grants.len() >= ready.len(), "{} grants for {} ready joins", grants.len(), ready.len());
    for answer in &ready {
        let session = answer["session_id"].as_str().expect("a session id");
        assert!(sessions.iter().any(|s| s == session), "{session} lost: {sessions:?}");
    }
    // Because each bucket is kept on all three nodes (not by luck of where one copy was).
    let names = bevygap_shared::Namespace::new(&namespace).unwrap().names();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let replicas = rt.block_on(async {
        let client = async_nats::connect(survivor.as_str()).await.expect("connects");
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream(format!("KV_{}", names.bucket(Bucket::Clients))).await.expect("the stream");
        stream.info().await.expect("its info").config.num_replicas
    });
    assert_eq!(replicas, 3);
}
