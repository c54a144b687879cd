//! The demo game on the server: an admitted player enters the game when it says who it is
//! (its `Hello` gives it an avatar: a name and a position), so everyone else meets it by name;
//! moves and chat lines arrive as messages; everyone gets the roster a few times a second and
//! every chat line. Players are the `ClientOf` entities `BevygapServerPlugin` marks
//! [`ConnectedPlayer`]: only clients the matchmaker placed here ever get one.

use std::time::Duration;

use bevy::prelude::*;
use bevygap_server_plugin::prelude::*;
use lightyear::prelude::*;

use crate::protocol::{Chat, DemoChannel, Hello, MoveTo, PlayerView, Roster, Say, clean};

/// How often everyone is sent the roster.
pub const ROSTER_EVERY: Duration = Duration::from_millis(250);

/// A player in the game, on its `ClientOf` entity.
#[derive(Component, Debug, Clone, PartialEq)]
pub struct Avatar {
    pub name: String,
    pub x: f32,
    pub y: f32,
}

/// Chat lines to send to everyone this frame.
#[derive(Resource, Debug, Default)]
pub struct Outbox(pub Vec<Chat>);

/// The game's systems on the server; add after `BevygapServerPlugin`.
pub struct DemoServerPlugin;

impl Plugin for DemoServerPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Outbox>().add_systems(
            Update,
            (announce_match, receive_hellos, receive_moves, receive_says, announce_leavers, send_chat, send_roster)
                .chain()
                .after(BevygapSystems::Lifecycle),
        );
    }
}

/// Logs the match the matchmaker formed for this server, before its players arrive.
fn announce_match(mut assigned: MessageReader<MatchAssigned>) {
    for MatchAssigned(game_match) in assigned.read() {
        let teams: Vec<String> = game_match
            .teams
            .iter()
            .map(|team| team.iter().map(|p| p.public_id.as_str()).collect::<Vec<_>>().join(" + "))
            .collect();
        info!("demo: {} {} assigned: {}", game_match.profile, game_match.match_id, teams.join(" vs "));
    }
}

/// A player's `Hello` gives it its avatar (or renames it).
fn receive_hellos(
    mut commands: Commands,
    mut players: Query<(Entity, &ConnectedPlayer, Option<&mut Avatar>, &mut MessageReceiver<Hello>)>,
    game_match: Option<Res<BevygapMatch>>,
    mut outbox: ResMut<Outbox>,
) {
    for (entity, player, mut avatar, mut hellos) in &mut players {
        for hello in hellos.receive() {
            let mut name = clean(&hello.name);
            if name.is_empty() {
                name = format!("player-{}", player.client_id);
            }
            info!("demo: client {} is {name}", player.client_id);
            match avatar.as_deref_mut() {
                Some(avatar) => avatar.name = name.clone(),
                None => {
                    commands.entity(entity).insert(Avatar { name: name.clone(), x: 0.0, y: 0.0 });
                }
            }
            // In a formed match, the matchmaker said which team each player is on.
            let text = match game_match.as_deref().and_then(|m| Some((m, m.team_of(player.client_id)?))) {
                Some((m, team)) => format!("{name} joined {} {} on team {team}", m.profile, m.match_id),
                None => format!("{name} joined"),
            };
            outbox.0.push(Chat { from: "server".into(), text });
        }
    }
}

fn receive_moves(mut players: Query<(&mut Avatar, &mut MessageReceiver<MoveTo>)>) {
    for (mut avatar, mut moves) in &mut players {
        for to in moves.receive() {
            // Only finite positions on the board; anything else is ignored.
            if to.x.is_finite() && to.y.is_finite() {
                avatar.x = to.x.clamp(-100.0, 100.0);
                avatar.y = to.y.clamp(-100.0, 100.0);
            }
        }
    }
}

fn receive_says(mut players: Query<(&Avatar, &mut MessageReceiver<Say>)>, mut outbox: ResMut<Outbox>) {
    for (avatar, mut says) in &mut players {
        for say in says.receive() {
            let text = clean(&say.text);
            if !text.is_empty() {
                outbox.0.push(Chat { from: avatar.name.clone(), text });
            }
        }
    }
}

fn announce_leavers(mut left: MessageReader<PlayerLeft>, mut outbox: ResMut<Outbox>) {
    for player in left.read() {
        outbox.0.push(Chat { from: "server".into(), text: format!("player-{} left", player.client_id) });
    }
}

fn send_chat(mut outbox: ResMut<Outbox>, mut senders: Query<&mut MessageSender<Chat>, With<ConnectedPlayer>>) {
    for chat in outbox.0.drain(..) {
        for mut sender in &mut senders {
            sender.send::<DemoChannel>(chat.clone());
        }
    }
}

fn send_roster(
    players: Query<(&ConnectedPlayer, &Avatar)>,
    mut senders: Query<&mut MessageSender<Roster>, With<ConnectedPlayer>>,
    time: Res<Time<Real>>,
    mut next: Local<Duration>,
) {
    if time.elapsed() < *next {
        return;
    }
    *next = time.elapsed() + ROSTER_EVERY;
    let roster = Roster {
        players: players
            .iter()
            .map(|(player, avatar)| PlayerView {
                client_id: player.client_id.to_string(),
                name: avatar.name.clone(),
                x: avatar.x,
                y: avatar.y,
            })
            .collect(),
    };
    for mut sender in &mut senders {
        sender.send::<DemoChannel>(roster.clone());
    }
}
