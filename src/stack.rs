//! Goroutine stacks: carved from large arenas, a guard page under every stack, reused through
//! free lists.
//!
//! # Why arenas
//! Linux limits a process to `vm.max_map_count` mappings (65530 by default). One `mmap` per stack
//! plus one `mprotect` for its guard page costs two mappings each and dies near 32k stacks. We
//! reserve arenas of about [`ARENA_BYTES`] of address space with one `mmap(MAP_NORESERVE)` and cut
//! them into slots `[guard page | stack]`. The guard page is installed with
//! `madvise(MADV_GUARD_INSTALL)` (Linux >= 6.13), which writes markers into the page tables and
//! does not split the mapping: a million stacks cost about 130 mappings. On older kernels we fall
//! back to `mprotect(PROT_NONE)` per guard (two mappings per stack); when that runs out of
//! mappings the error says so and how to raise `vm.max_map_count`.
//!
//! # Invariants
//! * A [`Stack`] is owned by exactly one place at a time: a G (while it runs or is parked), a P's
//!   cache, or a size class's free list in [`StackPool`].
//! * The guard page directly below `Stack::base` is inaccessible for as long as the arena lives.
//! * Arenas are unmapped only when the pool is dropped, which the scheduler does only after every
//!   goroutine that ran on them is gone (see `Sched::shutdown`).
//! * Free stacks in the pool have had their pages returned to the kernel (`MADV_DONTNEED`),
//!   so a burst of a million goroutines does not pin a million pages once it is over: all of
//!   them (the cold list), or all but the top [`WARM_KEEP`] bytes for at most [`WARM_MAX`]
//!   stacks per size class (the warm list). Guard markers survive `MADV_DONTNEED`. The one
//!   exception is the hot list: at most [`HOT_BYTES`] of stacks per size class, kept as they
//!   were freed and reused first (see "Why a hot list").
//!
//! # Why a warm list
//! Every `madvise(MADV_DONTNEED)` flushes the TLB of each CPU running this process, with an
//! inter-processor interrupt; a reused stack then takes a page fault and a zeroed page for the
//! frame it touches first. Freeing and reusing stacks in a burst (skynet: a million goroutines
//! come and go) spent a third of its time there. A warm stack keeps its top pages (the ones
//! every goroutine touches), and its deep pages are released only if `mincore` says some were
//! touched, which for most goroutines they were not: no `madvise`, no interrupt, no fault.
//! Stacks beyond the warm bound return every page, all of a freed batch with one
//! `process_madvise` (one TLB flush for the whole batch instead of one per stack).

//!
//! # Why a hot list
//! Ps cache a few stacks each, but when goroutines start on one P and end on another (skynet:
//! one P's goroutines spawn children, the other P steals and runs them), stacks flow through
//! the pool in a steady stream: one P's cache overflows into it while the other's runs dry
//! and takes from it. The hot list lets that stream pass through without a system call; only
//! what exceeds it is trimmed as above, so the memory a burst leaves behind stays bounded (by
//! `HOT_BYTES` more than it would be without the list).

//!
//! # Carving in batches
//! A burst of new goroutines needs new slots, and each needs its guard installed: one system
//! call per stack, each flushing the TLB of the other CPUs running the process (skynet at 2 Ps
//! peaks at about 11,000 live stacks). An empty size class therefore carves [`CARVE_BATCH`]
//! slots at once and installs all their guards with one `process_madvise` (an iovec per guard
//! page), falling back to a `madvise` per slot where the kernel refuses it. The extra slots
//! wait on the cold list, which is what they are: no page resident.

use std::io;
use std::ptr::NonNull;
use std::sync::Mutex;

