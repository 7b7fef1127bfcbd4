//! Freezing a translation for recirculation, and thawing it.
//!
//! # What
//! Some actions leave the translator not knowing the packet any more:
//! after `pop_mpls` removes the last label, the header under it (IPv4,
//! IPv6, ARP) was never parsed into the key, since a datapath parses no
//! further than an MPLS label stack. An action that reads or writes that
//! header, or a table lookup, cannot be translated then. As Open vSwitch
//! does, the translation *freezes*: it emits what it has, then
//! `recirc(ID)`; the datapath parses the packet again and looks it up with
//! `recirc_id(ID)`, and the miss translates from where the first one
//! stopped.
//!
//! [`Frozen`] is that "where": the actions left, innermost rule first
//! ([`Frame`]s: a `resubmit` leaves the rest of its caller's actions
//! after it), the action set written so far, the metadata and registers, and the rule
//! that packet-ins name. Everything in it comes from rules or from bits
//! the frozen megaflow pins (its in_port), so every packet of that
//! megaflow freezes the same state, and the same state gets the same id.
//!
//! # Ownership
//! [`RecircStore`] interns states: one id per distinct state, from 1 (0 is
//! "not recirculated"). It belongs to whoever owns translation (the
//! control layer's core) and is reached through
//! [`super::SwitchEnv::freeze`] and [`super::SwitchEnv::thaw`].
//!
//! # Invariants
//! * An id, once given, always thaws to the same state and is never given
//!   to another: a datapath flow that recirculates with it, or matches it,
//!   stays right for as long as it exists. States are not collected; the
//!   store holds at most [`MAX_FROZEN`] (distinct continuations are few:
//!   one per rule that freezes, its action set and metadata), and when it
//!   is full a translation that must freeze drops the packet there.

use super::action_set::ActionSet;
use super::{RuleContext, Xlate};
use crate::odp::OdpAction;
use crate::rules::RuleAction;
use std::collections::HashMap;

/// Frozen states a store keeps at most.
pub const MAX_FROZEN: usize = 1 << 16;

/// The actions left of one rule (or of the action set) when the
/// translation froze.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The table of the rule they belong to (a `resubmit` without a table
    /// looks here again).
    pub table: u8,
    /// The resubmit depth they ran at.
    pub depth: usize,
    /// The input port they saw (a `resubmit(PORT,...)` changes it for the
    /// rules it reaches).
    pub in_port: u32,
    pub actions: Vec<RuleAction>,
}

/// Where a frozen translation continues (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Frozen {
    /// Innermost first: the frozen rule's own actions, then its callers'.
    pub frames: Vec<Frame>,
    pub action_set: ActionSet,
    pub metadata: u64,
    /// The registers (pipeline state, like `metadata`).
    pub regs: [u32; 16],
    /// The last rule hit: its table, cookie, and whether it was a
    /// table-miss entry (what a packet-in says).
    pub table: u8,
    pub cookie: u64,
    pub table_miss: bool,
}

/// Frozen states by id (see the module documentation).
#[derive(Debug, Default)]
pub struct RecircStore {
    ids: HashMap<Frozen, u32>,
    states: Vec<Frozen>,
}

impl RecircStore {
    /// The id of `state`, given now if it has none; `None` when the store
    /// is full.
    pub fn freeze(&mut self, state: &Frozen) -> Option<u32> {
        if let Some(id) = self.ids.get(state) {
            return Some(*id);
        }
        if self.states.len() >= MAX_FROZEN {
            return None;
        }
        self.states.push(state.clone());
        let id = self.states.len() as u32;
        self.ids.insert(state.clone(), id);
        Some(id)
    }

    /// The state frozen under `id`.
    pub fn thaw(&self, id: u32) -> Option<&Frozen> {
        self.states.get((id as usize).checked_sub(1)?)
    }

    /// How many states are kept.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

impl Xlate<'_> {
    /// Freezes here: what the actions made of the packet so far is
    /// emitted, and the rule loops, as they unwind, add what is left of
    /// their lists ([`Xlate::push_frame`]).
    pub(super) fn start_freeze(&mut self) {
        self.commit();
        // The frames keep the input port the actions saw.
        self.wc.in_port = !0;
        self.frozen = Some(Frozen::default());
        self.halted = true;
    }

    /// Adds what is left of a list to the state being frozen.
    pub(super) fn push_frame(&mut self, table: u8, depth: usize, rest: &[RuleAction]) {
        let in_port = self.flow.in_port;
        if let (Some(f), false) = (self.frozen.as_mut(), rest.is_empty()) {
            f.frames.push(Frame {
                table,
                depth,
                in_port,
                actions: rest.to_vec(),
            });
        }
    }

    /// Ends a frozen translation: the state gets its id, and the packet
    /// goes round again under it (or is dropped here if the switch keeps
    /// no more states).
    pub(super) fn recirculate(&mut self) {
        let Some(mut f) = self.frozen.take() else { return };
        f.action_set = self.action_set.take();
        f.metadata = self.flow.metadata;
        f.regs = self.flow.regs;
        (f.table, f.cookie, f.table_miss) = (self.current.table, self.current.cookie, self.current.table_miss);
        if let Some(id) = self.env.freeze(&f) {
            self.out.push(OdpAction::Recirc(id));
        }
    }

    /// Continues the translation frozen under `id`, for its recirculated
    /// packet (parsed again: the key now shows what the freeze hid).
    pub(super) fn thaw(&mut self, id: u32) {
        let Some(f) = self.env.thaw(id) else {
            // No such state: nothing can be said of the packet; dropped.
            self.halted = true;
            return;
        };
        // The id implies the input port; pinned, so the frames' ports
        // compare the same for every packet of the megaflow.
        self.wc.in_port = !0;
        self.flow.metadata = f.metadata;
        self.written.metadata = !0;
        self.flow.regs = f.regs;
        self.written.regs = [!0; 16];
        self.action_set = f.action_set.clone();
        self.current = RuleContext {
            table: f.table,
            cookie: f.cookie,
            table_miss: f.table_miss,
        };
        for (i, frame) in f.frames.iter().enumerate() {
            if frame.in_port != self.flow.in_port {
                self.flow.in_port = frame.in_port;
                self.written.in_port = !0;
            }
            self.run_actions(&frame.actions, frame.table, frame.depth);
            if let Some(again) = self.frozen.as_mut() {
                again.frames.extend_from_slice(&f.frames[i + 1..]);
                return;
            }
            if self.too_deep || self.halted || self.missed {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_state_has_the_same_id_and_ids_start_at_one() {
        let mut s = RecircStore::default();
        let a = Frozen {
            metadata: 1,
            ..Frozen::default()
        };
        let b = Frozen {
            metadata: 2,
            ..Frozen::default()
        };
        assert_eq!(s.freeze(&a), Some(1));
        assert_eq!(s.freeze(&b), Some(2));
        assert_eq!(s.freeze(&a), Some(1));
        assert_eq!(s.thaw(1), Some(&a));
        assert_eq!(s.thaw(2), Some(&b));
        assert_eq!(s.thaw(0), None);
        assert_eq!(s.thaw(3), None);
        assert_eq!(s.len(), 2);
    }
}
