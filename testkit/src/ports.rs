use std::net::TcpListener;

/// Asks the OS for a currently free TCP port on 127.0.0.1.
///
/// The port is released before returning, so another process could grab it first; tests use it
/// only where the program under test insists on being told a port up front.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS hands out an ephemeral port on loopback")
}
