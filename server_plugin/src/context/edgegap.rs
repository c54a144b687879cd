//! Context of a server running inside an Edgegap deployment, from the `ARBITRIUM_*`
//! environment Edgegap injects (parsed by [`bevygap_edgegap::ArbitriumEnv`]).
//!
//! | variable | meaning |
//! |---|---|
//! | `ARBITRIUM_*` | injected by Edgegap: request id, public IP, ports mapping, location, context and self-stop URLs |
//! | `BEVYGAP_UDP_PORT_NAME` | app-version port name that serves UDP (default `udp`; if no port has that name and the mapping has exactly one port, that one) |
//! | `BEVYGAP_WT_PORT_NAME` | app-version port name that serves WebTransport (default `webtransport`; optional) |
//! | `BEVYGAP_NAMESPACE`, `BEVYGAP_GAME`, `BEVYGAP_VERSION`, `BEVYGAP_CAPACITY` | set in the app version's env, as for every provider |
//!
//! The server binds `0.0.0.0:<internal>` and advertises `<ARBITRIUM_PUBLIC_IP>:<external>`.
//! Its id is the one the matchmaker's `edgegap` provider assigned to this deployment
//! (`BEVYGAP_SERVER_ID`, honoured only when the deployment's tags carry the same id, which no
//! app-version-wide setting can do), else `edgegap-<request_id>`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bevy::prelude::*;
use bevy_tokio_tasks::TokioTasksRuntime;
use bevygap_edgegap::{
    ArbitriumEnv, ArbitriumPort, ContextClient, Deployment, DeploymentLocation, EdgegapError, REQUIRED_VARS,
};
use bevygap_shared::env::EnvSource;
use bevygap_shared::inbox::{Inbox, add_inbox};
use bevygap_shared::server_env::ServerEnv;

use super::{ContextError, Layered, ServerContext, ServerOrigin};

/// Optional `ARBITRIUM_*` variables read besides [`REQUIRED_VARS`].
const OPTIONAL_VARS: [&str; 2] = ["ARBITRIUM_HOST_ID", "ARBITRIUM_DEPLOYMENT_TAGS"];

/// Details of the Edgegap deployment this server runs in.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgegapDeployment {
    /// Edgegap's deployment id (`ARBITRIUM_REQUEST_ID`).
    pub request_id: String,
    /// The host's public IP.
    pub public_ip: IpAddr,
    /// Where the deployment runs.
    pub location: DeploymentLocation,
    /// The parsed environment, including the context and self-stop URLs (tokens redacted in
    /// `Debug`).
    pub arbitrium: ArbitriumEnv,
}

impl EdgegapDeployment {
    /// A client for this deployment's context and self-stop endpoints (blocking calls: use it
    /// off the main thread).
    pub fn context_client(&self) -> ContextClient {
        ContextClient::from_arbitrium(&self.arbitrium)
    }
}

/// Which app-version ports serve which transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgegapPortNames {
    /// Port name for UDP; `None` means the default rule (see the module docs).
    pub udp: Option<String>,
    /// Port name for WebTransport; `None` means `webtransport` if present.
    pub webtransport: Option<String>,
}

impl EdgegapPortNames {
    /// Default UDP port name.
    pub const DEFAULT_UDP: &'static str = "udp";
    /// Default WebTransport port name.
    pub const DEFAULT_WEBTRANSPORT: &'static str = "webtransport";

    /// Reads `BEVYGAP_UDP_PORT_NAME` and `BEVYGAP_WT_PORT_NAME`.
    pub fn from_source(env: &dyn EnvSource) -> Self {
        Self { udp: env.var("BEVYGAP_UDP_PORT_NAME"), webtransport: env.var("BEVYGAP_WT_PORT_NAME") }
    }

