//! Test harnesses a game (and Bevygap itself) can use: [`LocalMatchmaker`] runs the complete
//! matchmaker with real NATS and real processes; [`SteppedMatchmaker`] steps the matchmaker's
//! plugins by hand with manual time, no nats-server and no processes.

mod local;
mod stepped;

pub use local::{HarnessError, LocalMatchmaker};
pub use stepped::SteppedMatchmaker;
