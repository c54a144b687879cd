//! `--game-server-cmd` and `--local-public-ip`: the `local` provider's settings.

use std::net::{IpAddr, Ipv4Addr};

use clap::Args;

use super::{ConfigError, bad};

/// Game servers run as child processes of the matchmaker (provider `local`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Local provider")]
pub struct LocalArgs {
    /// Game-server command for the local provider (program and arguments, split on spaces).
    /// Default: `bevygap-demo-server` next to this executable.
    #[arg(long, env = "BEVYGAP_GAME_SERVER_CMD")]
    pub game_server_cmd: Option<String>,
    /// Host that local game servers are reachable on (put in ConnectTokens).
    #[arg(long, env = "BEVYGAP_LOCAL_PUBLIC_IP", default_value_t = LocalSettings::default().public_ip)]
    pub local_public_ip: IpAddr,
}

/// Validated settings of the `local` provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSettings {
    /// The game server's program and arguments.
    pub command: Vec<String>,
    /// The address players reach local servers on.
    pub public_ip: IpAddr,
}

impl Default for LocalSettings {
    fn default() -> Self {
        Self { command: vec![default_game_server()], public_ip: IpAddr::V4(Ipv4Addr::LOCALHOST) }
    }
}

impl LocalArgs {
    /// Splits the command; an empty one is refused.
    pub fn validate(self) -> Result<LocalSettings, ConfigError> {
        let command = match self.game_server_cmd {
            Some(cmd) => {
                let parts: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
                if parts.is_empty() {
                    return Err(bad("--game-server-cmd / BEVYGAP_GAME_SERVER_CMD", "is empty"));
                }
                parts
            }
            None => vec![default_game_server()],
        };
        Ok(LocalSettings { command, public_ip: self.local_public_ip })
    }
}

/// `bevygap-demo-server` beside the running executable (both are built into one target dir).
fn default_game_server() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("bevygap-demo-server")))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "bevygap-demo-server".into())
}