    /// Picks the UDP and WebTransport ports out of the mapping.
    pub fn select<'a>(
        &self,
        env: &'a ArbitriumEnv,
    ) -> Result<(Option<&'a ArbitriumPort>, Option<&'a ArbitriumPort>), PortsError> {
        let available = || env.ports.keys().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ");
        let named = |name: &str| {
            env.port(name).ok_or_else(|| PortsError::NoSuchPort { name: name.to_string(), available: available() })
        };
        let webtransport = match &self.webtransport {
            Some(name) => Some(named(name)?),
            None => env.port(Self::DEFAULT_WEBTRANSPORT),
        };
        let udp = match &self.udp {
            Some(name) => Some(named(name)?),
            None => env.port(Self::DEFAULT_UDP).or_else(|| match (env.ports.len(), webtransport) {
                (1, None) => env.ports.values().next(),
                _ => None,
            }),
        };
        if udp.is_none() && webtransport.is_none() {
            return Err(PortsError::Ambiguous { available: available() });
        }
        for port in [udp, webtransport].into_iter().flatten() {
            if !port.protocol.eq_ignore_ascii_case("UDP") {
                return Err(PortsError::NotUdp { name: port.name.clone(), protocol: port.protocol.clone() });
            }
        }
        Ok((udp, webtransport))
    }
}

/// The Edgegap port mapping has no usable port for any transport this server serves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortsError {
    /// `BEVYGAP_UDP_PORT_NAME` or `BEVYGAP_WT_PORT_NAME` names a port the deployment lacks.
    #[error("no port named {name:?} (the deployment has {available})")]
    NoSuchPort {
        /// The name that was asked for.
        name: String,
        /// The port names the mapping has, quoted and comma-separated.
        available: String,
    },
    /// No port is named for a transport and the default rule does not pick one.
    #[error(
        "cannot tell which port serves which transport among {available}: set BEVYGAP_UDP_PORT_NAME and/or \
         BEVYGAP_WT_PORT_NAME to the app version's port names"
    )]
    Ambiguous {
        /// The port names the mapping has, quoted and comma-separated.
        available: String,
    },
    /// The chosen port is not UDP.
    #[error("port {name:?} is {protocol}; UDP and WebTransport (QUIC) both need a UDP port")]
    NotUdp {
        /// The port's name.
        name: String,
        /// Its protocol as Edgegap lists it (`TCP`, `HTTP`…).
        protocol: String,
    },
}

/// Resolves the context of an Edgegap deployment.
pub fn resolve(env: &dyn EnvSource) -> Result<ServerContext, ContextError> {
    let vars = REQUIRED_VARS.iter().chain(OPTIONAL_VARS.iter()).filter_map(|name| env.var(name).map(|v| (*name, v)));
    let arbitrium = ArbitriumEnv::from_vars(vars)?;
    let (udp, webtransport) = EdgegapPortNames::from_source(env).select(&arbitrium)?;

    let bind = |p: &ArbitriumPort| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), p.internal).to_string();
    let public = |p: &ArbitriumPort| SocketAddr::new(arbitrium.public_ip, p.external).to_string();
    let server_id = assigned_server_id(env, &arbitrium).unwrap_or_else(|| format!("edgegap-{}", arbitrium.request_id));
    let mut overrides: HashMap<&'static str, String> =
        HashMap::from([("BEVYGAP_SERVER_ID", server_id), ("BEVYGAP_PROVIDER", "edgegap".to_string())]);
    if let Some(p) = udp {
        overrides.insert("BEVYGAP_UDP_BIND", bind(p));
        overrides.insert("BEVYGAP_UDP_PUBLIC", public(p));
    }
    if let Some(p) = webtransport {
        overrides.insert("BEVYGAP_WT_BIND", bind(p));
        overrides.insert("BEVYGAP_WT_PUBLIC", public(p));
    }
    // Transports come only from the mapping: a stray BEVYGAP_*_BIND must not add a socket that
    // Edgegap does not route.
    let mut hidden = Vec::new();
    if udp.is_none() {
        hidden.extend(["BEVYGAP_UDP_BIND", "BEVYGAP_UDP_PUBLIC"]);
    }
    if webtransport.is_none() {
        hidden.extend(["BEVYGAP_WT_BIND", "BEVYGAP_WT_PUBLIC"]);
    }
    let server_env = ServerEnv::from_source(&Hiding {
        layered: Layered { inner: env, overrides, defaults: HashMap::new() },
        hidden,
    })?;
    let deployment = EdgegapDeployment {
        request_id: arbitrium.request_id.clone(),
        public_ip: arbitrium.public_ip,
        location: arbitrium.location.clone(),
        arbitrium,
    };
    Ok(ServerContext::from_server_env(server_env, ServerOrigin::Edgegap(Box::new(deployment))))
}

