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

/// Translates each packet (ODP key text) through the rules (ovs-ofctl text)
/// and returns, per packet, its megaflow and datapath actions as one
/// `MATCH actions:ACTIONS` line in odpx's canonical ODP text, plus the
/// packet's parsed key.
pub fn translated_flows(rules: &str, ports: &[u32], packets: &[String]) -> Vec<(String, odpx_classifier::FlowKey)> {
    use odpx_classifier::odp;
    let mut set = odpx_classifier::rules::RuleSet::new();
    for r in odpx_classifier::rules::ofctl::parse_rules(rules).expect("test rules parse") {
        set.add(r);
    }
    let mut env = odpx_classifier::xlate::FloodEnv { ports: ports.to_vec() };
    packets
        .iter()
        .map(|p| {
            let k = odp::parse_key(p).expect("test packet parses").matched.key;
            let t = odpx_classifier::xlate::translate(&set, &k, &mut env);
            (
                format!(
                    "{} actions:{}",
                    odp::format_match(&t.megaflow),
                    odp::actions::format_actions(&t.actions)
                ),
                k,
            )
        })
        .collect()
}