/// Page size. x86_64 Linux uses 4 KiB base pages; checked against `sysconf` in tests.
pub const PAGE: usize = 4096;
/// Smallest stack a goroutine may ask for.
pub const MIN_STACK: usize = 16 * 1024;
/// Largest stack a goroutine may ask for (Go's maximum on 64-bit).
pub const MAX_STACK: usize = 1 << 30;
/// Default goroutine stack size when neither the builder nor `GORT_STACK_SIZE` says otherwise.
///
/// Stacks cannot grow (Rust has no stack maps to move frames), so this is a trade-off: 64 KiB
/// holds ordinary code comfortably (a debug-build panic with a full backtrace needs under 32
/// KiB), while page tables cost about stride/512 bytes per live goroutine (136 bytes here).
/// Deep recursion needs `Goroutine::stack_size` or `GORT_STACK_SIZE`; overflowing is a clear
/// fatal error, never corruption.
pub const DEFAULT_STACK: usize = 64 * 1024;
/// Address space reserved per arena (not memory: pages are only backed when touched).
pub const ARENA_BYTES: usize = 1 << 30;
/// Bytes at the top of a warm free stack that stay resident (see "Why a warm list").
pub const WARM_KEEP: usize = 2 * PAGE;
/// Most warm stacks kept per size class: bounds the memory a burst can leave behind
/// (`WARM_MAX * WARM_KEEP` = 64 MiB).
pub const WARM_MAX: usize = 8192;
/// Bytes of stacks per size class kept hot: freed without returning any page, reused first (see
/// "Why a hot list"). 64 default-size stacks; none of a size above it.
pub const HOT_BYTES: usize = 4 << 20;
/// Slots carved (and guarded, with one system call) at a time when a size class runs dry;
/// see "Carving in batches".
pub const CARVE_BATCH: usize = 64;
/// `PIDFD_SELF_THREAD_GROUP` (Linux 6.14, include/uapi/linux/pidfd.h): this process, for
/// `process_madvise`.
const PIDFD_SELF: libc::c_int = -10001;
/// Ranges per `process_madvise` call (the kernel takes at most `UIO_MAXIOV` = 1024).
const MADVISE_BATCH: usize = 512;
/// Largest stack size that may be kept warm (`mincore` needs a byte per page).
const WARM_SIZE_MAX: usize = 1 << 20;
/// `madvise` advice that installs guard markers (Linux 6.13, include/uapi/asm-generic/mman-common.h).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Checks a requested stack size and rounds it up to whole pages.
pub fn validate_size(bytes: usize) -> io::Result<usize> {
    if !(MIN_STACK..=MAX_STACK).contains(&bytes) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "goroutine stack size {bytes} bytes is out of range: it must be between 16 KiB and 1 GiB"
            ),
        ));
    }
    Ok(bytes.div_ceil(PAGE) * PAGE)
}

/// One goroutine stack: `size` usable bytes starting at `base`, a guard page below `base`.
#[derive(Debug)]
pub struct Stack {
    /// Non-null, so that an `Option<Stack>` (in every G) takes no extra word.
    base: NonNull<u8>,
    size: usize,
}

// SAFETY: a Stack is plain memory owned by one place at a time (module invariants); moving that
// ownership between threads is fine.
unsafe impl Send for Stack {}

impl Stack {
    /// The exclusive upper end of the stack (16-byte aligned).
    pub fn top(&self) -> *mut u8 {
        // SAFETY: base + size is the end of the same slot inside one arena mapping.
        unsafe { self.base.as_ptr().add(self.size) }
    }

    /// Usable bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The guard page's address range `[start, end)`.
    pub fn guard(&self) -> (usize, usize) {
        (
            self.base.as_ptr() as usize - PAGE,
            self.base.as_ptr() as usize,
        )
    }
}

/// How guard pages are made on this kernel, decided once per process.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum GuardMode {
    /// `madvise(MADV_GUARD_INSTALL)`: no extra mappings.
    Madvise,
    /// `mprotect(PROT_NONE)`: two mappings per stack.
    Mprotect,
}

static GUARD_MODE: std::sync::OnceLock<GuardMode> = std::sync::OnceLock::new();