/// The id the matchmaker gave this deployment when it created it: `BEVYGAP_SERVER_ID`, if the
/// deployment is also tagged with it (the `edgegap` provider sets both per deployment). An id
/// set anywhere else, such as the app version's env that every deployment shares, is ignored
/// so two servers can never claim one id.
fn assigned_server_id(env: &dyn EnvSource, arbitrium: &ArbitriumEnv) -> Option<String> {
    let id = env.var("BEVYGAP_SERVER_ID")?;
    arbitrium.tags.contains(&id).then_some(id)
}

/// The deployment as Edgegap's context endpoint describes it (FQDN, seats, status), fetched
/// once in the background at startup. Informational: the server never waits for it.
#[derive(Resource, Debug, Clone, PartialEq)]
pub struct EdgegapContext(pub Deployment);

/// How the background fetch of the context ended, delivered through an [`Inbox`].
enum ContextFetched {
    /// Edgegap answered (or the call failed). Boxed: a deployment is large.
    Answer(Result<Box<Deployment>, EdgegapError>),
    /// The blocking call never returned an answer (it panicked).
    Lost,
}

/// Fetches [`EdgegapContext`] when running on Edgegap.
pub struct EdgegapContextPlugin;

impl Plugin for EdgegapContextPlugin {
    fn build(&self, app: &mut App) {
        add_inbox::<ContextFetched>(app);
        app.add_systems(Startup, fetch_context)
            .add_systems(Update, receive_context.in_set(crate::api::BevygapSystems::Receive));
    }
}

fn fetch_context(ctx: Res<ServerContext>, inbox: Res<Inbox<ContextFetched>>, runtime: Option<Res<TokioTasksRuntime>>) {
    let (Some(deployment), Some(runtime)) = (ctx.edgegap(), runtime) else { return };
    let client = deployment.context_client();
    let fetched = inbox.sender();
    runtime.runtime().spawn(async move {
        let outcome = match tokio::task::spawn_blocking(move || client.context()).await {
            Ok(answer) => ContextFetched::Answer(answer.map(Box::new)),
            Err(_) => ContextFetched::Lost,
        };
        fetched.send(outcome);
    });
}

fn receive_context(mut commands: Commands, mut inbox: ResMut<Inbox<ContextFetched>>, ctx: Res<ServerContext>) {
    for fetched in inbox.drain() {
        match fetched {
            ContextFetched::Lost => warn!("the Edgegap context fetch ended without an answer"),
            ContextFetched::Answer(Err(e)) => {
                warn!("cannot read the Edgegap context (carrying on with ARBITRIUM_* values): {e}")
            }
            ContextFetched::Answer(Ok(deployment)) => {
                for problem in context_mismatches(&ctx, &deployment) {
                    warn!("Edgegap context disagrees with ARBITRIUM_*: {problem}");
                }
                info!(
                    "Edgegap deployment {} ({}), status {}",
                    deployment.request_id, deployment.fqdn, deployment.status
                );
                commands.insert_resource(EdgegapContext(*deployment));
            }
        }
    }
}

/// Differences between what the server advertises and what Edgegap's context reports.
pub fn context_mismatches(ctx: &ServerContext, deployment: &Deployment) -> Vec<String> {
    let mut problems = Vec::new();
    let advertised: Vec<SocketAddr> = [ctx.udp, ctx.webtransport].into_iter().flatten().map(|e| e.public).collect();
    if let Some(ip) = advertised.first().map(|a| a.ip())
        && deployment.public_ip.parse::<IpAddr>().ok() != Some(ip)
    {
        problems.push(format!("public IP {} vs advertised {ip}", deployment.public_ip));
    }
    let external: Vec<u16> =
        deployment.ports.iter().flat_map(|ports| ports.values()).filter_map(|p| p.external).collect();
    for addr in advertised {
        if !external.contains(&addr.port()) {
            problems.push(format!("advertised port {} is not an external port of the deployment", addr.port()));
        }
    }
    problems
}

/// Hides some variables entirely.
struct Hiding<'a> {
    layered: Layered<'a>,
    hidden: Vec<&'static str>,
}

