//! Bodies of the fuzz targets (`classifier/fuzz`), kept here so the stable
//! test suite can replay the checked-in corpus through exactly the same
//! checks (`tests/fuzz_corpus.rs`). Each function panics only when an
//! invariant breaks, never on bad input.

use crate::extract::extract;
use crate::odp::{self, actions, format_exact_key, parse_flow_line, parse_key};
use crate::rules::ofctl::{format_rule, parse_rules};

/// Any bytes as a frame: extraction must not panic, and its key must print
/// and parse back to the same text.
pub fn extract_frame(data: &[u8]) {
    let key = extract(data, 1);
    let text = format_exact_key(&key);
    let back = parse_key(&text).expect("printed key parses");
    assert_eq!(format_exact_key(&back.matched.key), text);
}

/// Any text as ODP: parsing must not panic, and anything accepted must
/// normalise to a fixed point.
pub fn odp_text(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(k) = parse_key(s) {
        let once = k.to_string();
        assert_eq!(parse_key(&once).expect("canonical key parses").to_string(), once);
    }
    if let Ok(a) = actions::parse_actions(s) {
        let once = actions::format_actions(&a);
        assert_eq!(
            actions::format_actions(&actions::parse_actions(&once).expect("canonical actions parse")),
            once
        );
    }
    if let Ok(f) = parse_flow_line(s) {
        let once = f.to_string();
        assert_eq!(parse_flow_line(&once).expect("canonical flow parses").to_string(), once);
    }
    let _ = odp::parse_key_exact(s);
}

/// Any text as ovs-ofctl rules: parsing must not panic, and every accepted
/// rule must print to text that parses to the same rule.
pub fn rule_text(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(rules) = parse_rules(s) {
        for r in rules {
            let text = format_rule(&r).replacen(", ", ",", 2);
            let back = crate::rules::ofctl::parse_rule(&text).expect("printed rule parses");
            assert_eq!(
                (back.table, back.priority, back.matched, &back.actions),
                (r.table, r.priority, r.matched, &r.actions)
            );
        }
    }
}
