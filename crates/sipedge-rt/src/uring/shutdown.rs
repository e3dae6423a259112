//! Shutting the engine down: the kernel may still write provided buffers, read send slots
//! and fill the eventfd buffer until each operation's last completion, so the memory is freed
//! only after every operation has ended, or leaked.

use std::mem::ManuallyDrop;
use std::time::Duration;

use io_uring::{cqueue, opcode, types};

use super::{
    user_data, UringEngine, INDEX_MASK, TAG_CANCEL, TAG_RECV, TAG_SEND, TAG_SHIFT, TAG_STREAM,
    TAG_WAKE,
};

impl UringEngine {
    /// Cancels everything in flight and waits (bounded) for the last completions. True when
    /// nothing is in flight any more, so the kernel no longer touches `KernelMem`.
    pub(super) fn cancel_all(&mut self) -> bool {
        let busy = |e: &Self| {
            e.recv_armed.iter().any(|&a| a)
                || e.wake_armed
                || e.sends_in_flight > 0
                || e.mem.streams.in_flight() > 0
        };
        if !busy(self) {
            return true;
        }
        let sqe = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(user_data(TAG_CANCEL, 0));
        // SAFETY: a cancel carries no pointers.
        if unsafe { Self::push(&mut self.ring, &mut self.stats, &sqe) }.is_err() {
            return false;
        }
        for _ in 0..100 {
            let _ = self.enter(Some(Duration::from_millis(10)));
            let Self {
                ring,
                mem,
                recv_armed,
                wake_armed,
                sends_in_flight,
                ..
            } = self;
            for cqe in ring.completion() {
                let index = (cqe.user_data() & INDEX_MASK) as usize;
                match cqe.user_data() >> TAG_SHIFT {
                    TAG_RECV if !cqueue::more(cqe.flags()) => recv_armed[index] = false,
                    TAG_SEND => {
                        *sends_in_flight -= 1;
                        mem.sendq.release(index as u32);
                    }
                    TAG_WAKE => *wake_armed = false,
                    TAG_STREAM => {
                        let _ = mem.streams.release(index);
                    }
                    _ => {}
                }
            }
            if !busy(self) {
                return true;
            }
        }
        false
    }
}

impl Drop for UringEngine {
    fn drop(&mut self) {
        let clean = self.cancel_all();
        // SAFETY: dropped exactly once, here; `self.ring` is not used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.ring) };
        if clean {
            // SAFETY: nothing is in flight and the ring is closed, so the kernel no longer
            // refers to this memory; dropped exactly once, here.
            unsafe { ManuallyDrop::drop(&mut self.mem) };
        } else {
            tracing::warn!(
                "io_uring operations still in flight at shutdown; leaking their buffers"
            );
        }
    }
}
