//! Driving Debian's headless Chromium through the playwright-core scripts in `testkit/browser/`
//! (`scripts/ensure-chromium` installs both): each script prints one JSON report that the Rust
//! test asserts on.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory of the browser scripts and their `node_modules`.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Runs `node <script> <args>` in [`scripts_dir`] and returns the JSON report it printed; fails
/// the test with the set-up script to run when Chromium or playwright-core is missing.
pub fn drive<I, S>(script: &str, args: I) -> serde_json::Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let dir = scripts_dir();
    assert!(
        Path::new("/usr/bin/chromium").exists() && dir.join("node_modules/playwright-core").exists(),
        "the browser tests need Chromium and playwright-core: run scripts/ensure-chromium (scripts/test does)"
    );
    let output = Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("node runs (Node.js 20+ is needed for the browser tests)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{script} failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{script} prints a JSON report ({e}): {stdout}"))
}

/// Whether `path` is a PNG of more than `min_bytes` (a screenshot with something in it).
pub fn is_png(path: &Path, min_bytes: usize) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > min_bytes)
}