impl EnvSource for Hiding<'_> {
    fn var(&self, name: &str) -> Option<String> {
        if self.hidden.contains(&name) { None } else { self.layered.var(name) }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// The environment of a live Edgegap deployment (captured; tokens replaced), plus the
    /// app-version variables Bevygap needs.
    fn captured(ports_mapping: &str) -> HashMap<String, String> {
        [
            ("ARBITRIUM_REQUEST_ID", "835d0d69f2fc"),
            ("ARBITRIUM_PUBLIC_IP", "172.235.165.125"),
            ("ARBITRIUM_HOST_ID", "amsterdam-edge-od-1205-e3-30a8e1"),
            ("ARBITRIUM_CONTEXT_URL", "https://api.edgegap.com/v1/context/835d0d69f2fc/17"),
            ("ARBITRIUM_CONTEXT_TOKEN", "dfaf50b9333b9ee07b22ed247e4a17e6"),
            ("ARBITRIUM_DELETE_URL", "https://api.edgegap.com/v1/self/stop/835d0d69f2fc/9"),
            ("ARBITRIUM_DELETE_TOKEN", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
            (
                "ARBITRIUM_DEPLOYMENT_LOCATION",
                r#"{"city": "Amsterdam", "country": "Netherlands", "continent": "Europe", "administrative_division": "North Holland", "timezone": "Central European Time", "latitude": 51.9688, "longitude": 4.7688}"#,
            ),
            ("ARBITRIUM_PORTS_MAPPING", ports_mapping),
            ("ARBITRIUM_DEPLOYMENT_TAGS", "production,eu"),
            ("ARBITRIUM_PORT_SERVER_PORT_EXTERNAL", "30898"),
            ("BEVYGAP_NAMESPACE", "spaceships"),
            ("BEVYGAP_GAME", "spaceships"),
            ("BEVYGAP_VERSION", "1.2.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    const ONE_PORT: &str = r#"{"ports": {"server port": {"name": "server port", "internal": 5420, "external": 30898, "protocol": "UDP"}}}"#;
    const TWO_PORTS: &str = r#"{"ports":{"udp":{"name":"udp","internal":6420,"external":31504,"protocol":"UDP"},"webtransport":{"name":"webtransport","internal":6421,"external":31505,"protocol":"UDP","tls_upgrade":false,"link":"835d0d69f2fc.pr.edgegap.net:31505"}}}"#;

    #[test]
    fn a_single_port_deployment_serves_udp_on_it() {
        let ctx = ServerContext::from_source(&captured(ONE_PORT)).unwrap();
        assert_eq!(ctx.server_id.as_str(), "edgegap-835d0d69f2fc");
        assert_eq!(ctx.origin.name(), "edgegap");
        let udp = ctx.udp.unwrap();
        assert_eq!(udp.bind, "0.0.0.0:5420".parse().unwrap());
        assert_eq!(udp.public, "172.235.165.125:30898".parse().unwrap());
        assert!(ctx.webtransport.is_none());
        let deployment = ctx.edgegap().unwrap();
        assert_eq!(deployment.location.city, "Amsterdam");
        assert_eq!(deployment.arbitrium.host_id.as_deref(), Some("amsterdam-edge-od-1205-e3-30a8e1"));
        assert!(!format!("{ctx:?}").contains("dfaf50b9333b9ee07b22ed247e4a17e6"), "token leaked into Debug");
    }

    #[test]
    fn named_ports_map_to_their_transports() {
        let ctx = ServerContext::from_source(&captured(TWO_PORTS)).unwrap();
        assert_eq!(ctx.udp.unwrap().public, "172.235.165.125:31504".parse().unwrap());
        let wt = ctx.webtransport.unwrap();
        assert_eq!((wt.bind.port(), wt.public.port()), (6421, 31505));
        assert_eq!(ctx.certificate_names(), vec!["localhost", "172.235.165.125"]);

        let mut env = captured(ONE_PORT);
        env.insert("BEVYGAP_WT_PORT_NAME".into(), "server port".into());
        let ctx = ServerContext::from_source(&env).unwrap();
        assert!(ctx.udp.is_none(), "the only port was claimed for WebTransport");
        assert_eq!(ctx.webtransport.unwrap().public.port(), 30898);
    }

    #[test]
    fn stray_bind_variables_cannot_add_unrouted_sockets() {
        let mut env = captured(ONE_PORT);
        env.insert("BEVYGAP_WT_BIND".into(), "0.0.0.0:9999".into());
        env.insert("BEVYGAP_SERVER_ID".into(), "chosen-by-hand".into());
        let ctx = ServerContext::from_source(&env).unwrap();
        assert!(ctx.webtransport.is_none());
        assert_eq!(ctx.server_id.as_str(), "edgegap-835d0d69f2fc");
    }

    #[test]
    fn an_id_assigned_by_the_matchmaker_is_kept_when_the_deployment_is_tagged_with_it() {
        let mut env = captured(ONE_PORT);
        env.insert("BEVYGAP_SERVER_ID".into(), "edgegap-00000000000000aa".into());
        env.insert("ARBITRIUM_DEPLOYMENT_TAGS".into(), "bevygap,ns-spaceships,edgegap-00000000000000aa".into());
        let ctx = ServerContext::from_source(&env).unwrap();
        assert_eq!(ctx.server_id.as_str(), "edgegap-00000000000000aa");

        env.insert("ARBITRIUM_DEPLOYMENT_TAGS".into(), "bevygap,ns-spaceships".into());
        let ctx = ServerContext::from_source(&env).unwrap();
        assert_eq!(ctx.server_id.as_str(), "edgegap-835d0d69f2fc", "an untagged id may be shared by deployments");
    }

    #[test]
    fn context_answers_that_disagree_are_reported() {
        let ctx = ServerContext::from_source(&captured(ONE_PORT)).unwrap();
        let body = r#"{"fqdn":"835d0d69f2fc.pr.edgegap.net","ports":{"server port":{"external":30898,"internal":5420,"link":"835d0d69f2fc.pr.edgegap.net:30898","name":"server port","protocol":"UDP","proxy":null,"tls_upgrade":false}},"public_ip":"172.235.165.125","ready":false,"request_id":"835d0d69f2fc","sockets":10,"sockets_usage":0,"status":"Status.DEPLOYING","whitelisting_active":false}"#;
        let mut deployment: Deployment = serde_json::from_str(body).unwrap();
        assert!(context_mismatches(&ctx, &deployment).is_empty());
        deployment.public_ip = "10.0.0.1".into();
        deployment.ports = None;
        let problems = context_mismatches(&ctx, &deployment);
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn bad_shapes_are_clear_errors() {
        let err_for = |env: HashMap<String, String>| ServerContext::from_source(&env).unwrap_err().to_string();

        let mut env = captured(ONE_PORT);
        env.remove("ARBITRIUM_PUBLIC_IP");
        assert!(err_for(env).contains("ARBITRIUM_PUBLIC_IP"));

        let mut env = captured(ONE_PORT);
        env.insert("ARBITRIUM_PUBLIC_IP".into(), "not-an-ip".into());
        assert!(err_for(env).contains("ARBITRIUM_PUBLIC_IP"));

        let err = err_for(captured(r#"{"ports": {"server port": {"internal": "5420"}}}"#));
        assert!(err.contains("ARBITRIUM_PORTS_MAPPING"), "{err}");

        let err = err_for(captured(
            r#"{"ports":{"a":{"internal":1,"external":2,"protocol":"UDP"},"b":{"internal":3,"external":4,"protocol":"UDP"}}}"#,
        ));
        assert!(err.contains("BEVYGAP_UDP_PORT_NAME") && err.contains("\"a\""), "{err}");

        let mut env = captured(ONE_PORT);
        env.insert("BEVYGAP_UDP_PORT_NAME".into(), "gameport".into());
        let err = err_for(env);
        assert!(err.contains("no port named \"gameport\"") && err.contains("server port"), "{err}");

        let err = err_for(captured(r#"{"ports":{"udp":{"internal":1,"external":2,"protocol":"TCP"}}}"#));
        assert!(err.contains("TCP"), "{err}");

        let mut env = captured(ONE_PORT);
        env.remove("BEVYGAP_NAMESPACE");
        assert!(err_for(env).contains("BEVYGAP_NAMESPACE"));
    }
}
