//! Bounded fan-out on scoped threads that never receive the host's signals.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// Blocks every signal in the calling thread; restores the old mask on drop.
struct SignalBlock {
    old: libc::sigset_t,
    active: bool,
}

impl SignalBlock {
    fn all() -> SignalBlock {
        // SAFETY: sigset_t is plain data; sigfillset/pthread_sigmask only write
        // through the pointers we give them.
        unsafe {
            let mut full: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut full);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &full, &mut old);
            SignalBlock { old, active: rc == 0 }
        }
    }
}

impl Drop for SignalBlock {
    fn drop(&mut self) {
        if self.active {
            // SAFETY: restores the mask saved by `all()` on this same thread.
            unsafe {
                libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
            }
        }
    }
}

/// Block all signals in the current thread, for good (worker threads).
fn block_all_signals_forever() {
    std::mem::forget(SignalBlock::all());
}

/// Run `f` over `jobs` on at most `concurrency` threads (0 is taken as 1) and
/// return the results in job order.
///
/// * Workers pull the next job index from a shared counter, so a slow job does
///   not hold up a whole batch.
/// * Every worker blocks all signals first thing; in addition the calling
///   thread blocks them while it spawns, so the workers inherit a full mask and
///   there is no window in which a signal meant for the host (Postgres) could
///   be delivered to a worker. The caller's own mask is restored right after
///   spawning, before it waits, so the caller still sees its signals.
/// * If no thread can be spawned at all, the jobs run on the calling thread.
/// * A panic in `f` is re-raised on the calling thread after all workers stop.
pub fn send_concurrently<J, R>(jobs: Vec<J>, concurrency: usize, f: impl Fn(&J) -> R + Sync) -> Vec<R>
where
    J: Sync,
    R: Send,
{
    let n = jobs.len();
    if n == 0 {
        return Vec::new();
    }
    let workers = concurrency.max(1).min(n);
    let next = AtomicUsize::new(0);
    let jobs = &jobs;
    let f = &f;
    let next = &next;

    let work = move || {
        let mut done: Vec<(usize, R)> = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            done.push((i, f(&jobs[i])));
        }
        done
    };

    let mut slots: Vec<Option<R>> = (0..n).map(|_| None).collect();
    let mut panic = None;
    thread::scope(|s| {
        let mut handles = Vec::with_capacity(workers);
        {
            let _spawn_guard = SignalBlock::all();
            for w in 0..workers {
                let spawned = thread::Builder::new()
                    .name(format!("stripe-send-{w}"))
                    .spawn_scoped(s, move || {
                        block_all_signals_forever();
                        work()
                    });
                match spawned {
                    Ok(h) => handles.push(h),
                    Err(_) => break, // EAGAIN etc.: make do with fewer workers
                }
            }
        } // caller's signal mask restored here, before waiting
        if handles.is_empty() {
            for (i, r) in work() {
                slots[i] = Some(r);
            }
        }
        for h in handles {
            match h.join() {
                Ok(done) => {
                    for (i, r) in done {
                        slots[i] = Some(r);
                    }
                }
                Err(p) => panic = Some(p),
            }
        }
    });
    if let Some(p) = panic {
        std::panic::resume_unwind(p);
    }
    // Every index below n was claimed exactly once by a worker that finished
    // without panicking, so every slot is filled.
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    #[test]
    fn keeps_order() {
        let jobs: Vec<u64> = (0..100).collect();
        let out = send_concurrently(jobs, 7, |&j| {
            std::thread::sleep(Duration::from_micros((j * 7919) % 500));
            j * 2
        });
        assert_eq!(out, (0..100).map(|j| j * 2).collect::<Vec<_>>());
    }

    #[test]
    fn at_most_n_at_once_and_uses_them() {
        for limit in [1usize, 3, 8] {
            let running = AtomicUsize::new(0);
            let peak = AtomicUsize::new(0);
            let threads = Mutex::new(std::collections::HashSet::new());
            let out = send_concurrently((0..40).collect::<Vec<u32>>(), limit, |&j| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                threads.lock().unwrap().insert(std::thread::current().id());
                std::thread::sleep(Duration::from_millis(5));
                running.fetch_sub(1, Ordering::SeqCst);
                j
            });
            assert_eq!(out.len(), 40);
            let p = peak.load(Ordering::SeqCst);
            assert!(p <= limit, "peak {p} > {limit}");
            assert!(p >= limit.min(2), "peak {p} for limit {limit}: no parallelism");
            assert!(threads.lock().unwrap().len() <= limit);
            assert!(!threads.lock().unwrap().contains(&std::thread::current().id()));
        }
    }

    #[test]
    fn edge_cases() {
        let none: Vec<u8> = send_concurrently(Vec::<u8>::new(), 4, |&j| j);
        assert!(none.is_empty());
        assert_eq!(send_concurrently(vec![1, 2, 3], 0, |&j| j + 1), vec![2, 3, 4]);
        assert_eq!(send_concurrently(vec![5], 64, |&j| j), vec![5]);
    }

    fn blocked(sig: libc::c_int) -> bool {
        unsafe {
            let mut cur: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur);
            libc::sigismember(&cur, sig) == 1
        }
    }

    #[test]
    fn workers_block_signals_and_caller_mask_is_restored() {
        let caller_before = blocked(libc::SIGUSR1);
        let out = send_concurrently((0..8).collect::<Vec<u8>>(), 4, |_| {
            [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1, libc::SIGUSR2, libc::SIGHUP, libc::SIGALRM, libc::SIGQUIT]
                .iter()
                .all(|&s| blocked(s))
        });
        assert!(out.iter().all(|&b| b), "{out:?}");
        assert_eq!(blocked(libc::SIGUSR1), caller_before);
        assert!(!blocked(libc::SIGINT) || caller_before);
    }

    #[test]
    fn panic_propagates_after_others_finish() {
        let finished = AtomicUsize::new(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            send_concurrently((0..10).collect::<Vec<u32>>(), 3, |&j| {
                if j == 4 {
                    panic!("job 4");
                }
                finished.fetch_add(1, Ordering::SeqCst);
            })
        }));
        assert!(r.is_err());
        assert_eq!(finished.load(Ordering::SeqCst), 9);
    }
}
