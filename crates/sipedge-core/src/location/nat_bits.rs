//! The NAT bits a binding slot carries (the keepalive machine of `nat/LIFECYCLE.md`): the
//! ping mode, the NATed flag, the miss count and the RTT, packed in the slot's padding.
//! A leaf shared by the store (`location`) and the pinger (`nat`), so that the store does
//! not depend on the pinger. Re-exported by `nat`.

/// Keepalives for a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum PingMode {
    /// No keepalives.
    Disabled = 0,
    /// Keepalives; the RTT is recorded, nothing is removed.
    #[default]
    Enabled = 1,
    /// Keepalives; `ping_failures_max` unanswered OPTIONS in a row deregister the binding.
    Timeout = 2,
}

impl PingMode {
    fn from_bits(v: u8) -> PingMode {
        match v {
            1 => PingMode::Enabled,
            2 => PingMode::Timeout,
            _ => PingMode::Disabled,
        }
    }
}

/// What happens to a binding's keepalive state (`nat/LIFECYCLE.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PingEvent {
    /// The binding's slot came round in the sweep: `options` pings expect an answer;
    /// `deregister_at`: the misses in a row that remove it (`PingMode::Timeout`).
    Slot {
        options: bool,
        deregister_at: Option<u8>,
    },
    /// A verified answer to our OPTIONS, with its round-trip time (RFC 3261 §11.2).
    Answered { rtt_ms: u32 },
    /// A request from the contact (REGISTER, restore, `note_alive`).
    Heard,
}

/// What the pinger does after a [`PingEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PingStep {
    /// Nothing to send.
    Nothing,
    /// Send a keepalive; `missed`: the previous OPTIONS went unanswered.
    Ping { missed: bool },
    /// Remove the binding after `misses` unanswered pings in a row (nothing is sent).
    Deregister { misses: u8 },
}

/// Per-binding NAT and keepalive state: 5 bytes, alignment 1 (it lives in the binding
/// slot's padding). The keepalive part changes only through [`NatState::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NatState {
    bits: u8,
    rtt_ms: [u8; 2],
    srtt_8: [u8; 2],
}

const NATED: u8 = 1;
const MODE_SHIFT: u8 = 1;
const MODE_MASK: u8 = 0b110;
const OUTSTANDING: u8 = 8;
const ALIVE: u8 = 16;
const MISS_SHIFT: u8 = 5;
const NO_RTT: u16 = u16::MAX;

impl Default for NatState {
    fn default() -> Self {
        NatState {
            bits: 0,
            rtt_ms: NO_RTT.to_le_bytes(),
            srtt_8: NO_RTT.to_le_bytes(),
        }
    }
}

