//! The demo game on the client: once `BevygapClientPlugin` has connected, say who we are,
//! wander on a circle, greet every player we meet, and leave after a while. Every step is
//! printed on stdout as one line starting with `[<name>]` (what `scripts/demo` shows and the
//! demo test reads).

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use bevy::prelude::*;
use bevygap_client_plugin::prelude::*;
use lightyear::prelude::*;

use crate::protocol::{Chat, DemoChannel, Hello, MoveTo, PlayerView, Roster, Say};

/// How the headless client plays.
#[derive(Resource, Debug, Clone)]
pub struct DemoClientPlugin {
    /// The name other players see.
    pub name: String,
    /// How long to play once everyone expected was met.
    pub play_for: Duration,
    /// How many other players to wait for before the clock of `play_for` starts.
    pub expect_others: usize,
    /// The longest wait for them; the client then leaves and exits with code 1.
    pub meet_within: Duration,
    /// Walk a circle by itself (headless); off when a player steers (the window).
    pub wander: bool,
    /// End the app when the game is over or the join failed (the terminal client); a window
    /// or a page stays open and shows why.
    pub exit_when_done: bool,
}

impl Plugin for DemoClientPlugin {
    fn build(&self, app: &mut App) {
        let wandering = self.wander;
        app.insert_resource(self.clone())
            .insert_resource(Journal { name: self.name.clone(), ..default() })
            .init_resource::<Playing>()
            .add_systems(
                Update,
                (
                    report_progress,
                    report_match,
                    report_failure,
                    start_playing,
                    introduce,
                    wander.run_if(move || wandering),
                    read_roster,
                    read_chat,
                    leave,
                )
                    .chain()
                    .after(BevygapClientSystems),
            );
    }
}

/// Where this client is in its game.
#[derive(Resource, Debug, Default)]
pub struct Playing {
    /// The Lightyear client entity and when it connected (app time).
    pub since: Option<(Entity, Duration)>,
    /// Our netcode client id, once known.
    pub me: Option<String>,
    /// Client ids of the other players met.
    pub met: BTreeSet<String>,
    /// Chat lines heard from other players.
    pub heard: usize,
    /// When everyone expected had been met.
    pub all_met_at: Option<Duration>,
    /// When we asked to disconnect.
    pub left_at: Option<Duration>,
    /// Everyone on the server, as last sent.
    pub roster: Vec<PlayerView>,
}

/// What the client has told its player: every line is printed on stdout as `[<name>] line`,
/// and the last few are kept for the window to show.
#[derive(Resource, Debug, Default)]
pub struct Journal {
    pub name: String,
    pub lines: VecDeque<String>,
}

impl Journal {
    /// Lines the window shows.
    pub const KEPT: usize = 12;

