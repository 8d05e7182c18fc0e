//! A small persistent thread pool for splitting one GEMM across cores without spawning
//! threads per call (spawn + join costs tens of microseconds, as much as a whole
//! minibatch-10 GEMM).
//!
//! `run(parts, f)` calls `f(0..parts)` on the calling thread and the workers, each claiming
//! the next unclaimed part, and returns when all are done. Workers spin briefly for new work (the next
//! GEMM usually follows within microseconds), then sleep on a condition variable.
//!
//! # Panics
//!
//! The contract is that of `std::thread::scope` (and rayon's scopes): a panic in a part
//! reaches the caller of [`run`] only after every part has finished. Every part is called
//! exactly once even when others panic (each part's panic is caught where it runs, on the
//! caller or on a worker); once all parts have returned or unwound, `run` resumes the
//! first caught panic on the calling thread with its payload (later payloads of the same
//! job are dropped). No part of the result is ever silently left unwritten: either every
//! part returned normally, or `run` panics. Workers survive a panicking part, and the pool
//! serves the next job as usual.
//!
//! Soundness does not rest on that catching alone: `run` erases the closure's lifetime,
//! and a drop guard closes the job and waits until every worker that entered it has left
//! before `run` returns *or unwinds*, so no worker touches the closure or the caller's
//! buffers after `run` is left by either path.
//!
//! # Oversubscribed machines
//!
//! A worker takes part in a job only if it *enters* it while the job is open; the caller
//! closes the job once every part is claimed and then waits only for the workers that
//! entered, which are running parts. A worker that was not scheduled in time (another
//! process holds its core) simply misses the job: the caller never waits for a thread the
//! operating system has not run, which would cost a scheduler time slice per GEMM.

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

/// A caught panic's payload.
type Payload = Box<dyn Any + Send + 'static>;

/// A job: a type-erased pointer to the caller's `&(dyn Fn(usize) + Sync)`, valid while
/// the job is open or any worker is inside it (see [`Shared::state`]). (The pointer stays
/// in `Shared::job` after that, dangling, but is dereferenced only by a worker that entered
/// the open job of the same generation.)
#[derive(Clone, Copy)]
struct Job {
    f: *const (dyn Fn(usize) + Sync),
    parts: usize,
}
// SAFETY: the pointee is `Sync`, and `run` keeps it alive (by waiting, on return and on
// unwind alike) until every worker is done with it.
unsafe impl Send for Job {}

struct Shared {
    job: Mutex<(u64, Option<Job>)>,
    wake: Condvar,
    generation: AtomicUsize,
    /// The current job's generation (high bits), a closed flag ([`CLOSED`]) and the number
    /// of workers inside it (low bits, [`INSIDE`]): a worker enters only an open job of the
    /// generation it read, by a compare-and-swap that also counts it; the caller closes the
    /// job once every part is claimed and waits for the count to drop to zero.
    state: AtomicU64,
    /// The next unclaimed part of the current job.
    next: AtomicUsize,
    /// Workers asleep on `wake` (changed only under the `job` lock), so that `run` makes
    /// the wake-up system call only when someone sleeps.
    sleepers: AtomicUsize,
    /// Set when a part of the current job panicked (its payload is in `panic`), so that
    /// `run` looks at the `panic` slot only then.
    panicked: AtomicBool,
    /// The first caught panic of the current job.
    panic: Mutex<Option<Payload>>,
    /// The number of worker threads (read by the tests, which size their jobs by it).
    #[cfg_attr(not(test), allow(dead_code))]
    workers: usize,
}

/// [`Shared::state`]'s closed flag.
const CLOSED: u64 = 1 << 31;
/// [`Shared::state`]'s count of workers inside the job.
const INSIDE: u64 = CLOSED - 1;
/// [`Shared::state`]'s generation, from its high 32 bits (the job counter modulo 2³²).
fn state_generation(state: u64) -> u64 {
    state >> 32
}

