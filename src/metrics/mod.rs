//! What is measured and how it is recorded: per-worker recorders (plain histograms, no locks),
//! snapshots sent once per interval, and the collector that merges them.

pub mod collector;
pub mod hlog;
pub mod recorder;

pub use recorder::{Counter, ErrorClass, Recorder};

/// Every timed operation of the signup-and-chat flow; each is one histogram and one hlog tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Register,
    SmsCode,
    Verify,
    ContactsSync,
    WsConnect,
    MessageAck,
    MessageDelivery,
    /// Actual minus intended start of every scheduled operation: how far the generator lagged.
    ScheduleLag,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::Register,
        Metric::SmsCode,
        Metric::Verify,
        Metric::ContactsSync,
        Metric::WsConnect,
        Metric::MessageAck,
        Metric::MessageDelivery,
        Metric::ScheduleLag,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub fn name(self) -> &'static str {
        match self {
            Metric::Register => "register",
            Metric::SmsCode => "sms_code",
            Metric::Verify => "verify",
            Metric::ContactsSync => "contacts_sync",
            Metric::WsConnect => "ws_connect",
            Metric::MessageAck => "message_ack",
            Metric::MessageDelivery => "message_delivery",
            Metric::ScheduleLag => "schedule_lag",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}
