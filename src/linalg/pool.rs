//! A small persistent thread pool for splitting one GEMM across cores without spawning
//! threads per call (spawn + join costs tens of microseconds, as much as a whole
//! minibatch-10 GEMM).
//!
//! `run(parts, f)` calls `f(0..parts)` on the calling thread and the workers, each claiming
//! the next unclaimed part, and returns when all are done. Workers spin briefly for new work (the next
//! GEMM usually follows within microseconds), then sleep on a condition variable.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

/// A job: a type-erased pointer to the caller's `&(dyn Fn(usize) + Sync)`, valid until
/// `remaining` drops to zero.
#[derive(Clone, Copy)]
struct Job {
    f: *const (dyn Fn(usize) + Sync),
    parts: usize,
}
// SAFETY: the pointee is `Sync`, and `run` keeps it alive until every worker is done.
unsafe impl Send for Job {}

struct Shared {
    job: Mutex<(u64, Option<Job>)>,
    wake: Condvar,
    generation: AtomicUsize,
    remaining: AtomicUsize,
    /// The next unclaimed part of the current job.
    next: AtomicUsize,
    /// Workers asleep on `wake` (changed only under the `job` lock), so that `run` makes
    /// the wake-up system call only when someone sleeps.
    sleepers: AtomicUsize,
    workers: usize,
}

static POOL: OnceLock<&'static Shared> = OnceLock::new();

thread_local! {
    /// True while this thread runs a part of a pool job: a nested [`run`] (a GEMM inside a
    /// data-parallel task) then runs serially instead of waiting for the busy pool.
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

/// True when called from inside a part of a pool job.
pub(crate) fn in_task() -> bool {
    IN_TASK.with(|t| t.get())
}

/// Runs `f(part)` with the in-task flag set.
fn task(f: &(dyn Fn(usize) + Sync), part: usize) {
    let was = IN_TASK.with(|t| t.replace(true));
    f(part);
    IN_TASK.with(|t| t.set(was));
}
/// Serialises concurrent callers (the pool runs one job at a time).
static CALLER: Mutex<()> = Mutex::new(());

fn pool(workers: usize) -> &'static Shared {
    POOL.get_or_init(|| {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            job: Mutex::new((0, None)),
            wake: Condvar::new(),
            generation: AtomicUsize::new(0),
            remaining: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            workers,
        }));
        for w in 0..workers {
            std::thread::Builder::new()
                .name(format!("drsae-gemm-{w}"))
                .spawn(move || worker(shared))
                .expect("spawn GEMM worker");
        }
        shared
    })
}

fn worker(shared: &'static Shared) {
    let mut seen = 0u64;
    loop {
        // Spin a little, then sleep until the generation changes.
        let mut spins = 0;
        while shared.generation.load(Ordering::Acquire) as u64 == seen && spins < 20_000 {
            std::hint::spin_loop();
            spins += 1;
        }
        let job = {
            let mut guard = shared.job.lock().unwrap_or_else(|e| e.into_inner());
            while guard.0 == seen {
                shared.sleepers.fetch_add(1, Ordering::Relaxed);
                guard = shared.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
                shared.sleepers.fetch_sub(1, Ordering::Relaxed);
            }
            seen = guard.0;
            guard.1
        };
        if let Some(job) = job {
            // SAFETY: `run` does not return (so the closure stays alive) until `remaining`
            // reaches zero, which happens only after these calls return.
            let f = unsafe { &*job.f };
            let run = || claim_parts(shared, job.parts, f);
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).is_err() {
                eprintln!("drsae: a GEMM worker panicked");
            }
            shared.remaining.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Calls `f` on unclaimed parts of the current job until none is left.
fn claim_parts(shared: &Shared, parts: usize, f: &(dyn Fn(usize) + Sync)) {
    loop {
        let part = shared.next.fetch_add(1, Ordering::AcqRel);
        if part >= parts {
            return;
        }
        task(f, part);
    }
}

/// Runs `f(i)` for every `i` in `0..parts` on the calling thread and the pool's workers
/// (each participant claims the next unclaimed part when it is free, so a descheduled or
/// slower core holds up at most one part); returns when all calls have returned. The pool size is fixed at the first call (`threads − 1` workers).
///
/// Nested calls (from inside a part) run serially on the calling thread.
pub(crate) fn run(threads: usize, parts: usize, f: &(dyn Fn(usize) + Sync)) {
    if parts <= 1 || threads <= 1 || in_task() {
        (0..parts).for_each(|p| task(f, p));
        return;
    }
    let shared = pool(threads - 1);
    let _serial = CALLER.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY (lifetime erasure): the pointer is only dereferenced by workers before they
    // decrement `remaining`, and we wait for `remaining == 0` below before returning, so
    // `f` outlives every use.
    let job = Job {
        f: unsafe {
            std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(f)
        } as *const _,
        parts,
    };
    shared.remaining.store(shared.workers, Ordering::Release);
    shared.next.store(0, Ordering::Release);
    {
        let mut guard = shared.job.lock().unwrap_or_else(|e| e.into_inner());
        guard.0 += 1;
        guard.1 = Some(job);
        shared.generation.store(guard.0 as usize, Ordering::Release);
        // A worker about to sleep increments `sleepers` under this lock before waiting, so
        // reading it here cannot miss one.
        if shared.sleepers.load(Ordering::Relaxed) > 0 {
            shared.wake.notify_all();
        }
    }
    claim_parts(shared, parts, f);
    let mut spins = 0u32;
    while shared.remaining.load(Ordering::Acquire) != 0 {
        // Spin while the workers are likely running; yield if one was descheduled (an
        // oversubscribed machine) rather than burn the core it needs.
        spins += 1;
        if spins < 50_000 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// A raw pointer handed to the pool's threads, each writing a disjoint block of the
/// pointee; every job finishes before the call that created it returns.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut f32);
// SAFETY: used only to hand disjoint blocks of one matrix to the pool's threads, which all
// finish before the owning call returns.
unsafe impl Send for SendPtr {}
// SAFETY: as above; only the pointer value is shared, never the pointee.
unsafe impl Sync for SendPtr {}

/// Runs `f(start, end)` for the blocks `[i·chunk, min((i+1)·chunk, len))` of `0..len` on up
/// to `threads` threads (see [`run`]).
pub(crate) fn run_blocks(
    threads: usize,
    len: usize,
    chunk: usize,
    f: &(dyn Fn(usize, usize) + Sync),
) {
    let chunk = chunk.max(1);
    run(threads, len.div_ceil(chunk), &|i| {
        let start = i * chunk;
        if start < len {
            f(start, (start + chunk).min(len));
        }
    });
}

/// Runs `f(start, end)` over a partition of `0..len` into at most `threads` contiguous
/// blocks of equal size — in parallel only when `work ≥ min_work` and not already inside a
/// pool task, otherwise as one block on the calling thread.
pub(crate) fn run_split(
    threads: usize,
    len: usize,
    work: usize,
    min_work: usize,
    f: &(dyn Fn(usize, usize) + Sync),
) {
    let threads = if work >= min_work && !in_task() {
        threads.min(len)
    } else {
        1
    };
    if threads <= 1 {
        f(0, len);
        return;
    }
    run_blocks(threads, len, len.div_ceil(threads), f);
}