impl NatState {
    pub(crate) fn nated(&self) -> bool {
        self.bits & NATED != 0
    }
    pub(crate) fn mode(&self) -> PingMode {
        PingMode::from_bits((self.bits & MODE_MASK) >> MODE_SHIFT)
    }
    /// Sets the NATed flag and the ping mode (a REGISTER or a restore decided them).
    pub(crate) fn set(&mut self, nated: bool, mode: PingMode) {
        self.bits &= !(NATED | MODE_MASK);
        self.bits |= u8::from(nated) | ((mode as u8) << MODE_SHIFT);
    }
    /// Which keepalive count the binding is in: `Some(0)` not NATed, `Some(1)` NATed,
    /// `None` with keepalives off.
    pub(crate) fn ping_class(&self) -> Option<usize> {
        (self.mode() != PingMode::Disabled).then_some(usize::from(self.nated()))
    }
    pub(crate) fn outstanding(&self) -> bool {
        self.bits & OUTSTANDING != 0
    }
    /// The keepalive machine's transition function (`nat/LIFECYCLE.md`): every change of
    /// the outstanding bit, the alive bit and the miss count goes through here.
    pub(crate) fn next(&mut self, ev: PingEvent) -> PingStep {
        match ev {
            PingEvent::Slot {
                options,
                deregister_at,
            } => {
                let missed = options && self.outstanding() && !self.alive();
                if missed {
                    self.add_miss();
                    if deregister_at.is_some_and(|max| self.misses() >= max) {
                        return PingStep::Deregister {
                            misses: self.misses(),
                        };
                    }
                }
                self.clear_alive();
                self.set_outstanding(options);
                PingStep::Ping { missed }
            }
            PingEvent::Answered { rtt_ms } => {
                self.answered(rtt_ms);
                PingStep::Nothing
            }
            PingEvent::Heard => {
                self.mark_alive();
                PingStep::Nothing
            }
        }
    }
    fn set_outstanding(&mut self, on: bool) {
        self.bits = (self.bits & !OUTSTANDING) | if on { OUTSTANDING } else { 0 };
    }
    /// Something came from the contact since the last ping.
    pub(crate) fn alive(&self) -> bool {
        self.bits & ALIVE != 0
    }
    /// Any request or response from the contact: no misses, alive until the next ping.
    fn mark_alive(&mut self) {
        self.bits = (self.bits & !(7 << MISS_SHIFT)) | ALIVE;
    }
    fn clear_alive(&mut self) {
        self.bits &= !ALIVE;
    }
    /// Unanswered pings in a row.
    pub(crate) fn misses(&self) -> u8 {
        self.bits >> MISS_SHIFT
    }
    fn add_miss(&mut self) {
        let m = (self.misses() + 1).min(7);
        self.bits = (self.bits & !(7 << MISS_SHIFT)) | (m << MISS_SHIFT);
    }
    /// The last measured RTT, milliseconds.
    pub(crate) fn rtt_ms(&self) -> Option<u16> {
        let v = u16::from_le_bytes(self.rtt_ms);
        (v != NO_RTT).then_some(v)
    }
    /// The smoothed RTT (RFC 6298 §2 with α = 1/8), in eighths of a millisecond.
    pub(crate) fn srtt_8(&self) -> Option<u16> {
        let v = u16::from_le_bytes(self.srtt_8);
        (v != NO_RTT).then_some(v)
    }
    /// Records an answer: RTT kept, misses cleared, nothing outstanding.
    fn answered(&mut self, rtt_ms: u32) {
        let rtt = rtt_ms.min(u32::from(NO_RTT - 1)) as u16;
        self.rtt_ms = rtt.to_le_bytes();
        let sample = (u32::from(rtt) * 8).min(u32::from(NO_RTT - 1));
        let srtt = match self.srtt_8() {
            None => sample,
            // RFC 6298 §2.3: SRTT ← (1 − 1/8)·SRTT + 1/8·R'.
            Some(s) => (u32::from(s) * 7 + sample).div_ceil(8),
        };
        self.srtt_8 = (srtt as u16).to_le_bytes();
        self.bits &= !(OUTSTANDING | (7 << MISS_SHIFT));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_bits() {
        let mut s = NatState::default();
        assert_eq!(std::mem::size_of::<NatState>(), 5);
        assert_eq!(
            (s.nated(), s.mode(), s.rtt_ms()),
            (false, PingMode::Disabled, None)
        );
        s.set(true, PingMode::Timeout);
        s.set_outstanding(true);
        for _ in 0..9 {
            s.add_miss();
        }
        assert_eq!(
            (s.nated(), s.mode(), s.misses(), s.outstanding()),
            (true, PingMode::Timeout, 7, true)
        );
        s.answered(40);
        assert_eq!(
            (s.misses(), s.outstanding(), s.rtt_ms(), s.srtt_8()),
            (0, false, Some(40), Some(320))
        );
        s.answered(80);
        assert_eq!(s.srtt_8(), Some(360), "srtt = 7/8·40 + 1/8·80 ms = 45 ms");
        s.add_miss();
        s.mark_alive();
        assert_eq!(
            (s.misses(), s.alive(), s.mode()),
            (0, true, PingMode::Timeout)
        );
        s.set(false, PingMode::Enabled);
        assert_eq!(
            (s.nated(), s.mode(), s.alive()),
            (false, PingMode::Enabled, true)
        );
    }
}
