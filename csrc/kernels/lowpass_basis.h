// The factors of the frequency low-pass (rows R, cols C, disk mask M; see lowpass.h) for one
// image size, built from (keep, basis, shape) with the formulas of poisonkit/_lowpass_bases.py
// (float64, stored as float32): the DALI operator builds them per image size from the images.
// tests/dali/test_lowpass.py checks both builders against each other on many sizes.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace poisonkit {

enum class LowpassBasis { Dct, Fourier };
enum class LowpassShape { Square, Disk };

struct LowpassFactors {
  int rank_h = 0, rank_w = 0;
  std::vector<float> rows;  // [rank_h x H]
  std::vector<float> cols;  // [rank_w x W]
  std::vector<float> mask;  // [rank_h x rank_w] for the disk, empty for the square
};

// ---- Validation (a message, empty when fine; the binding prefixes the argument's name).
// keep in (0, 1]; basis 'dct' or 'fft'; shape 'square' or 'disk'. Parsed into *basis, *shape.
std::string lowpass_options_error(double keep, std::string_view basis, std::string_view shape,
                                  LowpassBasis* basis_out, LowpassShape* shape_out);
// An image size the basis keeps at least one coefficient of (DCT: int(n * keep) >= 1).
std::string lowpass_size_error(int height, int width, double keep, LowpassBasis basis);

LowpassFactors lowpass_factors(int height, int width, double keep, LowpassBasis basis,
                               LowpassShape shape);

}  // namespace poisonkit
