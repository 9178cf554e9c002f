//! Where and how long a template may run.
//!
//! Templates are user input that executes: a preview request, a receiver
//! test, a config reload or a notification can bring one that loops for
//! minutes or recurses until the stack runs out, which aborts the whole
//! process. Every render and compile goes through [`guarded`], which
//!
//! - runs it off the async workers (`block_in_place` on a multi-threaded
//!   runtime; callers that are already on a blocking thread run inline),
//! - bounds how many run at once ([`MAX_CONCURRENT_RENDERS`]; later ones
//!   wait for a slot),
//! - gives it a stack of known size ([`TEMPLATE_STACK_BYTES`]) that the
//!   depth limits of both template languages fit in, and
//! - gives it a budget of steps and time that handlebars' block helpers and
//!   the Go executor charge with [`charge`]; exceeding it fails the render
//!   with an error naming the limit.

use std::cell::Cell;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// Most steps one render may take: a block helper call costs one, plus one
/// per item an `each` iterates over. Real templates over groups of
/// thousands of alerts take well under this.
pub const MAX_RENDER_STEPS: u64 = 2_000_000;
/// Longest one render may run.
pub const RENDER_TIME_BUDGET: Duration = Duration::from_secs(2);
/// Renders that may run at once; the rest wait. Rendering is CPU-bound.
pub const MAX_CONCURRENT_RENDERS: usize = 4;
/// Stack for one render or compile. Only the pages used are committed.
pub const TEMPLATE_STACK_BYTES: usize = 64 << 20;

thread_local! {
    static BUDGET: Cell<Option<(u64, Instant)>> = const { Cell::new(None) };
}

static SLOTS: Mutex<usize> = Mutex::new(0);
static SLOT_FREED: Condvar = Condvar::new();

struct Slot;

impl Slot {
    fn take() -> Slot {
        let mut used = SLOTS.lock();
        while *used >= MAX_CONCURRENT_RENDERS {
            SLOT_FREED.wait(&mut used);
        }
        *used += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *SLOTS.lock() -= 1;
        SLOT_FREED.notify_one();
    }
}

/// Clears the thread's budget when the outermost render ends, also by panic.
struct ClearBudget;

impl Drop for ClearBudget {
    fn drop(&mut self) {
        BUDGET.with(|b| b.set(None));
    }
}

/// Runs a render or compile `f` under the limits above. A call nested in
/// another (a render that compiles, a preview that renders) shares the
/// outer call's slot, stack and budget.
pub fn guarded<T>(f: impl FnOnce() -> T) -> T {
    if BUDGET.with(Cell::get).is_some() {
        return f();
    }
    let run = || {
        let _slot = Slot::take();
        let budget = (MAX_RENDER_STEPS, Instant::now() + RENDER_TIME_BUDGET);
        BUDGET.with(|b| b.set(Some(budget)));
        let _clear = ClearBudget;
        deep_stack(f)
    };
    let on_async_worker = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if on_async_worker {
        tokio::task::block_in_place(run)
    } else {
        run()
    }
}

/// Runs `f` on a stack of [`TEMPLATE_STACK_BYTES`] (a fresh segment when
/// the current one has less than half of that left): for work that
/// recurses on the shape of user input after its depth was bounded.
pub fn deep_stack<T>(f: impl FnOnce() -> T) -> T {
    stacker::maybe_grow(TEMPLATE_STACK_BYTES / 2, TEMPLATE_STACK_BYTES, f)
}

/// Charges `steps` to the running render's budget; the error names the
/// limit that was exceeded. Outside [`guarded`] nothing is charged.
pub fn charge(steps: u64) -> Result<(), String> {
    BUDGET.with(|b| {
        let Some((left, deadline)) = b.get() else {
            return Ok(());
        };
        if left < steps {
            b.set(Some((0, deadline)));
            return Err(format!(
                "template exceeds the render budget of {MAX_RENDER_STEPS} steps (block helper calls and loop iterations)"
            ));
        }
        b.set(Some((left - steps, deadline)));
        // Reading the clock costs more than a step: look every 256 steps.
        if left / 256 != (left - steps) / 256 {
            return check_time();
        }
        Ok(())
    })
}

/// Fails when the running render is past its time budget (for executors
/// that count their own steps).
pub fn check_time() -> Result<(), String> {
    match BUDGET.with(Cell::get) {
        Some((_, deadline)) if Instant::now() > deadline => Err(format!(
            "template exceeds the render time budget of {} s",
            RENDER_TIME_BUDGET.as_secs()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_steps_and_names_the_limit() {
        let spent = guarded(|| {
            let mut n = 0u64;
            loop {
                if let Err(e) = charge(1000) {
                    assert!(e.contains("render budget of 2000000 steps"), "{e}");
                    return n;
                }
                n += 1000;
            }
        });
        assert_eq!(spent, MAX_RENDER_STEPS);
        // Outside a render nothing is charged, and the budget is gone.
        assert!(charge(u64::MAX).is_ok());
    }

    #[test]
    fn nested_renders_share_the_outer_budget() {
        guarded(|| {
            charge(MAX_RENDER_STEPS - 10).unwrap();
            guarded(|| assert!(charge(11).is_err()));
        });
    }

    #[test]
    fn deep_recursion_fits_the_stack() {
        fn down(n: usize) -> usize {
            let pad = std::hint::black_box([n as u8; 512]);
            if n == 0 {
                0
            } else {
                down(n - 1) + usize::from(pad[0] == 0)
            }
        }
        // 40k frames of over half a kilobyte: far beyond a 2 MiB thread stack.
        let t = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| guarded(|| down(40_000)))
            .unwrap();
        assert_eq!(t.join().unwrap(), 40_000 / 256);
    }
}
