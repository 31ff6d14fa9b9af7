//! Blocks of memory a worker lends its users' attempt futures: one per attempt in flight,
//! taken back when the attempt ends and lent again to the next.
//!
//! An attempt's future is boxed (inline, a request's ~1 KiB would size every user's future for
//! its whole life, idle or not: `runtime::actions`), once per request of a keep-alive loop. A
//! block taken back and lent again costs a pop and a push; mimalloc's allocation and free of the
//! same block cost ~150 instructions, as its page's free list is refilled through its slow path
//! each time the only free block is taken (bench/README.md, "Fewer instructions per kept-alive
//! request, second round").

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

/// A block's size and alignment: an HTTP request's attempt (968 bytes) fits. A future that does
/// not is boxed as before.
const BLOCK: Layout = match Layout::from_size_align(1024, 16) {
    Ok(l) => l,
    Err(_) => panic!("a power-of-two alignment"),
};

/// Free blocks kept at most (64 KiB): as many as attempts were in flight at once, up to this;
/// a block given back beyond it goes back to the allocator.
const KEEP: usize = 64;

/// The worker's free blocks.
#[derive(Default)]
pub struct Blocks {
    free: RefCell<Vec<NonNull<u8>>>,
}

impl Blocks {
    /// The future `make` returns, in a block of the worker's when it fits one, else in a box of
    /// its own; either way it stays where it was put until it is dropped.
    pub fn lend<'b, F: Future + 'b>(&'b self, make: impl FnOnce() -> F) -> Lent<'b, F::Output> {
        let layout = Layout::new::<F>();
        if layout.size() > BLOCK.size() || layout.align() > BLOCK.align() {
            return Lent::Boxed(Box::pin(make()));
        }
        let block = self.free.borrow_mut().pop().unwrap_or_else(|| {
            // SAFETY: BLOCK's size is not zero.
            NonNull::new(unsafe { alloc(BLOCK) }).unwrap_or_else(|| handle_alloc_error(BLOCK))
        });
        let fut = block.cast::<F>();
        // SAFETY: the block is BLOCK's size and alignment, which hold an F (checked above), and
        // is no one else's: fresh, or given back after the future in it was dropped. (Should
        // `make` panic, the block is lost, not lent twice.)
        unsafe { fut.as_ptr().write(make()) };
        Lent::Block { fut, blocks: self }
    }

    fn give_back(&self, block: NonNull<u8>) {
        let mut free = self.free.borrow_mut();
        if free.len() < KEEP {
            free.push(block);
        } else {
            // SAFETY: allocated with BLOCK by `lend`, and no longer in use.
            unsafe { dealloc(block.as_ptr(), BLOCK) };
        }
    }
}

impl Drop for Blocks {
    fn drop(&mut self) {
        for block in self.free.get_mut().drain(..) {
            // SAFETY: allocated with BLOCK by `lend`, and no longer in use.
            unsafe { dealloc(block.as_ptr(), BLOCK) };
        }
    }
}

/// A future in a block of the worker's (or, too large for one, in a box).
pub enum Lent<'b, O> {
    Block {
        /// Written by [`Blocks::lend`], dropped in place by `Lent`'s drop, never moved between.
        fut: NonNull<dyn Future<Output = O> + 'b>,
        blocks: &'b Blocks,
    },
    Boxed(Pin<Box<dyn Future<Output = O> + 'b>>),
}

impl<O> Future for Lent<'_, O> {
    type Output = O;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O> {
        match self.get_mut() {
            // SAFETY: the future stays at this address until `Lent` drops it in place, and its
            // block is given back only after that; a `Lent` that is leaked never gives it back,
            // so the memory of a pinned future is never reused before its drop.
            Lent::Block { fut, .. } => unsafe { Pin::new_unchecked(fut.as_mut()) }.poll(cx),
            Lent::Boxed(b) => b.as_mut().poll(cx),
        }
    }
}

impl<O> Drop for Lent<'_, O> {
    fn drop(&mut self) {
        if let Lent::Block { fut, blocks } = self {
            // SAFETY: written by `lend` and not dropped before: this is its one drop. (Should
            // it panic, the block is lost, not given back with a live future in it.)
            unsafe { std::ptr::drop_in_place(fut.as_ptr()) };
            blocks.give_back(fut.cast::<u8>());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// Counts its drops; pending until told to finish.
    struct Probe {
        drops: Rc<Cell<u32>>,
        done: Rc<Cell<bool>>,
        _room: [u8; 600],
    }

    impl Future for Probe {
        type Output = u32;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
            if self.done.get() {
                Poll::Ready(7)
            } else {
                Poll::Pending
            }
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.drops.set(self.drops.get() + 1);
        }
    }

    fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        Pin::new(f).poll(&mut cx)
    }

    #[test]
    fn a_block_is_lent_again_after_its_future_is_dropped_and_each_future_drops_once() {
        let blocks = Blocks::default();
        let (drops, done) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(false)));
        let probe = || Probe {
            drops: drops.clone(),
            done: done.clone(),
            _room: [0; 600],
        };
        let mut first = blocks.lend(probe);
        let Lent::Block { fut, .. } = &first else {
            panic!("a 600-byte future fits a block");
        };
        let at = fut.cast::<u8>();
        assert!(poll_once(&mut first).is_pending());
        // Two in flight at once: two blocks.
        let second = blocks.lend(probe);
        assert!(matches!(&second, Lent::Block { fut, .. } if fut.cast::<u8>() != at));
        drop(first);
        assert_eq!(drops.get(), 1, "dropped in place when let go");
        // The block given back is the next one lent.
        let mut third = blocks.lend(probe);
        assert!(matches!(&third, Lent::Block { fut, .. } if fut.cast::<u8>() == at));
        done.set(true);
        assert_eq!(poll_once(&mut third), Poll::Ready(7));
        drop((second, third));
        assert_eq!(drops.get(), 3);
        assert_eq!(blocks.free.borrow().len(), 2);
    }

    #[test]
    fn a_future_too_large_for_a_block_is_boxed_and_at_most_keep_blocks_are_kept() {
        let blocks = Blocks::default();
        let large = blocks.lend(|| async {
            let held = [0u8; 2048];
            std::future::ready(()).await;
            held.len()
        });
        assert!(matches!(large, Lent::Boxed(_)));
        let many: Vec<_> = (0..KEEP + 5)
            .map(|i| blocks.lend(move || async move { i }))
            .collect();
        drop(many);
        assert_eq!(blocks.free.borrow().len(), KEEP);
    }
}
