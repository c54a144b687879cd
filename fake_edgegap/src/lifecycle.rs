//! The lifecycle driver: one long-lived thread that advances deployments
//! through Edgegap's states, starts and stops their processes, links
//! sessions to deployments, and fires webhooks.
//!
//! All process spawning and signalling happens here (see `process` for why
//! the spawning thread must outlive its children).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::FakeVersion;
use crate::format;
use crate::process::{GameProcess, describe_exit};
use crate::server::Shared;
use crate::state::{DeployState, DeployWebhooks, DeploymentRec, SessionState, World};
use crate::views;

/// What a new deployment is made of.
#[derive(Debug, Default)]
pub(crate) struct DeploymentSpec {
    pub app: String,
    pub version: String,
    pub env: Vec<(String, String)>,
    pub tags: Vec<String>,
    pub webhooks: DeployWebhooks,
    /// Start in ERROR with this detail (v2 422 "could not allocate").
    pub fail_now: Option<String>,
}

/// Creates a deployment in INITIALIZING (or ERROR) and returns its id.
pub(crate) fn create_deployment(shared: &Shared, world: &mut World, spec: DeploymentSpec) -> String {
    let mut request_id = format::request_id();
    while world.deployments.contains_key(&request_id) {
        request_id = format::request_id();
    }
    let version = find_version(shared, &spec.app, &spec.version);
    let declared = version.map(|v| v.ports.clone()).unwrap_or_default();
    let sockets = version.map_or(1, |v| v.sockets);
    let (ports, mut fail_now) = match crate::ports::allocate(world, &declared) {
        Ok(ports) => (ports, spec.fail_now),
        Err(err) => (Vec::new(), Some(format!("Could not allocate ports: {err}"))),
    };
    let now = Instant::now();
    let will_fail = shared.faults().deployment_should_fail();
    let mut dep = DeploymentRec {
        request_id: request_id.clone(),
        app: spec.app,
        version: spec.version,
        created: now,
        start_time: format::timestamp_now(),
        state: DeployState::Initializing,
        last_state: None,
        state_since: now,
        error_detail: None,
        ports,
        tags: spec.tags,
        sockets,
        stop_requested: false,
        stopping_since: None,
        removal_time: None,
        context_token: format::token(),
        security_number: format::small_number(),
        delete_token: format::token(),
        access_point_id: format::small_number(),
        env: spec.env,
        webhooks: spec.webhooks,
        will_fail,
        process: None,
        exit: None,
    };
    if let Some(detail) = fail_now.take() {
        set_state(&mut dep, DeployState::Error, now);
        dep.error_detail = Some(detail);
    }
    world.deployments.insert(request_id.clone(), dep);
    request_id
}

fn find_version<'a>(shared: &'a Shared, app: &str, version: &str) -> Option<&'a FakeVersion> {
    shared.config.apps.iter().find(|a| a.name == app)?.versions.iter().find(|v| v.name == version)
}

/// Runs until shutdown, then stops every process.
pub(crate) fn run(shared: &Shared) {
    while !shared.is_shutting_down() {
        tick(shared);
        std::thread::sleep(shared.config.tick);
    }
    shutdown_all(shared);
}

fn tick(shared: &Shared) {
    let now = Instant::now();
    let mut outgoing: Vec<(String, Value)> = Vec::new();
    {
        let mut world = shared.world();
        let ids: Vec<String> = world.deployments.keys().cloned().collect();
        for id in ids {
            let entered = match world.deployments.get_mut(&id) {
                Some(dep) => advance(shared, dep, now),
                None => None,
            };
            if let (Some(state), Some(dep)) = (entered, world.deployments.get(&id)) {
                let url = match state {
                    DeployState::Ready => dep.webhooks.on_ready.clone(),
                    DeployState::Error => dep.webhooks.on_error.clone(),
                    DeployState::Terminated => dep.webhooks.on_terminated.clone(),
                    _ => None,
                };
                if let Some(url) = url {
                    outgoing.push((url, views::status(&shared.config, &world, dep)));
                }
            }
        }
        link_sessions(shared, &mut world, now);
        collect_session_webhooks(&mut world, &mut outgoing);
    }
    for (url, body) in outgoing {
        crate::webhook::fire(url, body);
    }
}

