//! Walking a parked goroutine's stack, and symbolising the result.
//!
//! # Walking a parked goroutine's stack
//! A parked G's registers sit on its own stack where `gort_switch` pushed them (layout in
//! `arch/x86_64.rs`): with `rip` at `gort_switch_suspended`, `rsp` at the saved stack pointer
//! and `rbp` as saved, `gort_switch`'s CFI leads a DWARF unwinder into the goroutine's frames,
//! down to `gort_trampoline` (whose CFI ends the stack). [`framehop`] does the unwinding from
//! those registers with the loaded modules' `.eh_frame` (indexed by `.eh_frame_hdr`, found with
//! `dl_iterate_phdr`); the `backtrace` crate symbolises the return addresses afterwards.
//!
//! Soundness: a waker may resume the G on another M at any moment, and reading a stack that
//! its goroutine is writing is a data race. So the walk first pins the park with
//! [`G::try_scan`] (Go's `_Gscan` bit): a CAS `WAITING -> WAITING|SCAN` on the park's exact
//! sequence number. While the bit is set, every waker's `try_ready` CAS fails and spins, so no
//! M can make the G runnable, let alone run it; and `try_scan` succeeds only once the park's
//! unlock closure has returned (`G::parked`), so the parking M is done with the G's stack too.
//! The Acquire of the CAS (pairing with `set_waiting`'s Release) and of the `parked` load make
//! the goroutine's and the closure's writes visible, so every read of the stack is ordered
//! after every write to it. The walk reads only 8-byte words inside `[saved sp, stack top)`
//! (anything else is refused), collects at most [`MAX_FRAMES`] addresses, and `end_scan`
//! releases the pin (Release, pairing with the waker's CAS). Symbolising, which is slow,
//! happens after that. The pin is held for the unwinding only (microseconds; framehop takes
//! no lock once its module list is built, at most an allocation), so a waker spins briefly.

use crate::sched::g::G;
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};
use std::fmt::Write as _;

/// Frames kept per goroutine (Go prints 100).
pub const MAX_FRAMES: usize = 100;

/// An unwinder over the modules loaded when it was made (one per dump).
pub struct Walker {
    unwinder: UnwinderX86_64<Vec<u8>>,
    cache: CacheX86_64,
}

impl Walker {
    pub fn new() -> Walker {
        let mut unwinder = UnwinderX86_64::new();
        for m in modules() {
            unwinder.add_module(m);
        }
        Walker {
            unwinder,
            cache: CacheX86_64::new(),
        }
    }

    /// The return addresses of a parked G, innermost first (`gort_switch` itself left out),
    /// or None if its park could not be pinned (it is being woken, or still parking).
    pub fn walk_parked(&mut self, gp: &G) -> Option<Vec<FrameAddress>> {
        let seq = gp.try_scan()?;
        // SAFETY: the scan pin makes us the G's holder (`G::try_scan`) until `end_scan`.
        let (sp, top) = unsafe {
            let ctx = gp.ctx();
            (ctx.sp as u64, ctx.stack.as_ref().map(|s| s.top() as u64))
        };
        let frames = match top {
            Some(top) if sp != 0 && sp < top => self.walk(sp, top),
            _ => Vec::new(),
        };
        gp.end_scan(seq);
        Some(frames)
    }

    /// Unwinds a context suspended by `gort_switch` with stack pointer `sp`, on a stack whose
    /// top is `top`. The caller guarantees nobody writes `[sp, top)` meanwhile.
    fn walk(&mut self, sp: u64, top: u64) -> Vec<FrameAddress> {
        let mut read = |addr: u64| -> Result<u64, ()> {
            if addr < sp || !addr.is_multiple_of(8) || addr.checked_add(8).is_none_or(|e| e > top) {
                return Err(());
            }
            // SAFETY: an aligned word inside the pinned G's stack, which is mapped (the G owns
            // it while parked) and not written while the pin holds (see the module docs).
            Ok(unsafe { (addr as *const u64).read() })
        };
        let rbp = read(sp + crate::arch::SAVED_RBP as u64).unwrap_or(0);
        let regs = UnwindRegsX86_64::new(crate::arch::suspended_pc() as u64, sp, rbp);
        let pc = crate::arch::suspended_pc() as u64;
        let mut it = self
            .unwinder
            .iter_frames(pc, regs, &mut self.cache, &mut read);
        let mut frames = Vec::with_capacity(32);
        while let Ok(Some(f)) = it.next() {
            if matches!(f, FrameAddress::InstructionPointer(_)) {
                continue; // gort_switch itself
            }
            frames.push(f);
            if frames.len() == MAX_FRAMES {
                break;
            }
        }
        frames
    }
}

