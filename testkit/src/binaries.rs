use std::path::PathBuf;

/// The path of a workspace binary (`bin` of `package`) in the target directory this test runs
/// from, building it first when missing: `cargo test` only builds the binaries of the package
/// under test, while cross-crate tests need others (the demo game server, say).
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("tests run from <target>/<profile>/deps");
    let path = profile_dir.join(bin);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let target = profile_dir.parent().expect("<target>");
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", package, "--bin", bin])
            .env("CARGO_TARGET_DIR", target)
            .status()
            .expect("cargo runs");
        assert!(
            status.success() && path.exists(),
            "could not build {bin} at {}; build it with `cargo build -p {package} --bin {bin}`",
            path.display()
        );
    }
    path
}

/// Waits until something accepts TCP connections on `addr`, for at most `within`.
#[track_caller]
pub fn wait_for_listener(addr: &str, within: std::time::Duration) {
    crate::wait_for(within, &format!("something to listen on {addr}"), || std::net::TcpStream::connect(addr).ok());
}