/// The guard-page mechanism in use (probed on first call).
pub fn guard_mode() -> GuardMode {
    *GUARD_MODE.get_or_init(|| {
        // Probe on a scratch mapping of two pages.
        // SAFETY: a fresh anonymous mapping we own and unmap below.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                2 * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return GuardMode::Mprotect;
            }
            let ok = libc::madvise(p, PAGE, MADV_GUARD_INSTALL) == 0;
            libc::munmap(p, 2 * PAGE);
            if ok {
                GuardMode::Madvise
            } else {
                GuardMode::Mprotect
            }
        }
    })
}

/// A reserved region cut into equal slots.
struct Arena {
    start: *mut u8,
    len: usize,
    /// Slots handed out so far (slots are carved in address order).
    carved: usize,
    slots: usize,
}

/// Stacks of one size.
struct SizeClass {
    size: usize,
    /// Free stacks as they were freed, pages and all (reused first; at most `HOT_BYTES`).
    hot: Vec<Stack>,
    /// Free stacks with their top `WARM_KEEP` bytes possibly resident (reused first).
    warm: Vec<Stack>,
    /// Free stacks with every page returned.
    free: Vec<Stack>,
    arenas: Vec<Arena>,
}

/// A runtime's stacks. Shared by its Ps; each P also keeps a small cache of default-size stacks
/// (see `sched::p`), so this lock is taken only when that cache is empty or full.
pub struct StackPool {
    classes: Mutex<Vec<SizeClass>>,
}

// SAFETY: raw pointers inside are only touched under the mutex.
unsafe impl Send for StackPool {}
// SAFETY: as above.
unsafe impl Sync for StackPool {}

impl StackPool {
    pub fn new() -> StackPool {
        StackPool {
            classes: Mutex::new(Vec::new()),
        }
    }

