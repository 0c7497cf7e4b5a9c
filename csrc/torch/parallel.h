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

// Work units: values read plus values written (about the bytes a kernel streams, in
// floats); an op with heavier math per value states its own factor. Below this much work
// per thread a parallel region costs more than it saves: measured here (2 cores) with
// benchmarks/threading_grain.py, where two threads beat one only from about this size on.
constexpr int64_t kMinWorkPerThread = 1 << 16;

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
