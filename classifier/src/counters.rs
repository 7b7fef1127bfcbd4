//! Counters defined once: each with its name, help text, unit and kind,
//! from which every output of the switch is rendered.
//!
//! # What
//! [`counters!`](crate::counters!) declares a set of counters: a struct of
//! relaxed atomics for the thread that counts, a plain snapshot struct for
//! everyone who reads, and a table of [`Def`]s that says, for each field,
//! what it counts ([`Def::help`]), in what [`Unit`], whether it only grows
//! ([`Kind::Counter`]) or is a current value ([`Kind::Gauge`]), the words
//! `ctl show` prints before it, and its Prometheus family and label. The
//! JSON, the Prometheus text and the `ctl` text are all made from a
//! snapshot and this table, so a counter added here appears everywhere,
//! with the same value, and no renderer can forget or rename one.
//!
//! # Threads
//! The atomics are written by their owner (a PMD, a port, the megaflow
//! owner) and read by anyone with relaxed loads: a snapshot is a set of
//! loads, not a consistent cut, which is what monitoring expects.

use std::sync::atomic::{AtomicU64, Ordering};

/// Whether a value only grows (until a restart or a clear) or is a level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// What one unit of a value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Packets,
    Bytes,
    /// CPU time-stamp counter cycles.
    Cycles,
    Nanoseconds,
    Milliseconds,
    /// A count of things or events (megaflows, upcalls, sweeps).
    Events,
    /// 0 or 1.
    Flag,
}

impl Unit {
    /// The factor from this unit to Prometheus's base unit (seconds for
    /// times, 1 otherwise).
    pub fn to_base(self) -> f64 {
        match self {
            Unit::Nanoseconds => 1e-9,
            Unit::Milliseconds => 1e-3,
            _ => 1.0,
        }
    }
}

/// The definition of one counter (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Def {
    /// The field's name: the snapshot's field and the JSON key.
    pub key: &'static str,
    pub kind: Kind,
    pub unit: Unit,
    /// What it counts: the field's doc comment (see [`Def::help`]).
    pub doc: &'static str,
    /// The words `ctl` prints before its value, for people.
    pub text: &'static str,
    /// Its Prometheus family without the `odpx_` prefix and the `_total`
    /// suffix of counters, and the label that tells it apart from the
    /// other members of the family, if any.
    pub family: &'static str,
    pub label: Option<(&'static str, &'static str)>,
}

impl Def {
    /// What it counts, in a sentence (Prometheus `# HELP`).
    pub fn help(&self) -> &'static str {
        self.doc.trim()
    }

    /// The full Prometheus name of its family.
    pub fn prometheus_name(&self) -> String {
        match self.kind {
            Kind::Counter => format!("odpx_{}_total", self.family),
            Kind::Gauge => format!("odpx_{}", self.family),
        }
    }
}

/// A snapshot's values with their definitions.
pub trait Snapshot {
    /// Every counter of the set, in declaration order.
    const DEFS: &'static [Def];
    /// The values, in the order of [`Snapshot::DEFS`].
    fn values(&self) -> Vec<u64>;
    /// (definition, value) pairs.
    fn pairs(&self) -> Vec<(&'static Def, u64)> {
        Self::DEFS.iter().zip(self.values()).collect()
    }
    /// The value of the counter named `key`.
    fn get(&self, key: &str) -> Option<u64> {
        self.pairs().into_iter().find(|(d, _)| d.key == key).map(|(_, v)| v)
    }
    /// Sets the counter named `key`; false if the set has none of that name.
    fn set(&mut self, key: &str, value: u64) -> bool;
}