    /// Returns a stack of exactly `size` bytes (already validated and page-rounded).
    pub fn alloc(&self, size: usize) -> io::Result<Stack> {
        let mut classes = self.classes.lock().unwrap_or_else(|e| e.into_inner());
        let class = match classes.iter_mut().position(|c| c.size == size) {
            Some(i) => &mut classes[i],
            None => {
                classes.push(SizeClass {
                    size,
                    hot: Vec::new(),
                    warm: Vec::new(),
                    free: Vec::new(),
                    arenas: Vec::new(),
                });
                classes.last_mut().expect("just pushed")
            }
        };
        if let Some(s) = class
            .hot
            .pop()
            .or_else(|| class.warm.pop())
            .or_else(|| class.free.pop())
        {
            return Ok(s);
        }
        let stride = size + PAGE;
        let need_arena = class.arenas.last().is_none_or(|a| a.carved == a.slots);
        if need_arena {
            let slots = (ARENA_BYTES / stride).max(1);
            let len = slots * stride;
            // SAFETY: asking the kernel for a fresh private anonymous mapping.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                let e = io::Error::last_os_error();
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot reserve {} MiB of address space for goroutine stacks: {e} \
                         (check `ulimit -v` and vm.max_map_count)",
                        len >> 20
                    ),
                ));
            }
            class.arenas.push(Arena {
                start: p.cast(),
                len,
                carved: 0,
                slots,
            });
        }
        let arena = class.arenas.last_mut().expect("an arena exists");
        // Carve a batch (see "Carving in batches"); mprotect'ed guards cost two mappings
        // each, so on such kernels carve only what is asked for.
        let batch = if guard_mode() == GuardMode::Madvise {
            CARVE_BATCH
        } else {
            1
        };
        let n = batch.min(arena.slots - arena.carved);
        // SAFETY: carved + n <= slots, so every slot lies inside the arena mapping.
        let guards: Vec<*mut u8> = (0..n)
            .map(|i| unsafe { arena.start.add((arena.carved + i) * stride) })
            .collect();
        arena.carved += n;
        drop(classes);
        // The slots are ours now: install their guards without holding the pool's lock.
        // On failure they stay carved and unused: without a guard a slot must never hold a
        // stack, and its address space is all it costs.
        install_guards(&guards)?;
        // SAFETY: a stack starts one page above its slot's start, inside the same slot (so
        // the address is not null either).
        let mut stacks = guards.iter().map(|g| Stack {
            base: unsafe { NonNull::new_unchecked(g.add(PAGE)) },
            size,
        });
        let first = stacks.next().expect("carved at least one slot");
        let rest: Vec<Stack> = stacks.rev().collect();
        if !rest.is_empty() {
            // Fresh slots have no page resident: the cold list, popped in address order.
            let mut classes = self.classes.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = classes.iter_mut().find(|c| c.size == size) {
                c.free.extend(rest);
            }
        }
        Ok(first)
    }

    /// Takes back stacks no longer used: up to [`HOT_BYTES`] of them per size class as they
    /// are; the rest after returning their memory to the kernel: all of it, or, for up to
    /// [`WARM_MAX`] warm stacks per size class, all but the top pages (see the module docs).
    pub fn free_batch(&self, mut stacks: Vec<Stack>) {
        if stacks.is_empty() {
            return;
        }
        let size = stacks[0].size;
        // One look at the class: fill its hot list, then decide how many of the rest may stay
        // warm (racy with other frees once the lock is dropped: the bound is approximate).
        let mut warm_room = 0;
        if stacks.iter().all(|s| s.size == size) {
            let mut classes = self.classes.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = classes.iter_mut().find(|c| c.size == size) {
                let room = (HOT_BYTES / size).saturating_sub(c.hot.len());
                let rest = stacks.split_off(room.min(stacks.len()));
                c.hot.append(&mut stacks);
                stacks = rest;
                if size <= WARM_SIZE_MAX {
                    warm_room = WARM_MAX.saturating_sub(c.warm.len());
                }
            }
            if stacks.is_empty() {
                return;
            }
        }
        let cold = stacks.split_off(warm_room.min(stacks.len()));
        let warm = stacks;
        if !release_deep_batch(&warm) {
            for s in &warm {
                release_deep(s);
            }
        }
        release_all(cold.iter().collect());
        let mut classes = self.classes.lock().unwrap_or_else(|e| e.into_inner());
        for (s, is_warm) in warm
            .into_iter()
            .map(|s| (s, true))
            .chain(cold.into_iter().map(|s| (s, false)))
        {
            match classes.iter_mut().find(|c| c.size == s.size) {
                Some(c) if is_warm => c.warm.push(s),
                Some(c) => c.free.push(s),
                None => debug_assert!(false, "runtime: freed a stack of an unknown size class"),
            }
        }
    }

    /// Number of arenas (kernel mappings) currently reserved.
    #[cfg(test)]
    pub fn arenas(&self) -> usize {
        self.classes
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.arenas.len())
            .sum()
    }
}

/// Returns every page of `stacks` to the kernel: one range per run of adjacent slots, all of
/// them with [`madvise_self`] (one TLB flush per call on Linux 6.18, instead of one per range),
/// falling back to a `madvise` per range where the kernel refuses.
fn release_all(mut stacks: Vec<&Stack>) {
    stacks.sort_unstable_by_key(|s| s.base.as_ptr() as usize);
    let mut runs: Vec<libc::iovec> = Vec::new();
    let mut i = 0;
    while i < stacks.len() {
        // Grow a run of stacks whose slots are contiguous: [guard|stack][guard|stack]...
        let start = stacks[i].base.as_ptr() as usize;
        let mut end = start + stacks[i].size;
        let mut j = i + 1;
        while j < stacks.len() && stacks[j].base.as_ptr() as usize == end + PAGE {
            end = stacks[j].base.as_ptr() as usize + stacks[j].size;
            j += 1;
        }
        runs.push(libc::iovec {
            iov_base: start as *mut libc::c_void,
            iov_len: end - start,
        });
        i = j;
    }
    // SAFETY: every range covers stacks (and guard pages between them) that we own and nobody
    // runs on; MADV_DONTNEED keeps guard markers and mprotect'ed guards alike.
    if unsafe { madvise_self(&runs, libc::MADV_DONTNEED) } {
        return;
    }
    for r in &runs {
        // SAFETY: as above; advising a range twice (after a partial batch) is harmless.
        unsafe { libc::madvise(r.iov_base, r.iov_len, libc::MADV_DONTNEED) };
    }
}

