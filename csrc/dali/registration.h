// The schema lines and the registration every poisonkit DALI image operator (a PlanarImageOp)
// shares, written once. Inside namespace dali:
//
//   POISONKIT_IMAGE_SCHEMA(poisonkit__x, 3) POISONKIT_LABELS_INPUT POISONKIT_INDICES_INPUT
//       .DocStr("...")
//       .AddArg(...);
//   DALI_REGISTER_OPERATOR(poisonkit__x, poisonkit::dali_ops::X<CPUBackend>, CPU);
//   POISONKIT_REGISTER_GPU(poisonkit__x, poisonkit::dali_ops::X);
//
// (The CPU and GPU registrations stay two lines: DALI names its registration objects after
// __LINE__, so one macro cannot expand to both.)
#pragma once
#include "dali/pipeline/operator/operator.h"

// Input 0, the images (uint8 or float, HWC by default or CHW), and the one output; the
// operator has num_inputs inputs in all.
#define POISONKIT_IMAGE_SCHEMA(OpName, num_inputs)                                         \
  DALI_SCHEMA(OpName)                                                                      \
      .NumInput(num_inputs)                                                                \
      .NumOutput(1)                                                                        \
      .InputDox(0, "images", "TensorList", "uint8 or float images, HWC (default) or CHW.") \
      .InputLayout(0, {"HWC", "CHW"})

// Input 1 of the per-class operators: one class index per image, on the CPU.
#define POISONKIT_LABELS_INPUT                                                              \
  .InputDox(1, "labels", "TensorList", "one integer class index per image, on the CPU.") \
      .InputDevice(1, ::dali::InputDevice::CPU)

// Input 2 of the per-sample poisons: one sample index per image, on the CPU.
#define POISONKIT_INDICES_INPUT                                                             \
  .InputDox(2, "indices", "TensorList",                                                  \
            "one integer sample index (>= 0) per image, on the CPU: the image's position " \
            "in the dataset, which picks its perturbation.")                               \
      .InputDevice(2, ::dali::InputDevice::CPU)

// The GPU backend, in builds with CUDA.
#if defined(POISONKIT_WITH_CUDA)
#define POISONKIT_REGISTER_GPU(OpName, Op) DALI_REGISTER_OPERATOR(OpName, Op<GPUBackend>, GPU)
#else
#define POISONKIT_REGISTER_GPU(OpName, Op) static_assert(true, "no CUDA: CPU backend only")
#endif
