// Reads a 2-D float32 / float64 little-endian NumPy .npy file (format 1.0-3.0, C or Fortran
// order) as row-major float32, for operators that take a matrix from a file (project_out's
// q_file, as written by poisonkit.defenses.projection.Projection.save_q). Every defect is a
// DALI error naming the argument and the file.
#pragma once
#include <cstdint>
#include <cstring>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "dali/core/error_handling.h"

namespace poisonkit::dali_ops {

struct NpyMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> values;  // row-major
};

inline NpyMatrix read_npy_matrix(const std::string& path, const std::string& arg) {
  const auto fail = [&](const std::string& why) {
    DALI_FAIL(::dali::make_string("argument `", arg, "`: ", path, ": ", why));
  };
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open the file");
  char magic[8];
  if (!f.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) fail("not a .npy file");
  uint32_t header_len = 0;
  unsigned char len[4] = {0, 0, 0, 0};
  const int len_bytes = magic[6] == 1 ? 2 : 4;
  if (!f.read(reinterpret_cast<char*>(len), len_bytes)) fail("truncated header");
  for (int i = len_bytes - 1; i >= 0; --i) header_len = header_len * 256 + len[i];
  std::string header(header_len, '\0');
  if (!f.read(header.data(), header_len)) fail("truncated header");
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([<|>]?)(f[48])'")) ||
      m[1].str() == ">")
    fail("expected little-endian float32 or float64 values (descr '<f4' / '<f8'), got " + header);
  const bool f64 = m[2].str() == "f8";
  const bool fortran = header.find("'fortran_order': True") != std::string::npos;
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(\\s*(\\d+)\\s*,\\s*(\\d+)\\s*\\)")))
    fail("expected a 2-D array, header " + header);
  NpyMatrix q;
  q.rows = std::stoll(m[1].str());
  q.cols = std::stoll(m[2].str());
  const size_t count = static_cast<size_t>(q.rows) * q.cols;
  std::vector<char> raw(count * (f64 ? 8 : 4));
  if (!f.read(raw.data(), static_cast<std::streamsize>(raw.size())))
    fail("holds fewer values than its shape says");
  q.values.resize(count);
  for (size_t e = 0; e < count; ++e) {
    // Element e of the row-major result is stored at (col * rows + row) in Fortran order.
    const size_t at = fortran ? (e % q.cols) * q.rows + e / q.cols : e;
    if (f64) {
      double v;
      std::memcpy(&v, raw.data() + at * 8, 8);
      q.values[e] = static_cast<float>(v);
    } else {
      std::memcpy(&q.values[e], raw.data() + at * 4, 4);
    }
  }
  return q;
}

}  // namespace poisonkit::dali_ops