/// Returns the pages of every stack of `stacks` below its top [`WARM_KEEP`] bytes, with
/// [`madvise_self`] (an untouched range costs the kernel a page-table walk and
/// no TLB flush). False if the kernel refused; then nothing was promised, and the caller
/// falls back to [`release_deep`] per stack.
fn release_deep_batch(stacks: &[Stack]) -> bool {
    let iov: Vec<libc::iovec> = stacks
        .iter()
        .map(|s| libc::iovec {
            iov_base: s.base.as_ptr().cast(),
            iov_len: s.size - WARM_KEEP,
        })
        .collect();
    // SAFETY: every range is the deep part of a stack we own and nobody runs on.
    unsafe { madvise_self(&iov, libc::MADV_DONTNEED) }
}

/// `madvise` over several ranges of this process with one `process_madvise` per
/// [`MADVISE_BATCH`] ranges; true if the kernel advised every byte (false: refused, e.g. before
/// Linux 6.14, or partly done).
///
/// # Safety
/// As for `madvise` with `advice` on each range: the caller owns them, and nobody uses them in
/// a way the advice would break.
unsafe fn madvise_self(ranges: &[libc::iovec], advice: libc::c_int) -> bool {
    ranges.chunks(MADVISE_BATCH).all(|chunk| {
        let total: usize = chunk.iter().map(|v| v.iov_len).sum();
        // SAFETY: forwarded contract; PIDFD_SELF names this very process (never a parent,
        // even after a fork), and the iovecs outlive the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                PIDFD_SELF,
                chunk.as_ptr(),
                chunk.len(),
                advice,
                0,
            )
        };
        r == total as libc::c_long
    })
}

/// Returns the pages of `s` below its top [`WARM_KEEP`] bytes, if any of them is resident.
fn release_deep(s: &Stack) {
    let deep = s.size - WARM_KEEP;
    let mut resident = [0u8; WARM_SIZE_MAX / PAGE];
    let pages = deep / PAGE;
    // SAFETY: the range is page-aligned and inside our mapping; the vector has a byte per page.
    let rc = unsafe { libc::mincore(s.base.as_ptr().cast(), deep, resident.as_mut_ptr()) };
    if rc == 0 && resident[..pages].iter().all(|b| b & 1 == 0) {
        return; // nothing touched down there: nothing to return
    }
    // SAFETY: the range is part of a stack we own and nobody runs on.
    unsafe {
        libc::madvise(s.base.as_ptr().cast(), deep, libc::MADV_DONTNEED);
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        let classes = self.classes.get_mut().unwrap_or_else(|e| e.into_inner());
        for c in classes.drain(..) {
            for a in c.arenas {
                // SAFETY: the scheduler drops the pool only when no goroutine can run on these
                // stacks any more (module invariants).
                unsafe {
                    libc::munmap(a.start.cast(), a.len);
                }
            }
        }
    }
}

/// Installs the guard pages of freshly carved slots: with one `process_madvise` for all of
/// them where the kernel allows it (Linux >= 6.14 for `PIDFD_SELF`), else one by one.
fn install_guards(pages: &[*mut u8]) -> io::Result<()> {
    if pages.len() > 1 && guard_mode() == GuardMode::Madvise {
        let iov: Vec<libc::iovec> = pages
            .iter()
            .map(|&p| libc::iovec {
                iov_base: p.cast(),
                iov_len: PAGE,
            })
            .collect();
        // SAFETY: every range is the first page of a slot we just carved and nobody uses.
        if unsafe { madvise_self(&iov, MADV_GUARD_INSTALL) } {
            return Ok(());
        }
        // Not supported here, or a partial result: installing a guard twice is harmless.
    }
    pages.iter().try_for_each(|&p| install_guard(p))
}

