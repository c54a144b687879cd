//! The demo in a window, for people (feature `window`, `bevygap-demo-client --window`): the
//! board with every player as a circle and a name (yours in green), steered with the arrow
//! keys or WASD, and the join's steps and the chat in the corner. The game logic is the same
//! [`DemoClientPlugin`](crate::client::DemoClientPlugin) the headless client runs.

use std::time::Duration;

use bevy::prelude::*;
use lightyear::prelude::*;

use crate::client::{Journal, Playing};
use crate::protocol::{DemoChannel, MoveTo};

/// Pixels per board unit (the board is 200 × 200 units).
const SCALE: f32 = 3.0;
/// Board units per second when a key is held.
const SPEED: f32 = 40.0;
/// How often a changed position is sent.
const SEND_EVERY: Duration = Duration::from_millis(100);

/// Draws the board, the players and the journal, and steers with the keyboard.
pub struct DemoWindowPlugin;

impl Plugin for DemoWindowPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Steering>()
            .add_systems(Startup, setup)
            .add_systems(Update, (steer, draw_board, label_players, show_journal));
    }
}

/// Where the player steered to, and when it was last sent.
#[derive(Resource, Debug, Default)]
struct Steering {
    at: Vec2,
    sent: Option<Vec2>,
    next_send: Duration,
}

#[derive(Component)]
struct JournalText;

/// The name over a player's circle, by client id.
#[derive(Component)]
struct NameLabel(String);

fn setup(mut commands: Commands) {
    commands.spawn(Camera2d);
    commands.spawn((
        JournalText,
        Text::new("Asking the matchmaker…"),
        TextFont { font_size: FontSize::Px(15.0), ..default() },
        Node { position_type: PositionType::Absolute, left: Val::Px(12.0), top: Val::Px(12.0), ..default() },
    ));
}

fn steer(
    keys: Res<ButtonInput<KeyCode>>,
    time: Res<Time<Real>>,
    playing: Res<Playing>,
    mut steering: ResMut<Steering>,
    mut clients: Query<&mut MessageSender<MoveTo>, With<Connected>>,
) {
    let Some((entity, _)) = playing.since else { return };
    let held = |keys_for: [KeyCode; 2]| keys_for.iter().any(|k| keys.pressed(*k));
    let direction = Vec2::new(
        f32::from(u8::from(held([KeyCode::ArrowRight, KeyCode::KeyD])))
            - f32::from(u8::from(held([KeyCode::ArrowLeft, KeyCode::KeyA]))),
        f32::from(u8::from(held([KeyCode::ArrowUp, KeyCode::KeyW])))
            - f32::from(u8::from(held([KeyCode::ArrowDown, KeyCode::KeyS]))),
    );
    let step = direction.normalize_or_zero() * SPEED * time.delta_secs();
    steering.at = (steering.at + step).clamp(Vec2::splat(-100.0), Vec2::splat(100.0));
    if time.elapsed() < steering.next_send || steering.sent == Some(steering.at) {
        return;
    }
    let Ok(mut sender) = clients.get_mut(entity) else { return };
    sender.send::<DemoChannel>(MoveTo { x: steering.at.x, y: steering.at.y });
    steering.sent = Some(steering.at);
    steering.next_send = time.elapsed() + SEND_EVERY;
}

fn draw_board(playing: Res<Playing>, mut gizmos: Gizmos) {
    gizmos.rect_2d(Isometry2d::IDENTITY, Vec2::splat(200.0 * SCALE), Color::srgb(0.35, 0.38, 0.45));
    for player in &playing.roster {
        let mine = playing.me.as_deref() == Some(player.client_id.as_str());
        let color = if mine { Color::srgb(0.3, 0.85, 0.4) } else { Color::srgb(0.95, 0.6, 0.2) };
        gizmos.circle_2d(Isometry2d::from_translation(Vec2::new(player.x, player.y) * SCALE), 12.0, color);
    }
}

fn label_players(
    mut commands: Commands,
    playing: Res<Playing>,
    mut labels: Query<(Entity, &NameLabel, &mut Transform)>,
) {
    for (entity, label, mut transform) in &mut labels {
        match playing.roster.iter().find(|p| p.client_id == label.0) {
            Some(p) => transform.translation = (Vec2::new(p.x, p.y) * SCALE + Vec2::new(0.0, 24.0)).extend(1.0),
            None => commands.entity(entity).despawn(),
        }
    }
    for player in &playing.roster {
        if !labels.iter().any(|(_, label, _)| label.0 == player.client_id) {
            commands.spawn((
                NameLabel(player.client_id.clone()),
                Text2d::new(player.name.clone()),
                TextFont { font_size: FontSize::Px(14.0), ..default() },
                Transform::from_translation((Vec2::new(player.x, player.y) * SCALE + Vec2::new(0.0, 24.0)).extend(1.0)),
            ));
        }
    }
}

fn show_journal(journal: Res<Journal>, mut text: Query<&mut Text, With<JournalText>>) {
    if !journal.is_changed() {
        return;
    }
    for mut text in &mut text {
        let lines: Vec<&str> = journal.lines.iter().map(String::as_str).collect();
        text.0 = format!("{} - arrow keys or WASD to move\n\n{}", journal.name, lines.join("\n"));
    }
}
