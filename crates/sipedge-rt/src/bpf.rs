//! The `bpf(2)` plumbing shared by the XDP engine's program (`xdp/`) and the ban/shed socket
//! filter (`filter/`): the attribute block, the syscall, the instruction encoding and a
//! program load that returns the verifier's log on a refusal. Declared here rather than taken
//! from a binding crate, for the reasons in `xdp`'s module docs.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

pub(crate) const BPF_MAP_CREATE: libc::c_long = 0;
pub(crate) const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
pub(crate) const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
pub(crate) const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_PROG_LOAD: libc::c_long = 5;

/// `union bpf_attr`, as a zeroed 128-byte block written field by field (every command uses
/// a prefix of it; the kernel requires the unused tail to be zero).
#[repr(C, align(8))]
pub(crate) struct BpfAttr(pub(crate) [u8; 128]);

impl BpfAttr {
    pub(crate) fn new() -> BpfAttr {
        BpfAttr([0; 128])
    }
    pub(crate) fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    pub(crate) fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
}

/// `bpf(cmd, attr)`.
pub(crate) fn bpf(cmd: libc::c_long, attr: &mut BpfAttr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, writable 128-byte `union bpf_attr` whose pointer fields (set
    // by the callers) point at memory that outlives this call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            attr.0.len() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// The new file descriptor a bpf command returned.
pub(crate) fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the bpf command returned a new file descriptor that nobody else owns.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// One eBPF instruction, encoded as the kernel reads it (`struct bpf_insn`, little-endian).
pub(crate) fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | u64::from(dst & 0xf) << 8
        | u64::from(src & 0xf) << 12
        | u64::from(off as u16) << 16
        | u64::from(imm as u32) << 32
}

/// What [`prog_load`] loads: the program type, the expected attach type (0: none), the
/// program's name (at most 15 bytes) and what to call it in an error.
pub(crate) struct ProgSpec {
    pub(crate) prog_type: u32,
    pub(crate) attach_type: u32,
    pub(crate) name: &'static [u8],
    pub(crate) what: &'static str,
}

/// Loads a program; on a verifier refusal the error carries the verifier's log.
pub(crate) fn prog_load(spec: &ProgSpec, insns: &[u64]) -> io::Result<OwnedFd> {
    let license = c"Apache-2.0";
    let load = |log: &mut [u8]| {
        let mut a = BpfAttr::new();
        a.u32(0, spec.prog_type)
            .u32(4, insns.len() as u32)
            .u64(8, insns.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .u32(24, u32::from(!log.is_empty()))
            .u32(28, log.len() as u32)
            .u64(
                32,
                if log.is_empty() {
                    0
                } else {
                    log.as_mut_ptr() as u64
                },
            );
        if spec.attach_type != 0 {
            a.u32(68, spec.attach_type);
        }
        let name = &spec.name[..spec.name.len().min(15)];
        a.0[48..48 + name.len()].copy_from_slice(name);
        bpf(BPF_PROG_LOAD, &mut a).map(owned)
    };
    match load(&mut []) {
        Ok(fd) => Ok(fd),
        Err(e) => {
            let mut log = vec![0u8; 64 * 1024];
            let _ = load(&mut log);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            Err(io::Error::new(
                e.kind(),
                format!("loading the {} failed: {e}; verifier: {text}", spec.what),
            ))
        }
    }
}
