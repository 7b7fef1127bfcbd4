//! Helpers for odpx's cross-crate integration tests.

/// Checks a test prerequisite. When it is missing, the test skips with a
/// printed reason locally, and fails when `CI=true` (CI must run it).
/// Returns true when the test should go on.
pub fn prerequisite(available: bool, what: &str) -> bool {
    if available {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("prerequisite missing in CI: {what}");
    }
    let msg = format!(
        "SKIPPED {} (prerequisite missing: {what}); this test runs in CI",
        std::thread::current().name().unwrap_or("?")
    );
    eprintln!("{msg}");
    // cargo test hides the output of passing tests: tools/test.sh collects
    // skip reasons through this file and prints them at the end.
    if let Ok(path) = std::env::var("ODPX_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{msg}");
        }
    }
    false
}
