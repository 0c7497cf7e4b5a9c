// The threading policy of every CPU op (issue 17): parallelise only when each thread gets
// enough work, never use more threads than at::get_num_threads() (1 in a DataLoader worker,
// which torch sets), and hand out work in chunks from a shared counter rather than one fixed
// share per thread, so that a thread descheduled by a busy machine delays only its chunk
// instead of stalling the others at the region's barrier.
#pragma once
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <vector>

namespace poisonkit {

// Work units: values read plus values written (about the floats a kernel streams); an op
// with heavier math per value states its own factor. The grain: benchmarks/threading_grain.py
// measured here (2 cores, load ~24 from other builds) a 2-thread ATen region at 11 us median
// and the ops at ~1.7-3.5 ns per unit on one thread, so 10x the region's cost is ~33k units;
// 2^16 leaves a 2x margin for quieter machines, where a unit costs less.
constexpr int64_t kMinWorkPerThread = 1 << 16;

// A plain copy (memcpy) streams ~30 GB/s per core here, ~0.03 ns per byte: a unit's worth of
// time copies a few hundred bytes; 8 bytes per unit keeps copy chunks at ~0.5 MB of traffic,
// enough to amortise the chunk hand-out, and a batch still splits into many chunks.
constexpr int64_t kCopyBytesPerUnit = 8;

// Runs fn(begin, end, scratch) over [0, n) in chunks of whole multiples of `align` items,
// each item costing work_per_item units. scratch: a per-thread buffer of scratch_floats
// floats, reused across the thread's chunks.
template <typename F>
void parallel_items(int64_t n, int64_t work_per_item, size_t scratch_floats, const F& fn,
                    int64_t align = 1) {
  if (n <= 0) return;
  const int64_t per_chunk = std::max<int64_t>(1, kMinWorkPerThread / std::max<int64_t>(1, work_per_item));
  const int64_t chunk = (per_chunk + align - 1) / align * align;
  const int64_t chunks = (n + chunk - 1) / chunk;
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), chunks);
  if (threads <= 1 || at::in_parallel_region()) {
    std::vector<float> scratch(scratch_floats);
    fn(int64_t{0}, n, scratch.data());
    return;
  }
  std::atomic<int64_t> next{0};
  at::parallel_for(0, threads, 1, [&](int64_t, int64_t) {
    std::vector<float> scratch(scratch_floats);
    for (int64_t begin; (begin = next.fetch_add(chunk)) < n;) {
      fn(begin, std::min(n, begin + chunk), scratch.data());
    }
  });
}

}  // namespace poisonkit