fn set_state(dep: &mut DeploymentRec, state: DeployState, now: Instant) {
    dep.last_state = Some(dep.state);
    dep.state = state;
    dep.state_since = now;
    if state == DeployState::Terminated {
        dep.removal_time = Some(format::timestamp_now());
    }
}

/// Advances one deployment; returns the state it entered, if any.
fn advance(shared: &Shared, dep: &mut DeploymentRec, now: Instant) -> Option<DeployState> {
    let before = dep.state;
    reap(dep, now);
    if dep.state == before {
        step(shared, dep, now);
    }
    if dep.stop_requested && dep.state.stoppable_now() {
        carry_out_stop(shared, dep, now);
    }
    (dep.state != before).then_some(dep.state)
}

/// Notices a process that exited. A clean exit (code 0) or one after READY
/// or a stop request is TERMINATED; a crash while deploying is ERROR.
fn reap(dep: &mut DeploymentRec, now: Instant) {
    let Some(status) = dep.process.as_mut().and_then(GameProcess::try_exit) else {
        return;
    };
    let how = describe_exit(status);
    dep.process = None;
    match dep.state {
        DeployState::Terminated | DeployState::Error => {}
        DeployState::Deploying if !status.success() && !dep.stop_requested => {
            set_state(dep, DeployState::Error, now);
            dep.error_detail = Some(format!("Container {how} during deployment"));
        }
        _ => set_state(dep, DeployState::Terminated, now),
    }
    dep.exit = Some(how);
}

fn step(shared: &Shared, dep: &mut DeploymentRec, now: Instant) {
    let delays = &shared.config.delays;
    let since = now.duration_since(dep.state_since);
    match dep.state.next_step() {
        Some(DeployState::Deploying) if since >= delays.step => {
            if dep.will_fail {
                set_state(dep, DeployState::Error, now);
                dep.error_detail = Some("Pull image timeout exceeded (injected fault)".into());
                return;
            }
            set_state(dep, DeployState::Deploying, now);
            start_process(shared, dep, now);
        }
        Some(next) if since >= delays.step => set_state(dep, next, now),
        Some(_) => {}
        None if dep.state == DeployState::Deploying && since >= delays.deploying => {
            set_state(dep, DeployState::Ready, now);
        }
        None => {}
    }
}

fn start_process(shared: &Shared, dep: &mut DeploymentRec, now: Instant) {
    let Some(command) = &shared.config.game_server else {
        return;
    };
    let env = crate::env::deployment_env(shared, dep, find_version(shared, &dep.app, &dep.version));
    match GameProcess::spawn(command, &env, &shared.config.child_output, &dep.request_id) {
        Ok(process) => {
            tracing::info!(request_id = dep.request_id, pid = process.pid(), "deployment process started");
            dep.process = Some(process);
        }
        Err(err) => {
            set_state(dep, DeployState::Error, now);
            dep.error_detail = Some(format!("Could not start {}: {err}", command.program.display()));
        }
    }
}

/// SIGTERM, then SIGKILL after the grace; without a process, TERMINATED at once.
fn carry_out_stop(shared: &Shared, dep: &mut DeploymentRec, now: Instant) {
    dep.stopping_since.get_or_insert(now);
    let Some(process) = dep.process.as_mut() else {
        set_state(dep, DeployState::Terminated, now);
        return;
    };
    match process.term_sent {
        None => process.terminate(),
        Some(sent) if !process.kill_sent && now.duration_since(sent) >= shared.config.stop_grace => process.kill(),
        Some(_) => {}
    }
}

