//! The self-hosting kit is checked by what runs here (images cannot be pulled): the
//! Dockerfiles pass hadolint, the compose file resolves with `docker compose config` (or
//! Debian's `docker-compose`, which needs no Docker daemon for `config`), and the systemd units
//! pass `systemd-analyze verify` (Debian's `systemd` package; it needs no running systemd).
//! `scripts/ensure-deploy-tools` installs whichever of hadolint, docker-compose and systemd is
//! missing, and each check fails, rather than passes untested, where its tool is absent. The
//! topology itself runs for real in `topology.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Option<Output> {
    Command::new(program).args(args).envs(envs.iter().copied()).current_dir(workspace()).output().ok()
}

#[test]
fn the_dockerfiles_pass_hadolint_and_build_small_non_root_images() {
    let files = ["deploy/docker/matchmaker.Dockerfile", "deploy/docker/gameserver.Dockerfile"];
    let out = run("hadolint", &[&["--failure-threshold", "info"][..], &files[..]].concat(), &[])
        .expect("hadolint is installed (scripts/ensure-deploy-tools)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    for file in files {
        let text = std::fs::read_to_string(workspace().join(file)).expect("the Dockerfile");
        assert_eq!(text.matches("\nFROM ").count() + usize::from(text.starts_with("FROM ")), 2, "{file}: multi-stage");
        assert!(text.contains("FROM gcr.io/distroless/cc-debian12:nonroot"), "{file}: a small runtime image");
        assert!(text.contains("\nUSER 65532:65532\n"), "{file}: runs as the non-root user");
        assert!(text.contains("--locked"), "{file}: built from Cargo.lock");
    }
    // The checker is not a rubber stamp.
    let bad = std::env::temp_dir().join(format!("bevygap-bad-{}.Dockerfile", std::process::id()));
    std::fs::write(&bad, "FROM debian\nRUN apt-get install curl\n").expect("a scratch Dockerfile");
    let out = run("hadolint", &[bad.to_str().unwrap_or_default()], &[]).expect("hadolint runs");
    let _ = std::fs::remove_file(&bad);
    assert!(!out.status.success(), "hadolint flags an unpinned base image and apt-get without -y");
}

#[test]
fn the_compose_file_resolves_with_every_service_configured() {
    let compose: Vec<&str> = if run("docker", &["compose", "version"], &[]).is_some_and(|o| o.status.success()) {
        vec!["docker", "compose"]
    } else if run("docker-compose", &["version"], &[]).is_some_and(|o| o.status.success()) {
        vec!["docker-compose"]
    } else {
        panic!(
            "neither `docker compose` nor `docker-compose` runs here; scripts/ensure-deploy-tools installs \
             Debian's docker-compose (as root)"
        );
    };
    let config = |envs: &[(&str, &str)]| {
        run(
            compose[0],
            &[&compose[1..], &["-p", "bevygap", "-f", "deploy/docker-compose.yml", "config"][..]].concat(),
            envs,
        )
        .expect("compose runs")
    };
    let out = config(&[("BEVYGAP_ADMIN_TOKEN", "0123456789abcdef0123"), ("PUBLIC_HOST", "203.0.113.10")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for expected in [
        "nats:",
        "matchmaker:",
        "gameserver-1:",
        "gameserver-2:",
        "BEVYGAP_PROVIDER: fleet",
        "BEVYGAP_SERVER_ID: fleet-1",
        "BEVYGAP_SERVER_ID: fleet-2",
        "BEVYGAP_UDP_PUBLIC: 203.0.113.10:6430",
        "NATS_URL: nats://nats:4222",
        "NATS_USER: gameserver",
        "NATS_USER: matchmaker",
        "LIGHTYEAR_PRIVATE_KEY_FILE: /run/secrets/lightyear_key",
        "/etc/nats/bevygap.conf",
    ] {
        assert!(text.contains(expected), "the resolved compose file has {expected:?}:\n{text}");
    }
    let out = config(&[("PUBLIC_HOST", "203.0.113.10")]);
    assert!(!out.status.success(), "an unset admin token is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("BEVYGAP_ADMIN_TOKEN"));
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    assert!(
        run("systemd-analyze", &["--version"], &[]).is_some_and(|o| o.status.success()),
        "systemd-analyze does not run here; scripts/ensure-deploy-tools installs Debian's systemd (as root)"
    );
    // verify checks that ExecStart exists: point it at binaries that do.
    let dir = std::env::temp_dir().join(format!("bevygap-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let units = [
        ("bevygap-matchmaker.service", "bevygap-matchmaker.service"),
        ("bevygap-gameserver@.service", "bevygap-gameserver@fleet-1.service"),
    ];
    let mut paths = Vec::new();
    for (unit, instance) in units {
        let text = std::fs::read_to_string(workspace().join("deploy/systemd").join(unit)).expect("the unit");
        let path = dir.join(instance);
        std::fs::write(
            &path,
            text.replace("/usr/local/bin/bevygap-matchmaker", "/bin/true")
                .replace("/usr/local/bin/bevygap-demo-server", "/bin/true"),
        )
        .expect("a copy of the unit");
        paths.push(path.display().to_string());
    }
    let bad = dir.join("bad.service");
    std::fs::write(&bad, "[Service]\nExecStart=/bin/true\nRestartSec=soon\n").expect("a bad unit");
    let verify =
        |files: &[&str]| run("systemd-analyze", &[&["verify"][..], files].concat(), &[]).expect("systemd-analyze runs");
    let out = verify(&paths.iter().map(String::as_str).collect::<Vec<_>>());
    let bad_out = verify(&[bad.to_str().unwrap_or_default()]);
    let _ = std::fs::remove_dir_all(&dir);
    let complaints = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success() && complaints.trim().is_empty(), "{complaints}");
    assert!(String::from_utf8_lossy(&bad_out.stderr).contains("Failed to parse"), "the verifier reports a bad value");
}
