//! A NATS cluster on loopback for tests: `n` nats-server processes joined by cluster routes,
//! JetStream clustered (so buckets can be replicated), each killable on its own.

use crate::{NatsServer, NatsServerError, free_tcp_port};

/// `n` nats-server processes routed into one cluster; all are killed when dropped.
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `n` nodes. Each listens for clients on its own random port and for routes on a
    /// free port; the JetStream meta group forms once a majority is up (give it a moment
    /// before creating replicated buckets: see [`NatsCluster::wait_for_jetstream`]).
    ///
    /// A route port is found free, released, then given to nats-server, so a test running
    /// beside this one may take it in between: a node that cannot start is tried again, all
    /// nodes on fresh ports, a few times.
    pub fn start(n: usize) -> Result<Self, NatsServerError> {
        const ATTEMPTS: usize = 3;
        let mut started = Self::start_once(n);
        for _ in 1..ATTEMPTS {
            if started.is_ok() {
                break;
            }
            started = Self::start_once(n);
        }
        started
    }

    fn start_once(n: usize) -> Result<Self, NatsServerError> {
        let route_ports: Vec<u16> = (0..n).map(|_| free_tcp_port()).collect();
        let routes: Vec<String> = route_ports.iter().map(|p| format!("nats-route://127.0.0.1:{p}")).collect();
        let nodes = route_ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                let config = format!(
                    "server_name: node{i}\njetstream: enabled\ncluster {{\n  name: bevygap-test\n  listen: 127.0.0.1:{port}\n  routes: [{}]\n}}\n",
                    routes.join(", ")
                );
                NatsServer::start_with_config(&config)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { nodes })
    }

    /// Every node's client URL, comma-separated (as `NATS_URL` takes them).
    pub fn urls(&self) -> String {
        self.nodes.iter().map(NatsServer::url).collect::<Vec<_>>().join(",")
    }

    /// Waits until JetStream answers on every node (the meta leader is elected), at most `secs`.
    pub fn wait_for_jetstream(&self, secs: u64) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return false };
        rt.block_on(async {
            for node in &self.nodes {
                loop {
                    let ready = match async_nats::connect(node.url()).await {
                        Ok(client) => async_nats::jetstream::new(client).query_account().await.is_ok(),
                        Err(_) => false,
                    };
                    if ready {
                        break;
                    }
                    if std::time::Instant::now() > deadline {
                        return false;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
            true
        })
    }
}
