// Registers poisonkit's torch ops with the dispatcher, written once for every op file:
//
//   POISONKIT_DEFINE_OPS("ar_canvas(Tensor indices, ...) -> Tensor", "ar_filter(...) -> Tensor")
//   POISONKIT_IMPL_OPS(CPU, "ar_canvas", &ar_canvas_cpu, "ar_filter", &ar_filter_cpu)
//
// The schemas once (in the op's CPU file); per dispatch key (CPU, CUDA) the implementations as
// (name, function) pairs.
#pragma once
#include <torch/library.h>

#include <initializer_list>

namespace poisonkit::registration {

inline void define(torch::Library& m, std::initializer_list<const char*> schemas) {
  for (const char* schema : schemas) m.def(schema);
}

inline void impl(torch::Library&) {}

template <typename F, typename... Rest>
void impl(torch::Library& m, const char* name, F fn, Rest... rest) {
  m.impl(name, fn);
  impl(m, rest...);
}

}  // namespace poisonkit::registration

#define POISONKIT_DEFINE_OPS(...) \
  TORCH_LIBRARY_FRAGMENT(poisonkit, m) { ::poisonkit::registration::define(m, {__VA_ARGS__}); }

#define POISONKIT_IMPL_OPS(key, ...) \
  TORCH_LIBRARY_IMPL(poisonkit, key, m) { ::poisonkit::registration::impl(m, __VA_ARGS__); }
