//! What the demo's client and server say to each other. Both sides add [`DemoProtocolPlugin`]
//! after Lightyear's client or server plugins, so the registrations match.

use bevy::prelude::*;
use lightyear::prelude::*;
use serde::{Deserialize, Serialize};

/// The longest name and chat line the server keeps (longer ones are cut, never refused).
pub const MAX_TEXT: usize = 120;

/// The one channel: ordered and reliable (a chat line or a roster is never lost or reordered).
pub struct DemoChannel;

/// Client → server, once connected: the name to show.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Hello {
    pub name: String,
}

/// Client → server: where the player is now.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct MoveTo {
    pub x: f32,
    pub y: f32,
}

/// Client → server: a chat line for everyone on the server.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Say {
    pub text: String,
}

/// One player as everyone sees them.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PlayerView {
    /// The netcode client id, as a string like every id the game shows.
    pub client_id: String,
    pub name: String,
    pub x: f32,
    pub y: f32,
}

/// Server → client, a few times a second: everyone on the server.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Roster {
    pub players: Vec<PlayerView>,
}

/// Server → client: a chat line (or the server's own announcement, from `server`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Chat {
    pub from: String,
    pub text: String,
}

/// Registers the channel and the messages with their directions.
pub struct DemoProtocolPlugin;

impl Plugin for DemoProtocolPlugin {
    fn build(&self, app: &mut App) {
        app.add_channel::<DemoChannel>(ChannelSettings {
            mode: ChannelMode::OrderedReliable(ReliableSettings::default()),
            ..default()
        })
        .add_direction(NetworkDirection::Bidirectional);
        app.register_message::<Hello>().add_direction(NetworkDirection::ClientToServer);
        app.register_message::<MoveTo>().add_direction(NetworkDirection::ClientToServer);
        app.register_message::<Say>().add_direction(NetworkDirection::ClientToServer);
        app.register_message::<Roster>().add_direction(NetworkDirection::ServerToClient);
        app.register_message::<Chat>().add_direction(NetworkDirection::ServerToClient);
    }
}

/// `text` cut to [`MAX_TEXT`] characters, control characters dropped (what a server keeps of
/// what a client sent).
pub fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(MAX_TEXT).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_a_client_is_cut_and_stripped_of_control_characters() {
        assert_eq!(clean("hi\u{7}\nthere"), "hithere");
        assert_eq!(clean(&"é".repeat(500)).chars().count(), MAX_TEXT);
    }
}
