//! OpenFlow 1.3 error types and codes (`OFPT_ERROR`), named as the spec
//! and Open vSwitch's logs name them.
//!
//! A decode or a refusal yields an [`OfError`]: the type and code that
//! go back to the controller in an `OFPT_ERROR` message. Its `Display`
//! is the name OVS prints (`OFPBMC_BAD_PREREQ`), so odpx's logs and
//! `ovs-ofctl`'s read the same.

use std::fmt;

/// Defines one error type's code enum: the code numbers and their names.
macro_rules! codes {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $value:literal => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum $name { $($variant = $value),* }

        impl $name {
            /// The code for a number, if it is one.
            pub fn from_code(code: u16) -> Option<$name> {
                match code {
                    $($value => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// The spec's name of the code.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }
    };
}

codes!(
    /// `OFPET_HELLO_FAILED`.
    HelloFailed {
        Incompatible = 0 => "OFPHFC_INCOMPATIBLE",
        Eperm = 1 => "OFPHFC_EPERM",
    }
);

codes!(
    /// `OFPET_BAD_REQUEST`.
    BadRequest {
        BadVersion = 0 => "OFPBRC_BAD_VERSION",
        BadType = 1 => "OFPBRC_BAD_TYPE",
        BadMultipart = 2 => "OFPBRC_BAD_MULTIPART",
        BadExperimenter = 3 => "OFPBRC_BAD_EXPERIMENTER",
        BadExpType = 4 => "OFPBRC_BAD_EXP_TYPE",
        Eperm = 5 => "OFPBRC_EPERM",
        BadLen = 6 => "OFPBRC_BAD_LEN",
        BufferEmpty = 7 => "OFPBRC_BUFFER_EMPTY",
        BufferUnknown = 8 => "OFPBRC_BUFFER_UNKNOWN",
        BadTableId = 9 => "OFPBRC_BAD_TABLE_ID",
        IsSlave = 10 => "OFPBRC_IS_SLAVE",
        BadPort = 11 => "OFPBRC_BAD_PORT",
        BadPacket = 12 => "OFPBRC_BAD_PACKET",
        MultipartBufferOverflow = 13 => "OFPBRC_MULTIPART_BUFFER_OVERFLOW",
    }
);

codes!(
    /// `OFPET_BAD_ACTION`.
    BadAction {
        BadType = 0 => "OFPBAC_BAD_TYPE",
        BadLen = 1 => "OFPBAC_BAD_LEN",
        BadExperimenter = 2 => "OFPBAC_BAD_EXPERIMENTER",
        BadExpType = 3 => "OFPBAC_BAD_EXP_TYPE",
        BadOutPort = 4 => "OFPBAC_BAD_OUT_PORT",
        BadArgument = 5 => "OFPBAC_BAD_ARGUMENT",
        Eperm = 6 => "OFPBAC_EPERM",
        TooMany = 7 => "OFPBAC_TOO_MANY",
        BadQueue = 8 => "OFPBAC_BAD_QUEUE",
        BadOutGroup = 9 => "OFPBAC_BAD_OUT_GROUP",
        MatchInconsistent = 10 => "OFPBAC_MATCH_INCONSISTENT",
        UnsupportedOrder = 11 => "OFPBAC_UNSUPPORTED_ORDER",
        BadTag = 12 => "OFPBAC_BAD_TAG",
        BadSetType = 13 => "OFPBAC_BAD_SET_TYPE",
        BadSetLen = 14 => "OFPBAC_BAD_SET_LEN",
        BadSetArgument = 15 => "OFPBAC_BAD_SET_ARGUMENT",
    }
);

codes!(
    /// `OFPET_BAD_INSTRUCTION`.
    BadInstruction {
        UnknownInst = 0 => "OFPBIC_UNKNOWN_INST",
        UnsupInst = 1 => "OFPBIC_UNSUP_INST",
        BadTableId = 2 => "OFPBIC_BAD_TABLE_ID",
        UnsupMetadata = 3 => "OFPBIC_UNSUP_METADATA",
        UnsupMetadataMask = 4 => "OFPBIC_UNSUP_METADATA_MASK",
        BadExperimenter = 5 => "OFPBIC_BAD_EXPERIMENTER",
        BadExpType = 6 => "OFPBIC_BAD_EXP_TYPE",
        BadLen = 7 => "OFPBIC_BAD_LEN",
        Eperm = 8 => "OFPBIC_EPERM",
    }
);

codes!(
    /// `OFPET_BAD_MATCH`.
    BadMatch {
        BadType = 0 => "OFPBMC_BAD_TYPE",
        BadLen = 1 => "OFPBMC_BAD_LEN",
        BadTag = 2 => "OFPBMC_BAD_TAG",
        BadDlAddrMask = 3 => "OFPBMC_BAD_DL_ADDR_MASK",
        BadNwAddrMask = 4 => "OFPBMC_BAD_NW_ADDR_MASK",
        BadWildcards = 5 => "OFPBMC_BAD_WILDCARDS",
        BadField = 6 => "OFPBMC_BAD_FIELD",
        BadValue = 7 => "OFPBMC_BAD_VALUE",
        BadMask = 8 => "OFPBMC_BAD_MASK",
        BadPrereq = 9 => "OFPBMC_BAD_PREREQ",
        DupField = 10 => "OFPBMC_DUP_FIELD",
        Eperm = 11 => "OFPBMC_EPERM",
    }
);

codes!(
    /// `OFPET_FLOW_MOD_FAILED`.
    FlowModFailed {
        Unknown = 0 => "OFPFMFC_UNKNOWN",
        TableFull = 1 => "OFPFMFC_TABLE_FULL",
        BadTableId = 2 => "OFPFMFC_BAD_TABLE_ID",
        Overlap = 3 => "OFPFMFC_OVERLAP",
        Eperm = 4 => "OFPFMFC_EPERM",
        BadTimeout = 5 => "OFPFMFC_BAD_TIMEOUT",
        BadCommand = 6 => "OFPFMFC_BAD_COMMAND",
        BadFlags = 7 => "OFPFMFC_BAD_FLAGS",
    }
);

codes!(
    /// `OFPET_GROUP_MOD_FAILED`.
    GroupModFailed {
        GroupExists = 0 => "OFPGMFC_GROUP_EXISTS",
        InvalidGroup = 1 => "OFPGMFC_INVALID_GROUP",
        WeightUnsupported = 2 => "OFPGMFC_WEIGHT_UNSUPPORTED",
        OutOfGroups = 3 => "OFPGMFC_OUT_OF_GROUPS",
        OutOfBuckets = 4 => "OFPGMFC_OUT_OF_BUCKETS",
        ChainingUnsupported = 5 => "OFPGMFC_CHAINING_UNSUPPORTED",
        WatchUnsupported = 6 => "OFPGMFC_WATCH_UNSUPPORTED",
        Loop = 7 => "OFPGMFC_LOOP",
        UnknownGroup = 8 => "OFPGMFC_UNKNOWN_GROUP",
        ChainedGroup = 9 => "OFPGMFC_CHAINED_GROUP",
        BadType = 10 => "OFPGMFC_BAD_TYPE",
        BadCommand = 11 => "OFPGMFC_BAD_COMMAND",
        BadBucket = 12 => "OFPGMFC_BAD_BUCKET",
        BadWatch = 13 => "OFPGMFC_BAD_WATCH",
        Eperm = 14 => "OFPGMFC_EPERM",
    }
);

codes!(
    /// `OFPET_PORT_MOD_FAILED`.
    PortModFailed {
        BadPort = 0 => "OFPPMFC_BAD_PORT",
        BadHwAddr = 1 => "OFPPMFC_BAD_HW_ADDR",
        BadConfig = 2 => "OFPPMFC_BAD_CONFIG",
        BadAdvertise = 3 => "OFPPMFC_BAD_ADVERTISE",
        Eperm = 4 => "OFPPMFC_EPERM",
    }
);

codes!(
    /// `OFPET_TABLE_MOD_FAILED`.
    TableModFailed {
        BadTable = 0 => "OFPTMFC_BAD_TABLE",
        BadConfig = 1 => "OFPTMFC_BAD_CONFIG",
        Eperm = 2 => "OFPTMFC_EPERM",
    }
);

codes!(
    /// `OFPET_SWITCH_CONFIG_FAILED`.
    SwitchConfigFailed {
        BadFlags = 0 => "OFPSCFC_BAD_FLAGS",
        BadLen = 1 => "OFPSCFC_BAD_LEN",
        Eperm = 2 => "OFPSCFC_EPERM",
    }
);

codes!(
    /// `OFPET_ROLE_REQUEST_FAILED`.
    RoleRequestFailed {
        Stale = 0 => "OFPRRFC_STALE",
        Unsup = 1 => "OFPRRFC_UNSUP",
        BadRole = 2 => "OFPRRFC_BAD_ROLE",
    }
);

codes!(
    /// `OFPET_METER_MOD_FAILED`.
    MeterModFailed {
        Unknown = 0 => "OFPMMFC_UNKNOWN",
        MeterExists = 1 => "OFPMMFC_METER_EXISTS",
        InvalidMeter = 2 => "OFPMMFC_INVALID_METER",
        UnknownMeter = 3 => "OFPMMFC_UNKNOWN_METER",
        BadCommand = 4 => "OFPMMFC_BAD_COMMAND",
        BadFlags = 5 => "OFPMMFC_BAD_FLAGS",
        BadRate = 6 => "OFPMMFC_BAD_RATE",
        BadBurst = 7 => "OFPMMFC_BAD_BURST",
        BadBand = 8 => "OFPMMFC_BAD_BAND",
        BadBandValue = 9 => "OFPMMFC_BAD_BAND_VALUE",
        OutOfMeters = 10 => "OFPMMFC_OUT_OF_METERS",
        OutOfBands = 11 => "OFPMMFC_OUT_OF_BANDS",
    }
);

codes!(
    /// `OFPET_TABLE_FEATURES_FAILED`.
    TableFeaturesFailed {
        BadTable = 0 => "OFPTFFC_BAD_TABLE",
        BadMetadata = 1 => "OFPTFFC_BAD_METADATA",
        BadType = 2 => "OFPTFFC_BAD_TYPE",
        BadLen = 3 => "OFPTFFC_BAD_LEN",
        BadArgument = 4 => "OFPTFFC_BAD_ARGUMENT",
        Eperm = 5 => "OFPTFFC_EPERM",
    }
);

/// An error the switch sends (or a controller's error it received): the
/// spec's type with its code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OfError {
    HelloFailed(HelloFailed),
    BadRequest(BadRequest),
    BadAction(BadAction),
    BadInstruction(BadInstruction),
    BadMatch(BadMatch),
    FlowModFailed(FlowModFailed),
    GroupModFailed(GroupModFailed),
    PortModFailed(PortModFailed),
    TableModFailed(TableModFailed),
    SwitchConfigFailed(SwitchConfigFailed),
    RoleRequestFailed(RoleRequestFailed),
    MeterModFailed(MeterModFailed),
    TableFeaturesFailed(TableFeaturesFailed),
    /// A type or code this table does not name (from a peer's message).
    Other {
        kind: u16,
        code: u16,
    },
}

impl OfError {
    /// The wire type and code.
    pub fn type_code(self) -> (u16, u16) {
        match self {
            OfError::HelloFailed(c) => (0, c as u16),
            OfError::BadRequest(c) => (1, c as u16),
            OfError::BadAction(c) => (2, c as u16),
            OfError::BadInstruction(c) => (3, c as u16),
            OfError::BadMatch(c) => (4, c as u16),
            OfError::FlowModFailed(c) => (5, c as u16),
            OfError::GroupModFailed(c) => (6, c as u16),
            OfError::PortModFailed(c) => (7, c as u16),
            OfError::TableModFailed(c) => (8, c as u16),
            OfError::SwitchConfigFailed(c) => (10, c as u16),
            OfError::RoleRequestFailed(c) => (11, c as u16),
            OfError::MeterModFailed(c) => (12, c as u16),
            OfError::TableFeaturesFailed(c) => (13, c as u16),
            OfError::Other { kind, code } => (kind, code),
        }
    }

    /// The error a wire type and code name.
    pub fn from_type_code(kind: u16, code: u16) -> OfError {
        let named = match kind {
            0 => HelloFailed::from_code(code).map(OfError::HelloFailed),
            1 => BadRequest::from_code(code).map(OfError::BadRequest),
            2 => BadAction::from_code(code).map(OfError::BadAction),
            3 => BadInstruction::from_code(code).map(OfError::BadInstruction),
            4 => BadMatch::from_code(code).map(OfError::BadMatch),
            5 => FlowModFailed::from_code(code).map(OfError::FlowModFailed),
            6 => GroupModFailed::from_code(code).map(OfError::GroupModFailed),
            7 => PortModFailed::from_code(code).map(OfError::PortModFailed),
            8 => TableModFailed::from_code(code).map(OfError::TableModFailed),
            10 => SwitchConfigFailed::from_code(code).map(OfError::SwitchConfigFailed),
            11 => RoleRequestFailed::from_code(code).map(OfError::RoleRequestFailed),
            12 => MeterModFailed::from_code(code).map(OfError::MeterModFailed),
            13 => TableFeaturesFailed::from_code(code).map(OfError::TableFeaturesFailed),
            _ => None,
        };
        named.unwrap_or(OfError::Other { kind, code })
    }
}

impl fmt::Display for OfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            OfError::HelloFailed(c) => c.name(),
            OfError::BadRequest(c) => c.name(),
            OfError::BadAction(c) => c.name(),
            OfError::BadInstruction(c) => c.name(),
            OfError::BadMatch(c) => c.name(),
            OfError::FlowModFailed(c) => c.name(),
            OfError::GroupModFailed(c) => c.name(),
            OfError::PortModFailed(c) => c.name(),
            OfError::TableModFailed(c) => c.name(),
            OfError::SwitchConfigFailed(c) => c.name(),
            OfError::RoleRequestFailed(c) => c.name(),
            OfError::MeterModFailed(c) => c.name(),
            OfError::TableFeaturesFailed(c) => c.name(),
            OfError::Other { kind, code } => return write!(f, "error type {kind} code {code}"),
        };
        f.write_str(name)
    }
}

impl std::error::Error for OfError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_and_code_round_trip_and_print_as_ovs_does() {
        for kind in 0..16u16 {
            for code in 0..20u16 {
                let e = OfError::from_type_code(kind, code);
                assert_eq!(e.type_code(), (kind, code));
            }
        }
        assert_eq!(OfError::BadMatch(BadMatch::BadPrereq).to_string(), "OFPBMC_BAD_PREREQ");
        assert_eq!(OfError::BadMatch(BadMatch::BadPrereq).type_code(), (4, 9));
        assert_eq!(OfError::from_type_code(9, 1).to_string(), "error type 9 code 1");
    }
}
