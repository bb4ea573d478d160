//! The server's memory allocator (jemalloc) and what it reports: bytes the server's objects use
//! and bytes the allocator holds in RAM for them, for `/metrics`. Without the `jemalloc` feature
//! (the fuzz targets) the system allocator serves and the figures stay at zero.

use prometheus_client::metrics::gauge::Gauge;
#[cfg(feature = "jemalloc")]
use tikv_jemalloc_ctl::{epoch, stats};

/// jemalloc, with its background thread, hands memory back to the system about ten seconds
/// after it is freed, even while the server is idle; glibc's allocator keeps a busy spell's
/// high-water mark for good. Set here rather than in the binary so the tests run on it too.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `switchboard_memory_allocated_bytes` and `switchboard_memory_resident_bytes`.
#[derive(Clone, Default)]
pub struct Memory {
    /// Bytes in live allocations.
    pub allocated: Gauge,
    /// Bytes of physical memory the allocator holds: live objects, what it has not handed back
    /// yet, and its own bookkeeping. Well above `allocated` long after a busy spell means
    /// fragmentation.
    pub resident: Gauge,
}

impl Memory {
    /// Reads the allocator's current figures into the gauges (nothing to read here).
    #[cfg(not(feature = "jemalloc"))]
    pub fn refresh(&self) {}

    /// Reads the allocator's current figures into the gauges.
    #[cfg(feature = "jemalloc")]
    pub fn refresh(&self) {
        // jemalloc's statistics are a snapshot taken when the epoch advances.
        if epoch::advance().is_err() {
            return;
        }
        if let Ok(bytes) = stats::allocated::read() {
            self.allocated.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        if let Ok(bytes) = stats::resident::read() {
            self.resident.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(all(test, feature = "jemalloc"))]
mod tests {
    use super::*;

    #[test]
    fn live_allocations_show_in_the_figures() {
        let memory = Memory::default();
        memory.refresh();
        let before = memory.allocated.get();
        // Far more than the other tests running beside this one allocate or free.
        let held = vec![1u8; 64 << 20];
        memory.refresh();
        let during = memory.allocated.get();
        assert!(during - before >= 48 << 20, "{before} -> {during}");
        assert!(memory.resident.get() >= during);
        drop(held);
    }
}