/// Writes one `function(...)` / `\tfile:line` pair per frame (inlined calls included), as Go.
pub fn write_frames(out: &mut String, frames: &[FrameAddress]) {
    for f in frames {
        let addr = f.address_for_lookup() as usize as *mut std::ffi::c_void;
        let mut any = false;
        backtrace::resolve(addr, |sym| {
            any = true;
            match sym.name() {
                Some(n) => {
                    let _ = writeln!(out, "{n:#}(...)");
                }
                None => {
                    let _ = writeln!(out, "{:#x}(...)", f.address());
                }
            }
            if let (Some(file), Some(line)) = (sym.filename(), sym.lineno()) {
                let _ = writeln!(out, "\t{}:{line}", file.display());
            }
        });
        if !any {
            let _ = writeln!(out, "{:#x}(...)\n\t?", f.address());
        }
    }
}

/// The loaded modules with an `.eh_frame_hdr`, their unwind sections copied (so that a later
/// `dlclose` cannot pull them from under the walker).
fn modules() -> Vec<Module<Vec<u8>>> {
    let mut out: Vec<Module<Vec<u8>>> = Vec::new();
    /// `dl_iterate_phdr`'s callback.
    ///
    /// # Safety
    /// `info` must be valid for the call and `data` must be a `&mut Vec<Module<Vec<u8>>>`.
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info record for the duration of the call,
        // and `data` is the `&mut Vec` we passed.
        unsafe {
            let out = &mut *data.cast::<Vec<Module<Vec<u8>>>>();
            if let Some(m) = module(&*info) {
                out.push(m);
            }
        }
        0
    }
    // SAFETY: `each` matches the callback type and only uses `out` through `data`.
    unsafe {
        libc::dl_iterate_phdr(Some(each), (&raw mut out).cast());
    }
    out
}

/// One module's unwind information, or None if it has no usable `.eh_frame_hdr`.
///
/// # Safety
/// `info` must describe a module that stays loaded for the duration of the call (true inside
/// `dl_iterate_phdr`'s callback).
unsafe fn module(info: &libc::dl_phdr_info) -> Option<Module<Vec<u8>>> {
    let base = info.dlpi_addr;
    // SAFETY: dl_iterate_phdr's contract: dlpi_phdr points at dlpi_phnum headers.
    let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
    let loads: Vec<(u64, u64)> = phdrs
        .iter()
        .filter(|p| p.p_type == libc::PT_LOAD)
        .map(|p| (p.p_vaddr, p.p_vaddr + p.p_memsz))
        .collect();
    let hdr = phdrs.iter().find(|p| p.p_type == libc::PT_GNU_EH_FRAME)?;
    let lo = loads.iter().map(|l| l.0).min()?;
    let hi = loads.iter().map(|l| l.1).max()?;
    let (hdr_svma, hdr_len) = (hdr.p_vaddr, hdr.p_memsz);
    // SAFETY: the PT_GNU_EH_FRAME segment is mapped for as long as the module is loaded.
    let hdr_bytes =
        unsafe { std::slice::from_raw_parts((base + hdr_svma) as *const u8, hdr_len as usize) };
    // Header: version 1, eh_frame_ptr encoding, fde count encoding, table encoding, then
    // eh_frame_ptr. Linkers write it pc-relative sdata4 (0x1b) or absolute udata4/sdata4.
    if hdr_bytes.len() < 8 || hdr_bytes[0] != 1 {
        return None;
    }
    let raw = i32::from_le_bytes(hdr_bytes[4..8].try_into().ok()?) as i64;
    let eh_svma = match hdr_bytes[1] {
        0x1b => (hdr_svma as i64 + 4 + raw) as u64,
        0x03 | 0x0b => raw as u64,
        _ => return None,
    };
    // `.eh_frame`'s length is not recorded: take the rest of its segment (framehop finds FDEs
    // through the header's table, so trailing bytes are never parsed as entries).
    let seg_end = loads.iter().find(|l| l.0 <= eh_svma && eh_svma < l.1)?.1;
    // SAFETY: `[eh_svma, seg_end)` lies inside a loaded PT_LOAD segment of this module.
    let eh = unsafe {
        std::slice::from_raw_parts((base + eh_svma) as *const u8, (seg_end - eh_svma) as usize)
    };
    let name = if info.dlpi_name.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null dlpi_name is a C string.
        unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) }
            .to_string_lossy()
            .into_owned()
    };
    let section_info = ExplicitModuleSectionInfo {
        base_svma: 0,
        eh_frame_svma: Some(eh_svma..seg_end),
        eh_frame: Some(eh.to_vec()),
        eh_frame_hdr_svma: Some(hdr_svma..hdr_svma + hdr_len),
        eh_frame_hdr: Some(hdr_bytes.to_vec()),
        ..Default::default()
    };
    Some(Module::new(name, base + lo..base + hi, base, section_info))
}