impl Shared {
    /// Keeps the first panic of the job; never unwinds.
    fn record_panic(&self, payload: Payload) {
        let extra = {
            let mut slot = self.panic.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(payload);
                None
            } else {
                Some(payload)
            }
        };
        self.panicked.store(true, Ordering::Release);
        // A payload whose destructor panics must not unwind out of here (that would kill a
        // worker or skip the caller's wait); leak that second payload instead.
        if let Err(e) = catch_unwind(AssertUnwindSafe(move || drop(extra))) {
            std::mem::forget(e);
        }
    }

    /// Takes the job's first panic, if any. Called only by `run`, under `CALLER`, when no
    /// worker is in a job (so a plain load and store suffice: no read-modify-write on the
    /// fast path).
    fn take_panic(&self) -> Option<Payload> {
        if !self.panicked.load(Ordering::Acquire) {
            return None;
        }
        self.panicked.store(false, Ordering::Relaxed);
        self.panic.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
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

/// Restores the in-task flag to its value before [`task`] when dropped, on unwind too.
struct RestoreInTask(bool);

impl Drop for RestoreInTask {
    fn drop(&mut self) {
        IN_TASK.with(|t| t.set(self.0));
    }
}

/// Runs `f(part)` with the in-task flag set (and restored afterwards, even if `f` panics).
fn task(f: &(dyn Fn(usize) + Sync), part: usize) {
    let _restore = RestoreInTask(IN_TASK.with(|t| t.replace(true)));
    f(part);
}

/// Runs `f(part)`, catching a panic.
fn call_part(f: &(dyn Fn(usize) + Sync), part: usize) -> Result<(), Payload> {
    catch_unwind(AssertUnwindSafe(|| task(f, part)))
}

/// Serialises concurrent callers (the pool runs one job at a time). It guards no data, and
/// the pool's state is consistent whenever it is released (the job's guard has waited for
/// every worker), so a poisoned lock is simply taken over.
static CALLER: Mutex<()> = Mutex::new(());

fn pool(workers: usize) -> &'static Shared {
    POOL.get_or_init(|| {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            job: Mutex::new((0, None)),
            wake: Condvar::new(),
            generation: AtomicUsize::new(0),
            state: AtomicU64::new(CLOSED),
            next: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            panic: Mutex::new(None),
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
        let Some(job) = job else { continue };
        if enter(shared, seen) {
            // SAFETY: this worker entered the open job of generation `seen`, whose closure
            // `run` keeps alive (on return and on unwind) until every worker inside has
            // left, which this one does only after these calls return.
            let f = unsafe { &*job.f };
            // `claim_parts` catches every part's panic and does not unwind itself; the
            // outer catch only makes sure, should it ever unwind, that this worker still
            // reports the failure and counts itself done instead of dying (which would
            // hang every later `run`).
            let run = AssertUnwindSafe(|| claim_parts(shared, job.parts, f));
            if let Err(payload) = catch_unwind(run) {
                shared.record_panic(payload);
            }
            // Release: the caller that sees no worker inside sees this worker's parts (and
            // its recorded panic). Nothing of the job is touched after this.
            shared.state.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Enters the job of generation `generation` if it is still open, counting this worker
/// in; false if the job is closed or already replaced (the worker then skips it).
fn enter(shared: &Shared, generation: u64) -> bool {
    let mut state = shared.state.load(Ordering::Acquire);
    loop {
        if state_generation(state) != generation & 0xffff_ffff || state & CLOSED != 0 {
            return false;
        }
        match shared.state.compare_exchange_weak(
            state,
            state + 1,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return true,
            Err(now) => state = now,
        }
    }
}

/// Calls `f` on unclaimed parts of the current job until none is left, recording the
/// first panic in `shared` and going on with the next part (every part runs).
fn claim_parts(shared: &Shared, parts: usize, f: &(dyn Fn(usize) + Sync)) {
    loop {
        let part = shared.next.fetch_add(1, Ordering::AcqRel);
        if part >= parts {
            return;
        }
        if let Err(payload) = call_part(f, part) {
            shared.record_panic(payload);
        }
    }
}

/// Closes the current job and waits for every worker inside it to leave when dropped — on
/// the normal path and when `run` unwinds — so that the closure and the caller's buffers
/// outlive every use.
struct Join<'a>(&'a Shared);

impl Join<'_> {
    fn wait(&self) {
        // No worker enters after this; those inside run parts they claimed (or find none
        // left and leave at once).
        self.0.state.fetch_or(CLOSED, Ordering::AcqRel);
        let mut spins = 0u32;
        while self.0.state.load(Ordering::Acquire) & INSIDE != 0 {
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

    /// Waits for the workers and returns the job's first panic, if a part panicked.
    fn finish(self) -> Option<Payload> {
        self.wait();
        self.0.take_panic()
    }
}

impl Drop for Join<'_> {
    fn drop(&mut self) {
        // After `finish` this returns at once. When `run` unwinds instead (nothing in it
        // is expected to, as every part's panic is caught), the workers still claim and run
        // the parts the caller left, and this waits for them; a panic they recorded is
        // then dropped at the next job's start, since the caller already unwinds with
        // another one.
        self.wait();
    }
}

/// Runs `f(i)` for every `i` in `0..parts` on the calling thread and the pool's workers
/// (each participant claims the next unclaimed part when it is free, so a descheduled or
/// slower core holds up at most one part); returns when all calls have returned. The pool
/// size is fixed at the first call (`threads − 1` workers).
///
/// Nested calls (from inside a part) run serially on the calling thread.
///
/// # Panics
/// If a part panics: after every part has finished (every part runs, on this path and on
/// the serial one), with the first caught panic's payload — see the [module
/// docs](self).
pub(crate) fn run(threads: usize, parts: usize, f: &(dyn Fn(usize) + Sync)) {
    if parts <= 1 || threads <= 1 || in_task() {
        let mut first = None;
        for p in 0..parts {
            if let Err(payload) = call_part(f, p) {
                first.get_or_insert(payload);
            }
        }
        if let Some(payload) = first {
            resume_unwind(payload);
        }
        return;
    }
    let shared = pool(threads - 1);
    let panic = {
        let _serial = CALLER.lock().unwrap_or_else(|e| e.into_inner());
        // A panic left over from a job that unwound out of `run` (see `Join::drop`).
        drop(shared.take_panic());
        // SAFETY (lifetime erasure): the pointer is only dereferenced by workers that
        // entered the open job and before they leave it, and `join` below closes the job
        // and waits until no worker is inside before this function returns or unwinds, so
        // `f` outlives every use.
        let job = Job {
            f: unsafe {
                std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(f)
            } as *const _,
            parts,
        };
        shared.next.store(0, Ordering::Release);
        {
            let mut guard = shared.job.lock().unwrap_or_else(|e| e.into_inner());
            guard.0 += 1;
            guard.1 = Some(job);
            // The previous job is closed with nobody inside (its `run` waited), so the new
            // one opens with a count of zero.
            shared
                .state
                .store((guard.0 & 0xffff_ffff) << 32, Ordering::Release);
            shared.generation.store(guard.0 as usize, Ordering::Release);
            // A worker about to sleep increments `sleepers` under this lock before waiting,
            // so reading it here cannot miss one.
            if shared.sleepers.load(Ordering::Relaxed) > 0 {
                shared.wake.notify_all();
            }
        }
        // From here on the workers may use `f`: nothing between the publication above and
        // this guard can unwind.
        let join = Join(shared);
        claim_parts(shared, parts, f);
        join.finish()
        // `_serial` is released here, before the panic is resumed, so it is not poisoned.
    };
    if let Some(payload) = panic {
        resume_unwind(payload);
    }
}

/// A raw pointer handed to the pool's threads, each writing a disjoint block of the
/// pointee; every job finishes before the call that created it returns or unwinds.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut f32);
// SAFETY: used only to hand disjoint blocks of one matrix to the pool's threads, which all
// finish before the owning call returns or unwinds (`run` waits on both paths).
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::time::{Duration, Instant};

    /// Parts for a job that needs both the caller and a worker to run a part: more than
    /// the workers, so that they cannot claim every part before the caller does. Forces a
    /// pool with ≥ 1 worker (the size is fixed by whichever test calls `pool` first).
    fn parts_for_pool() -> usize {
        let shared = pool(2);
        assert!(shared.workers >= 1, "the pool has no workers");
        shared.workers + 3
    }

    /// Spins until `flag` is set; panics after a generous timeout rather than hang.
    fn wait_for(flag: &AtomicBool, what: &str) {
        let start = Instant::now();
        while !flag.load(Ordering::Acquire) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// A pool job in which the caller and at least one worker each run a part (each waits
    /// until the other side has started one), and the first part on the panicking side
    /// (`on_worker`: a worker; else the caller) panics; the others sleep a few ms, then
    /// record completion. Returns the part that panicked and the completion flags as seen
    /// right after `run` unwound.
    fn job_panicking(on_worker: bool) -> (usize, Vec<bool>) {
        let parts = parts_for_pool();
        let caller = std::thread::current().id();
        let done: Vec<AtomicBool> = (0..parts).map(|_| AtomicBool::new(false)).collect();
        let calls = AtomicUsize::new(0);
        let (caller_ran, worker_ran) = (AtomicBool::new(false), AtomicBool::new(false));
        let panicked = AtomicUsize::new(usize::MAX);
        let result = catch_unwind(AssertUnwindSafe(|| {
            run(3, parts, &|p| {
                calls.fetch_add(1, Ordering::Relaxed);
                let mine = std::thread::current().id() == caller;
                if mine {
                    caller_ran.store(true, Ordering::Release);
                    wait_for(&worker_ran, "a worker");
                } else {
                    assert!(in_task());
                    worker_ran.store(true, Ordering::Release);
                    wait_for(&caller_ran, "the caller");
                }
                if mine != on_worker
                    && panicked
                        .compare_exchange(usize::MAX, p, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    panic!("part {p} panics on purpose");
                }
                // Slow enough that a `run` that did not wait would unwind first.
                std::thread::sleep(Duration::from_millis(5));
                done[p].store(true, Ordering::Release);
            });
        }));
        // Read before anything else can happen: these are the states as `run` left them.
        let done: Vec<bool> = done.iter().map(|d| d.load(Ordering::Acquire)).collect();
        let payload = result.expect_err("the panic reaches the caller of run");
        let bad = panicked.load(Ordering::Acquire);
        assert!(bad < parts, "no part panicked");
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or("<not a String>");
        assert_eq!(
            msg,
            format!("part {bad} panics on purpose"),
            "the part's payload"
        );
        assert_eq!(
            calls.load(Ordering::Relaxed),
            parts,
            "every part is called once"
        );
        assert!(!in_task(), "the in-task flag is restored on the caller");
        (bad, done)
    }

    /// Every part but the panicking one has finished; a normal job afterwards is correct
    /// and runs on a worker too (the workers survived).
    fn check_after_panic(bad: usize, done: &[bool]) {
        for (p, &d) in done.iter().enumerate() {
            assert_eq!(d, p != bad, "part {p} (part {bad} panicked)");
        }
        let parts = parts_for_pool();
        let caller = std::thread::current().id();
        let out: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
        let (caller_ran, worker_ran) = (AtomicBool::new(false), AtomicBool::new(false));
        run(3, parts, &|p| {
            if std::thread::current().id() == caller {
                caller_ran.store(true, Ordering::Release);
                wait_for(&worker_ran, "a worker");
            } else {
                worker_ran.store(true, Ordering::Release);
                wait_for(&caller_ran, "the caller");
            }
            out[p].fetch_add(p * p + 1, Ordering::Relaxed);
        });
        let out: Vec<usize> = out.iter().map(|o| o.load(Ordering::Relaxed)).collect();
        let want: Vec<usize> = (0..parts).map(|p| p * p + 1).collect();
        assert_eq!(out, want);
    }

    #[test]
    fn panic_in_a_workers_part_reaches_the_caller_after_every_part() {
        for _ in 0..3 {
            let (bad, done) = job_panicking(true);
            check_after_panic(bad, &done);
        }
    }

    #[test]
    fn panic_in_the_callers_part_waits_for_every_part() {
        for _ in 0..3 {
            let (bad, done) = job_panicking(false);
            check_after_panic(bad, &done);
        }
    }

    #[test]
    fn panic_on_the_serial_path_runs_every_part_then_propagates() {
        for threads in [1, 3] {
            let calls = AtomicU32::new(0);
            let result = catch_unwind(AssertUnwindSafe(|| {
                // threads = 3 from inside a task: the nested, serial path.
                let outer = IN_TASK.with(|t| t.replace(threads > 1));
                let _restore = RestoreInTask(outer);
                run(threads, 4, &|p| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    assert!(in_task());
                    if p == 1 {
                        panic!("serial part panics");
                    }
                });
            }));
            let payload = result.expect_err("the panic reaches the caller");
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"serial part panics"));
            assert_eq!(calls.load(Ordering::Relaxed), 4, "{threads} threads");
            assert!(!in_task());
        }
    }

    #[test]
    fn in_task_is_false_after_a_panicking_job() {
        assert!(!in_task());
        for on_worker in [true, false] {
            job_panicking(on_worker);
            assert!(!in_task(), "on_worker {on_worker}");
        }
        // A single part runs on the caller; its panic goes through `task` directly.
        let r = catch_unwind(|| run(3, 1, &|_| panic!("one part")));
        assert!(r.is_err());
        assert!(!in_task());
    }

    #[test]
    fn every_part_runs_once() {
        for parts in [0, 1, 2, 7, 64] {
            let hits: Vec<AtomicU32> = (0..parts).map(|_| AtomicU32::new(0)).collect();
            run(3, parts, &|p| {
                hits[p].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "{parts}"
            );
        }
    }
}