/// Adds to a counter that has one writer: a plain load and store, which
/// does what `fetch_add` does without a locked instruction (a PMD adds to
/// about ten counters a batch).
#[inline(always)]
pub fn add_single_writer(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Adds to a counter that several threads write.
#[inline(always)]
pub fn add_shared(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Declares a set of counters (see the module documentation):
///
/// ```
/// odpx_classifier::counters! {
///     /// What the set counts.
///     pub struct Things => ThingsSnapshot;
///     /// Things seen.
///     seen: Counter(Events) "things seen" => "things_seen";
///     /// Things by colour.
///     red: Counter(Events) "red things" => "things" colour "red";
///     /// Things held now.
///     held: Gauge(Events) "held" => "things_held";
/// }
/// let t = Things::default();
/// odpx_classifier::counters::add_shared(&t.seen, 2);
/// assert_eq!(t.snapshot().seen, 2);
/// ```
#[macro_export]
macro_rules! counters {
    (
        $(#[$meta:meta])*
        pub struct $atomic:ident => $snap:ident;
        $(
            $(#[doc = $doc:literal])*
            $field:ident : $kind:ident ( $unit:ident ) $text:literal => $family:literal $( $lkey:ident $lval:literal )? ;
        )*
    ) => {
        $(#[$meta])*
        #[derive(Default, Debug)]
        pub struct $atomic {
            $( $(#[doc = $doc])* pub $field: ::std::sync::atomic::AtomicU64, )*
        }

        /// A snapshot: one relaxed load of each counter.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $snap {
            $( $(#[doc = $doc])* pub $field: u64, )*
        }

        impl $atomic {
            pub fn snapshot(&self) -> $snap {
                $snap { $( $field: self.$field.load(::std::sync::atomic::Ordering::Relaxed), )* }
            }

            /// Sets every [`Kind::Counter`]($crate::counters::Kind) to zero
            /// (gauges keep their level).
            pub fn clear_counters(&self) {
                $(
                    if $crate::counters::Kind::$kind == $crate::counters::Kind::Counter {
                        self.$field.store(0, ::std::sync::atomic::Ordering::Relaxed);
                    }
                )*
            }
        }

        impl $crate::counters::Snapshot for $snap {
            const DEFS: &'static [$crate::counters::Def] = &[
                $(
                    $crate::counters::Def {
                        key: stringify!($field),
                        kind: $crate::counters::Kind::$kind,
                        unit: $crate::counters::Unit::$unit,
                        doc: concat!($($doc),*),
                        text: $text,
                        family: $family,
                        label: $crate::counters!(@label $( $lkey $lval )?),
                    },
                )*
            ];

            fn values(&self) -> Vec<u64> {
                vec![ $( self.$field, )* ]
            }

            fn set(&mut self, key: &str, value: u64) -> bool {
                match key {
                    $( stringify!($field) => self.$field = value, )*
                    _ => return false,
                }
                true
            }
        }
    };
    (@label) => { None };
    (@label $lkey:ident $lval:literal) => { Some((stringify!($lkey), $lval)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::counters! {
        /// Test set.
        pub struct Test => TestSnapshot;
        /// Packets seen.
        packets: Counter(Packets) "packets" => "test_packets";
        /// Time spent.
        busy_ns: Counter(Nanoseconds) "busy" => "test_busy_seconds";
        /// Things by colour.
        red: Counter(Events) "red" => "test_things" colour "red";
        /// Held now.
        held: Gauge(Events) "held" => "test_held";
    }

    #[test]
    fn a_set_snapshots_clears_counters_and_describes_itself() {
        let t = Test::default();
        add_single_writer(&t.packets, 3);
        add_shared(&t.held, 7);
        let s = t.snapshot();
        assert_eq!((s.packets, s.held), (3, 7));
        assert_eq!(s.values(), vec![3, 0, 0, 7]);
        assert_eq!(s.get("held"), Some(7));
        let mut copy = TestSnapshot::default();
        assert!(copy.set("held", 7) && copy.set("packets", 3) && !copy.set("nothing", 1));
        assert_eq!(copy, s);
        t.clear_counters();
        assert_eq!(t.snapshot().values(), vec![0, 0, 0, 7], "gauges keep their level");
        let d = TestSnapshot::DEFS;
        assert_eq!(d[0].help(), "Packets seen.");
        assert_eq!(d[2].label, Some(("colour", "red")));
        assert_eq!(d[2].prometheus_name(), "odpx_test_things_total");
        assert_eq!(d[3].prometheus_name(), "odpx_test_held");
        assert_eq!(d[1].unit.to_base(), 1e-9);
    }
}
