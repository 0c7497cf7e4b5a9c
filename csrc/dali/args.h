// Argument helpers shared by the poisonkit DALI operators: per-sample scalars that may
// come as constants or ArgumentInputs of any numeric type (DALI does not cast argument
// inputs), and error messages that name the argument.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "dali/core/static_switch.h"
#include "dali/pipeline/operator/operator.h"

namespace poisonkit::dali_ops {

// Reads argument `name` as one value per sample (a constant is repeated). Argument inputs
// may be any integer or floating type and must hold one element per sample.
template <typename T>
std::vector<T> per_sample_arg(const ::dali::OpSpec& spec, const ::dali::ArgumentWorkspace& ws,
                              const std::string& name, int nsamples) {
  std::vector<T> out(nsamples);
  if (!spec.HasTensorArgument(name)) {
    out.assign(nsamples, spec.GetArgument<T>(name));
    return out;
  }
  const auto& arg = ws.ArgumentInput(name);
  DALI_ENFORCE(arg.num_samples() == nsamples,
               ::dali::make_string("argument `", name, "`: expected one value per sample (",
                                   nsamples, " samples), got ", arg.num_samples()));
  for (int i = 0; i < nsamples; ++i) {
    DALI_ENFORCE(::dali::volume(arg.tensor_shape(i)) == 1,
                 ::dali::make_string("argument `", name, "`: expected a scalar per sample, got ",
                                     "shape ", arg.tensor_shape(i), " for sample ", i));
    TYPE_SWITCH(arg.type(), ::dali::type2id, A,
                (uint8_t, int8_t, uint16_t, int16_t, int32_t, uint32_t, int64_t, uint64_t,
                 float, double),
                (out[i] = static_cast<T>(arg.template tensor<A>(i)[0]);),
                (DALI_FAIL(::dali::make_string("argument `", name, "`: expected a numeric ",
                                               "type, got ", arg.type()));));
  }
  return out;
}

// Reads one integer per sample from a CPU input (`what` names it in errors, e.g.
// "input 1 (labels)"): any integer type, one element per sample.
inline std::vector<int64_t> per_sample_integers(const ::dali::TensorList<::dali::CPUBackend>& in,
                                                int nsamples, const std::string& what) {
  DALI_ENFORCE(in.num_samples() == nsamples,
               ::dali::make_string(what, ": expected one value per image (", nsamples, "), got ",
                                   in.num_samples()));
  std::vector<int64_t> out(nsamples);
  for (int i = 0; i < nsamples; ++i) {
    DALI_ENFORCE(::dali::volume(in.tensor_shape(i)) == 1,
                 ::dali::make_string(what, ": expected one value per sample, got shape ",
                                     in.tensor_shape(i), " for sample ", i));
    TYPE_SWITCH(in.type(), ::dali::type2id, L,
                (uint8_t, int8_t, uint16_t, int16_t, int32_t, uint32_t, int64_t, uint64_t),
                (out[i] = static_cast<int64_t>(in.template tensor<L>(i)[0]);),
                (DALI_FAIL(::dali::make_string(what, ": expected an integer type, got ",
                                               in.type()));));
  }
  return out;
}

// Fails with a message naming `what` unless every value lies in [lo, hi).
inline void enforce_range(const std::vector<int64_t>& values, int64_t lo, int64_t hi,
                          const std::string& what) {
  for (size_t i = 0; i < values.size(); ++i) {
    DALI_ENFORCE(values[i] >= lo && values[i] < hi,
                 ::dali::make_string(what, ": expected values in [", lo, ", ", hi, "), got ",
                                     values[i], " for sample ", i));
  }
}

// The per-sample inputs of the keyed poisons: labels (input 1) in [0, num_classes) and
// sample indices (input 2) >= 0, one of each per image, both on the CPU.
inline void read_labels_and_indices(const ::dali::Workspace& ws, int n, int num_classes,
                                    std::vector<int64_t>& labels, std::vector<int64_t>& indices) {
  labels = per_sample_integers(ws.Input<::dali::CPUBackend>(1), n, "input 1 (labels)");
  enforce_range(labels, 0, num_classes, "input 1 (labels)");
  indices = per_sample_integers(ws.Input<::dali::CPUBackend>(2), n, "input 2 (indices)");
  enforce_range(indices, 0, std::numeric_limits<int64_t>::max(), "input 2 (indices)");
}

// Fails with a message naming `name` unless every value is finite.
inline void enforce_finite(const std::vector<float>& values, const std::string& name) {
  for (size_t i = 0; i < values.size(); ++i) {
    DALI_ENFORCE(std::isfinite(values[i]),
                 ::dali::make_string("argument `", name, "`: expected finite values, got ",
                                     values[i], " at index ", i));
  }
}

}  // namespace poisonkit::dali_ops
