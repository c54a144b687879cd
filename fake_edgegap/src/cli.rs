//! Command-line configuration of the `fake-edgegap` binary.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{ChildOutput, FakeConfig, FakePort, GameServerCommand};
use crate::faults::apply_cli_fault;

/// `--help` text; documents every setting.
pub const HELP: &str = "\
fake-edgegap: a local fake of the Edgegap API (sessions, v2 deployments, status, stop,
context, self-stop) whose deployments run a local command with Edgegap's ARBITRIUM_* env.

Prints its bound address (e.g. 127.0.0.1:41234) as the first line of stdout, then
serves until SIGINT/SIGTERM, when it stops every deployment process.

USAGE: fake-edgegap [OPTIONS]

  --listen ADDR              address to bind [127.0.0.1:0]
  --api-token TOKEN          accepted API token, sent as `authorization: token TOKEN`
                             [$FAKE_EDGEGAP_API_TOKEN or fake-edgegap-token]
  --app NAME                 application name [demo]
  --version NAME             version name [v1]
  --port NAME:PORT/PROTO     a version port, repeatable [\"server port:5420/UDP\"]
  --session-kind KIND        Seat | Match | Default [Seat]
  --sockets N                seats per deployment [10]
  --no-autodeploy            sessions never start deployments
  --game-server-cmd CMD      command a deployment runs, split on whitespace
  --game-server-arg ARG      one more argument (may contain spaces), repeatable
  --child-log-dir DIR        write each process's output to DIR/<request_id>.log
                             [default: the fake's stderr]
  --public-ip IP             reported public IP [127.0.0.1]
  --fqdn-suffix SUFFIX       fqdn is <request_id>.SUFFIX [pr.edgegap.net]
  --step-delay-ms MS         each of INITIALIZING/SEEKING/SEEKED/SCANNING [50]
  --deploying-delay-ms MS    DEPLOYING -> READY [500]
  --session-link-delay-ms MS a session stays Seeking this long [200]
  --stop-grace-ms MS         SIGTERM -> SIGKILL grace [5000]
  --fault ENDPOINT:FIELD=VAL inject faults, repeatable. ENDPOINT: get_app, get_app_version,
                             create_session, get_session, delete_session, list_sessions,
                             create_deployment, deployment_status, stop_deployment,
                             list_deployments, context, self_stop. FIELD: server_error_rate, rate_limited_rate, slow_rate,
                             slow_ms, malformed_rate, timeout_rate, timeout_ms, max_faults
  --deploy-error-rate P      probability a deployment ends in Status.ERROR [0]
  --deploy-unprocessable-rate P  probability v2 deploy answers 422 [0]
  --no-rate-limits           do not enforce 40 deploys/s, 20 status/s, 10 lists/s
  -h, --help                 this text

Control endpoints (not Edgegap's): GET /_fake/inventory, GET|PUT /_fake/faults.
";

/// What the command line asks for.
#[derive(Debug)]
pub enum CliAction {
    /// Serve with this config.
    Run(Box<FakeConfig>),
    /// Print [`HELP`].
    Help,
}

/// Parses arguments (without the program name). `env_token` is
/// `$FAKE_EDGEGAP_API_TOKEN`, passed in to keep this testable.
pub fn parse(args: &[String], env_token: Option<String>) -> Result<CliAction, String> {
    let mut config = FakeConfig::default();
    if let Some(token) = env_token.filter(|t| !t.is_empty()) {
        config.api_token = token;
    }
    let mut ports: Vec<FakePort> = Vec::new();
    let mut command: Option<GameServerCommand> = None;
    let mut extra_args: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        let app = &mut config.apps[0];
        match flag.as_str() {
            "-h" | "--help" => return Ok(CliAction::Help),
            "--listen" => config.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--api-token" => config.api_token = value()?,
            "--app" => app.name = value()?,
            "--version" => app.versions[0].name = value()?,
            "--port" => ports.push(parse_port(&value()?)?),
            "--session-kind" => app.versions[0].session_kind = value()?,
            "--sockets" => app.versions[0].sockets = number(flag, &value()?)?,
            "--no-autodeploy" => app.versions[0].autodeploy = false,
            "--game-server-cmd" => {
                let raw = value()?;
                let mut parts = raw.split_whitespace();
                let program = parts.next().ok_or("--game-server-cmd is empty")?;
                let mut cmd = GameServerCommand::new(program);
                cmd.args = parts.map(str::to_owned).collect();
                command = Some(cmd);
            }
            "--game-server-arg" => extra_args.push(value()?),
            "--child-log-dir" => config.child_output = ChildOutput::Dir(PathBuf::from(value()?)),
            "--public-ip" => config.public_ip = value()?,
            "--fqdn-suffix" => config.fqdn_suffix = value()?,
            "--step-delay-ms" => config.delays.step = millis(flag, &value()?)?,
            "--deploying-delay-ms" => config.delays.deploying = millis(flag, &value()?)?,
            "--session-link-delay-ms" => config.delays.session_link = millis(flag, &value()?)?,
            "--stop-grace-ms" => config.stop_grace = millis(flag, &value()?)?,
            "--fault" => apply_cli_fault(&mut config.faults, &value()?)?,
            "--deploy-error-rate" => config.faults.deploy_error_rate = probability(flag, &value()?)?,
            "--deploy-unprocessable-rate" => config.faults.deploy_unprocessable_rate = probability(flag, &value()?)?,
            "--no-rate-limits" => config.rate_limits.clear(),
            other => return Err(format!("unknown option {other:?} (see --help)")),
        }
    }
    if !ports.is_empty() {
        config.apps[0].versions[0].ports = ports;
    }
    match (command, extra_args.is_empty()) {
        (Some(mut cmd), _) => {
            cmd.args.extend(extra_args);
            config.game_server = Some(cmd);
        }
        (None, false) => return Err("--game-server-arg needs --game-server-cmd".into()),
        (None, true) => {}
    }
    Ok(CliAction::Run(Box::new(config)))
}

fn parse_port(spec: &str) -> Result<FakePort, String> {
    let (name, rest) = spec.rsplit_once(':').ok_or_else(|| format!("--port {spec:?}: expected NAME:PORT/PROTO"))?;
    let (port, protocol) = rest.split_once('/').unwrap_or((rest, "UDP"));
    let internal = port.parse().map_err(|e| format!("--port {spec:?}: {e}"))?;
    Ok(FakePort { name: name.to_owned(), internal, protocol: protocol.to_ascii_uppercase(), tls_upgrade: false })
}

fn number(flag: &str, value: &str) -> Result<u32, String> {
    value.parse().map_err(|e| format!("{flag}: {e}"))
}

fn millis(flag: &str, value: &str) -> Result<Duration, String> {
    value.parse().map(Duration::from_millis).map_err(|e| format!("{flag}: {e}"))
}

fn probability(flag: &str, value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        Ok(p) => Err(format!("{flag}: {p} is not in 0..=1")),
        Err(e) => Err(format!("{flag}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_a_full_command_line() {
        let action = parse(
            &args(&[
                "--listen",
                "127.0.0.1:0",
                "--api-token",
                "T",
                "--game-server-cmd",
                "/bin/game --fast",
                "--game-server-arg",
                "two words",
                "--port",
                "gameport:7777/udp",
                "--sockets",
                "4",
                "--fault",
                "context:timeout_rate=1",
                "--no-rate-limits",
                "--stop-grace-ms",
                "100",
            ]),
            None,
        )
        .expect("valid");
        let CliAction::Run(config) = action else { panic!("expected run") };
        assert_eq!(config.api_token, "T");
        let cmd = config.game_server.as_ref().expect("command");
        assert_eq!(cmd.program, PathBuf::from("/bin/game"));
        assert_eq!(cmd.args, vec!["--fast", "two words"]);
        assert_eq!(config.apps[0].versions[0].ports[0].name, "gameport");
        assert_eq!(config.apps[0].versions[0].ports[0].protocol, "UDP");
        assert_eq!(config.apps[0].versions[0].sockets, 4);
        assert!(config.rate_limits.is_empty());
        assert_eq!(config.stop_grace, Duration::from_millis(100));
    }

    #[test]
    fn env_token_and_errors() {
        let CliAction::Run(config) = parse(&[], Some("from-env".into())).expect("valid") else { panic!() };
        assert_eq!(config.api_token, "from-env");
        assert!(matches!(parse(&args(&["--help"]), None), Ok(CliAction::Help)));
        assert!(parse(&args(&["--bogus"]), None).is_err());
        assert!(parse(&args(&["--listen"]), None).is_err());
        assert!(parse(&args(&["--deploy-error-rate", "2"]), None).is_err());
        assert!(parse(&args(&["--game-server-arg", "x"]), None).is_err());
    }
}