fn install_guard(page: *mut u8) -> io::Result<()> {
    // SAFETY: `page` is the first page of a slot we just carved and nobody uses.
    let r = unsafe {
        match guard_mode() {
            GuardMode::Madvise => libc::madvise(page.cast(), PAGE, MADV_GUARD_INSTALL),
            GuardMode::Mprotect => libc::mprotect(page.cast(), PAGE, libc::PROT_NONE),
        }
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENOMEM) && guard_mode() == GuardMode::Mprotect {
        return Err(io::Error::new(
            io::ErrorKind::OutOfMemory,
            "out of kernel memory mappings for goroutine guard pages: vm.max_map_count is \
             exhausted (this kernel lacks MADV_GUARD_INSTALL, so each stack costs two mappings); \
             raise it with `sysctl vm.max_map_count=<n>` or use Linux >= 6.13",
        ));
    }
    Err(io::Error::new(
        e.kind(),
        format!("cannot install a goroutine stack guard page: {e}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_matches_the_kernel() {
        // SAFETY: sysconf has no preconditions.
        assert_eq!(unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize, PAGE);
    }

    #[test]
    fn sizes_are_validated_and_rounded() {
        assert_eq!(validate_size(MIN_STACK).unwrap(), MIN_STACK);
        assert_eq!(validate_size(MIN_STACK + 1).unwrap(), MIN_STACK + PAGE);
        assert_eq!(
            validate_size(MIN_STACK - 1).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            validate_size(MAX_STACK + 1).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            validate_size(0).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn stacks_share_an_arena_and_are_reused() {
        let pool = StackPool::new();
        let a = pool.alloc(MIN_STACK).unwrap();
        let b = pool.alloc(MIN_STACK).unwrap();
        assert_eq!(
            b.base.as_ptr() as usize,
            a.base.as_ptr() as usize + MIN_STACK + PAGE
        );
        assert_eq!(pool.arenas(), 1);
        // SAFETY: the stack is ours; write its top and bottom byte.
        unsafe {
            a.top().sub(1).write(7);
            a.base.as_ptr().write(7);
        }
        let base = a.base;
        let hot = fill_hot(&pool, MIN_STACK);
        pool.free_batch(vec![b]);
        pool.free_batch(vec![a]);
        // Past the hot list, the last freed comes back first, warm: its deep pages were
        // returned (zero again), its top pages kept.
        let _hot = drain_hot(&pool, MIN_STACK, &hot);
        let c = pool.alloc(MIN_STACK).unwrap();
        assert_eq!(c.base, base);
        // SAFETY: as above.
        unsafe {
            assert_eq!(
                c.base.as_ptr().read(),
                0,
                "a warm stack's deep page was not returned"
            );
            assert_eq!(
                c.top().sub(1).read(),
                7,
                "a warm stack's top page was returned"
            );
        }
    }

    /// Fills the hot list of `size` with fresh stacks; returns their bases.
    fn fill_hot(pool: &StackPool, size: usize) -> Vec<usize> {
        let stacks: Vec<Stack> = (0..HOT_BYTES / size)
            .map(|_| pool.alloc(size).unwrap())
            .collect();
        let bases = stacks.iter().map(|s| s.base.as_ptr() as usize).collect();
        pool.free_batch(stacks);
        bases
    }

    /// Takes the hot list's stacks back out (checking that they are the ones `fill_hot` put
    /// there), so that the next allocation reaches the warm list.
    fn drain_hot(pool: &StackPool, size: usize, hot: &[usize]) -> Vec<Stack> {
        let out: Vec<Stack> = hot.iter().map(|_| pool.alloc(size).unwrap()).collect();
        for s in &out {
            assert!(
                hot.contains(&(s.base.as_ptr() as usize)),
                "the hot list was not reused first"
            );
        }
        out
    }

    /// Whether this process can read `len` bytes at `addr` (a guard page cannot be read).
    fn readable(addr: usize, len: usize) -> bool {
        let mut buf = vec![0u8; len];
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: len,
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: len,
        };
        // SAFETY: reads through the kernel, which fails with EFAULT instead of faulting.
        let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
        n == len as isize
    }

    #[test]
    fn every_stack_of_a_carved_batch_has_its_guard() {
        let pool = StackPool::new();
        let stacks: Vec<Stack> = (0..2 * CARVE_BATCH + 1)
            .map(|_| pool.alloc(MIN_STACK).unwrap())
            .collect();
        for (i, s) in stacks.iter().enumerate() {
            let (g, _) = s.guard();
            assert!(!readable(g, PAGE), "stack {i}: its guard page is readable");
            assert!(
                readable(s.base.as_ptr() as usize, PAGE),
                "stack {i}: its lowest page is not"
            );
        }
        // Handed out in address order, one slot after the other.
        for w in stacks.windows(2) {
            assert_eq!(
                w[1].base.as_ptr() as usize,
                w[0].base.as_ptr() as usize + MIN_STACK + PAGE
            );
        }
    }

    #[test]
    fn hot_stacks_keep_their_pages_are_reused_first_and_are_bounded() {
        let pool = StackPool::new();
        let n = HOT_BYTES / MIN_STACK;
        let stacks: Vec<Stack> = (0..=n).map(|_| pool.alloc(MIN_STACK).unwrap()).collect();
        for s in &stacks {
            // SAFETY: the stacks are ours; write their top and bottom byte.
            unsafe {
                s.top().sub(1).write(7);
                s.base.as_ptr().write(7);
            }
        }
        let over = stacks.last().unwrap().base;
        pool.free_batch(stacks);
        // The first n stayed hot, every page kept; the one past the bound went warm.
        for _ in 0..n {
            let s = pool.alloc(MIN_STACK).unwrap();
            assert_ne!(
                s.base, over,
                "a stack past the hot bound was reused before the hot ones"
            );
            // SAFETY: as above.
            assert_eq!(
                unsafe { s.base.as_ptr().read() },
                7,
                "a hot stack lost its deep page"
            );
        }
        let s = pool.alloc(MIN_STACK).unwrap();
        assert_eq!(s.base, over);
        // SAFETY: as above.
        assert_eq!(
            unsafe { s.base.as_ptr().read() },
            0,
            "a stack past the hot bound kept its pages"
        );
    }

    #[test]
    fn warm_stacks_are_bounded_and_the_rest_return_every_page() {
        let pool = StackPool::new();
        let mut stacks: Vec<Stack> = (0..WARM_MAX + 3)
            .map(|_| pool.alloc(MIN_STACK).unwrap())
            .collect();
        for s in &stacks {
            // SAFETY: the stacks are ours; write their top byte.
            unsafe { s.top().sub(1).write(7) };
        }
        // The batch's tail goes cold: make it three slots that are not adjacent (three ranges
        // released by one call).
        let cold: Vec<Stack> = [4, 2, 0].into_iter().map(|i| stacks.remove(i)).collect();
        let cold_bases: Vec<usize> = cold.iter().map(|s| s.base.as_ptr() as usize).collect();
        stacks.extend(cold);
        let hot = fill_hot(&pool, MIN_STACK);
        pool.free_batch(stacks);
        let _hot = drain_hot(&pool, MIN_STACK, &hot);
        // WARM_MAX stacks kept their top page; the ones past the bound (the cold list) returned
        // theirs.
        let again: Vec<Stack> = (0..WARM_MAX + 3)
            .map(|_| pool.alloc(MIN_STACK).unwrap())
            .collect();
        for s in &again {
            // SAFETY: as above.
            let top = unsafe { s.top().sub(1).read() };
            if cold_bases.contains(&(s.base.as_ptr() as usize)) {
                assert_eq!(top, 0, "a cold stack kept its top page");
            } else {
                assert_eq!(top, 7, "a warm stack lost its top page");
            }
        }
        let reused = again
            .iter()
            .filter(|s| cold_bases.contains(&(s.base.as_ptr() as usize)))
            .count();
        assert_eq!(reused, 3);
    }
}