    pub fn say(&mut self, line: impl std::fmt::Display) {
        let line = line.to_string();
        println!("[{}] {line}", self.name);
        if self.lines.len() == Self::KEPT {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

fn report_progress(mut progress: MessageReader<BevygapProgress>, mut journal: ResMut<Journal>) {
    for step in progress.read() {
        journal.say(format_args!("{:?}: {}", step.state, step.text));
    }
}

fn report_match(mut found: MessageReader<BevygapMatchFound>, mut journal: ResMut<Journal>) {
    for found in found.read() {
        let mates = if found.teammates.is_empty() { "alone".to_string() } else { found.teammates.join(", ") };
        journal.say(format_args!("matched into {} on team {} ({mates})", found.match_id, found.team));
    }
}

fn report_failure(
    mut failed: MessageReader<BevygapFailed>,
    config: Res<DemoClientPlugin>,
    mut journal: ResMut<Journal>,
    mut exit: MessageWriter<AppExit>,
) {
    for failure in failed.read() {
        journal.say(format_args!("could not play: {} ({})", failure.message, failure.code));
        if config.exit_when_done {
            exit.write(AppExit::from_code(1));
        }
    }
}

fn start_playing(
    mut connected: MessageReader<BevygapConnected>,
    mut playing: ResMut<Playing>,
    mut journal: ResMut<Journal>,
    time: Res<Time<Real>>,
) {
    for c in connected.read() {
        journal.say(format_args!("playing on {} over {:?} (session {})", c.server, c.transport, c.session_id));
        playing.since = Some((c.client, time.elapsed()));
    }
}

fn introduce(
    mut playing: ResMut<Playing>,
    mut clients: Query<(&LocalId, &mut MessageSender<Hello>), With<Connected>>,
    config: Res<DemoClientPlugin>,
    mut journal: ResMut<Journal>,
) {
    let Some((entity, _)) = playing.since else { return };
    if playing.me.is_some() {
        return;
    }
    let Ok((local, mut hello)) = clients.get_mut(entity) else { return };
    let me = match local.0 {
        PeerId::Netcode(id) => id.to_string(),
        other => format!("{other:?}"),
    };
    journal.say(format_args!("I am client {me}"));
    hello.send::<DemoChannel>(Hello { name: config.name.clone() });
    playing.me = Some(me);
}

/// Walks a circle, one step every 200 ms.
fn wander(
    playing: Res<Playing>,
    mut clients: Query<&mut MessageSender<MoveTo>, With<Connected>>,
    time: Res<Time<Real>>,
    mut next: Local<Duration>,
) {
    let Some((entity, since)) = playing.since else { return };
    if time.elapsed() < *next || playing.left_at.is_some() {
        return;
    }
    *next = time.elapsed() + Duration::from_millis(200);
    let Ok(mut sender) = clients.get_mut(entity) else { return };
    let angle = (time.elapsed() - since).as_secs_f32();
    sender.send::<DemoChannel>(MoveTo { x: 10.0 * angle.cos(), y: 10.0 * angle.sin() });
}

fn read_roster(
    mut playing: ResMut<Playing>,
    mut clients: Query<(&mut MessageReceiver<Roster>, &mut MessageSender<Say>)>,
    config: Res<DemoClientPlugin>,
    mut journal: ResMut<Journal>,
    time: Res<Time<Real>>,
) {
    let Some((entity, _)) = playing.since else { return };
    let Ok((mut rosters, mut sender)) = clients.get_mut(entity) else { return };
    let rosters: Vec<Roster> = rosters.receive().collect();
    let Some(me) = playing.me.clone() else { return };
    for roster in rosters {
        playing.roster = roster.players.clone();
        for other in roster.players.iter().filter(|p| p.client_id != me) {
            if playing.met.insert(other.client_id.clone()) {
                journal.say(format_args!(
                    "meets {} (client {}) at ({:.1}, {:.1})",
                    other.name, other.client_id, other.x, other.y
                ));
                sender.send::<DemoChannel>(Say { text: format!("hi {}, I am {}!", other.name, config.name) });
            }
        }
    }
    if playing.all_met_at.is_none() && playing.met.len() >= config.expect_others {
        playing.all_met_at = Some(time.elapsed());
    }
}

fn read_chat(
    mut playing: ResMut<Playing>,
    mut clients: Query<&mut MessageReceiver<Chat>>,
    config: Res<DemoClientPlugin>,
    mut journal: ResMut<Journal>,
) {
    let Some((entity, _)) = playing.since else { return };
    let Ok(mut chat) = clients.get_mut(entity) else { return };
    for line in chat.receive() {
        if line.from == config.name {
            journal.say(format_args!("(said: {})", line.text));
            continue;
        }
        if line.from != "server" {
            playing.heard += 1;
        }
        journal.say(format_args!("{} says: {}", line.from, line.text));
    }
}

/// Leaves `play_for` after everyone expected was met (or when they never came), then exits
/// once the disconnect has had a moment to reach the server.
fn leave(
    mut commands: Commands,
    mut playing: ResMut<Playing>,
    config: Res<DemoClientPlugin>,
    mut journal: ResMut<Journal>,
    time: Res<Time<Real>>,
    mut exit: MessageWriter<AppExit>,
) {
    let Some((entity, since)) = playing.since else { return };
    let now = time.elapsed();
    if let Some(left_at) = playing.left_at {
        if now > left_at + Duration::from_millis(300) {
            let ok = playing.met.len() >= config.expect_others;
            if config.exit_when_done {
                exit.write(if ok { AppExit::Success } else { AppExit::from_code(1) });
            }
        }
        return;
    }
    let done = match playing.all_met_at {
        Some(at) => now > at + config.play_for,
        None => now > since + config.meet_within,
    };
    if done {
        journal.say(format_args!("leaves: met {} player(s), heard {} chat line(s)", playing.met.len(), playing.heard));
        commands.trigger(Disconnect { entity });
        playing.left_at = Some(now);
    }
}
