// The poisonkit._C Python module. Importing it runs the static TORCH_LIBRARY registrations
// of every op file; the module itself holds nothing (the pattern of pytorch/extension-cpp).
#include <Python.h>
#include <torch/library.h>

// PyMODINIT_FUNC keeps the symbol visible despite -fvisibility=hidden.
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}

// Each op file adds its schema with TORCH_LIBRARY_FRAGMENT(poisonkit, m).
TORCH_LIBRARY(poisonkit, m) {}