/// Links `Seeking` sessions whose link delay has passed.
fn link_sessions(shared: &Shared, world: &mut World, now: Instant) {
    let mut waiting: Vec<(u64, String)> = world
        .sessions
        .values()
        .filter(|s| s.deployment.is_none() && s.unlinked_state == SessionState::Seeking)
        .filter(|s| now.duration_since(s.created) >= shared.config.delays.session_link)
        .map(|s| (s.seq, s.session_id.clone()))
        .collect();
    waiting.sort();
    for (_, id) in waiting {
        let Some(session) = world.sessions.get(&id) else {
            continue;
        };
        let (app, version, kind, seats) =
            (session.app.clone(), session.version.clone(), session.kind.clone(), session.users.len());
        let requested = session.requested_deployment.clone();
        let seats = u32::try_from(seats).unwrap_or(u32::MAX);
        let config = find_version(shared, &app, &version);
        let autodeploy = config.is_some_and(|v| v.autodeploy);
        let capacity = config.map_or(0, |v| v.sockets);
        let target = if let Some(requested) = requested {
            world.deployments.get(&requested).filter(|d| d.state != DeployState::Terminated).map(|_| requested)
        } else if kind == "Seat" {
            world.deployment_with_free_seats(&app, &version, seats).or_else(|| {
                (autodeploy && seats <= capacity).then(|| {
                    let spec = DeploymentSpec { app: app.clone(), version: version.clone(), ..Default::default() };
                    create_deployment(shared, world, spec)
                })
            })
        } else {
            autodeploy.then(|| {
                let spec = DeploymentSpec { app: app.clone(), version: version.clone(), ..Default::default() };
                create_deployment(shared, world, spec)
            })
        };
        if let Some(session) = world.sessions.get_mut(&id) {
            match target {
                Some(dep) => session.deployment = Some(dep),
                None => session.unlinked_state = SessionState::Unprocessable,
            }
        }
    }
}

/// Session webhooks fire once, when the session is Ready, Unprocessable or Error.
fn collect_session_webhooks(world: &mut World, outgoing: &mut Vec<(String, Value)>) {
    let due: Vec<String> = world
        .sessions
        .values()
        .filter(|s| s.webhook_url.is_some() && !s.webhook_sent)
        .filter(|s| matches!(views::session_flags(world, s).0, "Ready" | "Unprocessable" | "Error"))
        .map(|s| s.session_id.clone())
        .collect();
    for id in due {
        let body = match world.sessions.get(&id) {
            Some(s) => views::session_context(world, s),
            None => continue,
        };
        if let Some(session) = world.sessions.get_mut(&id) {
            session.webhook_sent = true;
            if let Some(url) = session.webhook_url.clone() {
                outgoing.push((url, body));
            }
        }
    }
}

/// On shutdown: SIGTERM every process, wait up to the grace, SIGKILL the
/// rest, reap all. Nothing the fake started outlives it.
fn shutdown_all(shared: &Shared) {
    let mut world = shared.world();
    let now = Instant::now();
    for dep in world.deployments.values_mut() {
        if let Some(process) = dep.process.as_mut() {
            process.terminate();
        }
    }
    let deadline = now + shared.config.stop_grace;
    while Instant::now() < deadline && world.deployments.values_mut().any(still_running) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for dep in world.deployments.values_mut() {
        if let Some(mut process) = dep.process.take() {
            if process.try_exit().is_none() {
                process.kill();
            }
            dep.exit = process.wait().map(describe_exit);
        }
        if dep.state != DeployState::Terminated {
            set_state(dep, DeployState::Terminated, Instant::now());
        }
    }
}

fn still_running(dep: &mut DeploymentRec) -> bool {
    match dep.process.as_mut() {
        Some(process) => match process.try_exit() {
            Some(status) => {
                dep.exit = Some(describe_exit(status));
                dep.process = None;
                false
            }
            None => true,
        },
        None => false,
    }
}
