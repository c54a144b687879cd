//! How many connections an endpoint holds, in total and per client address, and what the
//! process's file-descriptor limit allows. One host must not be able to hold every slot (idle
//! sockets cost it nothing) nor run the process out of descriptors, which would also stop the
//! local provider from launching game servers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::limits::address_key;

/// Open connections per address key; a [`ConnectionSlot`] gives its place back when dropped.
#[derive(Debug, Clone)]
pub struct ConnectionCounts {
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    cap: usize,
}

/// One open connection, counted against its address until dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    counts: Option<ConnectionCounts>,
    key: IpAddr,
}

impl ConnectionCounts {
    /// At most `cap` connections per address key (IPv6 per /64).
    pub fn new(cap: usize) -> Self {
        Self { per_address: Arc::default(), cap }
    }

    /// A slot for a connection from `ip`, or `None` when its address already holds `cap`.
    pub fn take(&self, ip: IpAddr) -> Option<ConnectionSlot> {
        let key = address_key(ip);
        let mut map = self.per_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let open = map.entry(key).or_insert(0);
        if *open >= self.cap {
            return None;
        }
        *open += 1;
        Some(ConnectionSlot { counts: Some(self.clone()), key })
    }

    /// A slot that is not counted (connections from trusted proxies carry many players).
    pub fn uncounted(&self, ip: IpAddr) -> ConnectionSlot {
        ConnectionSlot { counts: None, key: ip }
    }

    /// Connections open from `ip`'s address key.
    pub fn open(&self, ip: IpAddr) -> usize {
        let map = self.per_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(&address_key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let Some(counts) = &self.counts else { return };
        let mut map = counts.per_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(open) = map.get_mut(&self.key) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// Descriptors kept for everything that is not a public client connection: NATS, the admin
/// endpoint's connections, game-server processes and their pipes, logs.
const RESERVED_FDS: u64 = 512;

/// Raises the soft file-descriptor limit to the hard one, and returns how many client
/// connections the public endpoint can hold within it (at most `wanted`), so the process
/// never runs out of descriptors however many clients connect.
pub fn connection_budget(wanted: usize) -> usize {
    let limit = raise_fd_limit();
    let budget = limit.saturating_sub(RESERVED_FDS).min(wanted as u64) as usize;
    if budget < wanted {
        tracing::warn!(
            "the file-descriptor limit is {limit}: the public endpoint holds at most {budget} connections \
             (raise `ulimit -n` for more)"
        );
    }
    budget.max(1)
}

/// The soft `RLIMIT_NOFILE` after raising it as far as the hard limit allows.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn each_address_holds_at_most_its_cap_and_slots_come_back() {
        let counts = ConnectionCounts::new(2);
        let a = counts.take(ip("203.0.113.1")).unwrap();
        let _b = counts.take(ip("::ffff:203.0.113.1")).unwrap();
        assert!(counts.take(ip("203.0.113.1")).is_none(), "the mapped form is the same address");
        assert!(counts.take(ip("203.0.113.2")).is_some(), "another address is served");
        assert!(counts.take(ip("2001:db8::1")).is_some());
        drop(a);
        assert_eq!(counts.open(ip("203.0.113.1")), 1);
        assert!(counts.take(ip("203.0.113.1")).is_some());
        let _proxy = counts.uncounted(ip("10.0.0.1"));
        assert_eq!(counts.open(ip("10.0.0.1")), 0);
    }

    #[test]
    fn the_budget_fits_the_descriptor_limit() {
        let budget = connection_budget(usize::MAX);
        assert!(budget >= 1);
        assert!((budget as u64) <= raise_fd_limit(), "never more connections than descriptors");
        assert_eq!(connection_budget(3), 3);
    }
}
