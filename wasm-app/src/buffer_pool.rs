//! Recycled host buffers for what guests return.
//!
//! A result copied out of guest memory into a fresh allocation costs more in
//! page faults than in copying: a new 80 MB allocation is mapped and zeroed
//! page by page, which on a small VM takes several times as long as the copy
//! itself. A [`BufferPool`] keeps the allocation of a result once every arrow
//! array over it has been dropped, and the next copy-out reuses it.
//!
//! Invariant: a pooled allocation is either idle in the pool (no views of it
//! exist) or owned by exactly one [`Pooled`], the owner of every
//! [`Buffer`] that views it; it is written only in between, after being
//! taken from the pool and before the first view is made. Views therefore
//! never see it change.

use std::ptr::NonNull;
use std::sync::{Arc, Mutex, Weak};

use arrow::alloc::Allocation;
use arrow::buffer::{Buffer, MutableBuffer};

/// Idle allocations, shared with the owners that give them back.
type Idle = Mutex<Vec<MutableBuffer>>;

/// A few reusable allocations (64-byte aligned, arrow's alignment).
pub struct BufferPool {
    idle: Arc<Idle>,
    keep: usize,
}

impl Default for BufferPool {
    /// Keeps two allocations: the result being used and the next one.
    fn default() -> Self {
        BufferPool::new(2)
    }
}

impl BufferPool {
    /// A pool that keeps at most `keep` idle allocations.
    pub fn new(keep: usize) -> Self {
        BufferPool {
            idle: Arc::new(Mutex::new(Vec::new())),
            keep,
        }
    }

    /// Number of idle allocations (for tests).
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        lock(&self.idle).len()
    }

    /// `bytes` copied into a pooled allocation, as an immutable [`Buffer`];
    /// the allocation comes back to the pool when the last view is dropped.
    pub fn copy(&self, bytes: &[u8]) -> Buffer {
        let mut buf = self.take(bytes.len());
        buf.clear();
        buf.extend_from_slice(bytes);
        let len = buf.len();
        let ptr = NonNull::new(buf.as_mut_ptr()).unwrap_or(NonNull::dangling());
        let owner: Arc<dyn Allocation> = Arc::new(Pooled {
            buf: Some(buf),
            home: Arc::downgrade(&self.idle),
            keep: self.keep,
        });
        // SAFETY: `ptr..ptr+len` is the initialised content of `buf`, which
        // `owner` holds, unchanged and at the same address (a MutableBuffer
        // never moves its allocation unless it grows, and nothing touches it
        // again), until the last Buffer sharing `owner` is dropped.
        unsafe { Buffer::from_custom_allocation(ptr, len, owner) }
    }

    /// The smallest idle allocation that holds `len` bytes, else a new one.
    fn take(&self, len: usize) -> MutableBuffer {
        let mut idle = lock(&self.idle);
        let best = idle
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        match best {
            Some(i) => idle.swap_remove(i),
            None => MutableBuffer::with_capacity(len),
        }
    }
}

/// Owner of one pooled allocation while views of it exist.
struct Pooled {
    buf: Option<MutableBuffer>,
    home: Weak<Idle>,
    keep: usize,
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let (Some(buf), Some(home)) = (self.buf.take(), self.home.upgrade()) else {
            return;
        };
        let mut idle = lock(&home);
        if idle.len() < self.keep {
            idle.push(buf);
        } else if let Some(smallest) = idle.iter_mut().min_by_key(|b| b.capacity()) {
            // Keep the larger allocations: they serve every smaller result.
            if smallest.capacity() < buf.capacity() {
                *smallest = buf;
            }
        }
    }
}

fn lock(idle: &Idle) -> std::sync::MutexGuard<'_, Vec<MutableBuffer>> {
    // The Vec stays consistent even if a holder panicked (push/remove only).
    idle.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_come_back_when_the_last_view_drops_and_are_reused() {
        let pool = BufferPool::new(2);
        let a = pool.copy(&[1, 2, 3, 4]);
        let addr = a.as_ptr();
        let slice = a.slice(1);
        drop(a);
        assert_eq!(pool.idle(), 0, "a view is still alive");
        assert_eq!(slice.as_slice(), &[2, 3, 4]);
        drop(slice);
        assert_eq!(pool.idle(), 1);
        let b = pool.copy(&[9, 9]);
        assert_eq!(b.as_ptr(), addr, "the idle allocation was reused");
        assert_eq!(b.as_slice(), &[9, 9]);
        assert_eq!(b.as_ptr() as usize % 64, 0, "arrow alignment");
    }

    #[test]
    fn the_pool_keeps_at_most_its_limit_preferring_large_allocations() {
        let pool = BufferPool::new(1);
        let small = pool.copy(&[0; 10]);
        let large = pool.copy(&[0; 100_000]);
        let large_addr = large.as_ptr();
        drop(small);
        drop(large);
        assert_eq!(pool.idle(), 1);
        // A small result is served by the kept large allocation.
        assert_eq!(pool.copy(&[1; 10]).as_ptr(), large_addr);
    }

    #[test]
    fn views_outlive_the_pool() {
        let pool = BufferPool::default();
        let b = pool.copy(b"still here");
        drop(pool);
        assert_eq!(b.as_slice(), b"still here");
    }
}
