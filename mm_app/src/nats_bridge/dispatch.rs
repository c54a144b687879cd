use bevy::prelude::*;

use super::NatsEvent;
use bevygap_shared::inbox::Inbox;

/// Re-emits everything NATS delivered as [`NatsEvent`] messages for this tick's systems.
pub fn dispatch_nats_events(mut inbox: ResMut<Inbox<NatsEvent>>, mut out: MessageWriter<NatsEvent>) {
    out.write_batch(inbox.drain());
}
