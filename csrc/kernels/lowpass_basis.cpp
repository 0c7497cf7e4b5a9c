// Builds the low-pass factors as poisonkit/_lowpass_bases.py does (see its docstring for
// which frequencies each basis and shape keeps).
#include "lowpass_basis.h"

#include <cmath>
#include <cstdint>
#include <sstream>

namespace poisonkit {

namespace {

// keep reaches the DALI operator as a float32 (0.35f = 0.34999999...), so int(n * keep) is
// taken with a wider guard than _lowpass_bases' 1e-9 on the float64 keep: 180 * 0.35f floors
// to 63 as 180 * 0.35 does. poisonkit.dali.lowpass checks that both rules agree for the keep
// it is given on every axis up to 8192.
constexpr double kRankEps = 1e-4;
constexpr double kEps = 1e-9;  // the disk's boundary, as _lowpass_bases._EPS
constexpr double kPi = 3.14159265358979323846;

int dct_rank(int n, double keep) { return static_cast<int>(std::floor(n * keep + kRankEps)); }
int fft_radius(int n, double keep) {
  return static_cast<int>(std::floor(n * keep / 2 + kRankEps));
}

// The kept rows of a size-n axis (row-major [r x n]) and each row's |frequency|.
void axis_rows(int n, double keep, LowpassBasis basis, std::vector<double>& rows,
               std::vector<int>& freqs) {
  rows.clear();
  freqs.clear();
  if (basis == LowpassBasis::Dct) {
    const int r = dct_rank(n, keep);
    for (int k = 0; k < r; ++k) {
      for (int i = 0; i < n; ++i)
        rows.push_back(k == 0 ? std::sqrt(1.0 / n)
                              : std::cos(kPi * (2.0 * i + 1) * k / (2.0 * n)) * std::sqrt(2.0 / n));
      freqs.push_back(k);
    }
    return;
  }
  rows.assign(n, std::sqrt(1.0 / n));
  freqs.push_back(0);
  for (int k = 1; k <= fft_radius(n, keep); ++k) {
    const auto angle = [&](int i) {  // reduced mod n: exact arguments
      return static_cast<double>(static_cast<int64_t>(k) * i % n) * (2 * kPi / n);
    };
    if (2 * k == n) {  // Nyquist: (-1)^i, its own mirror, no sine
      for (int i = 0; i < n; ++i) rows.push_back(std::cos(angle(i)) * std::sqrt(1.0 / n));
      freqs.push_back(k);
      continue;
    }
    for (int i = 0; i < n; ++i) rows.push_back(std::cos(angle(i)) * std::sqrt(2.0 / n));
    for (int i = 0; i < n; ++i) rows.push_back(std::sin(angle(i)) * std::sqrt(2.0 / n));
    freqs.push_back(k);
    freqs.push_back(k);
  }
}

}  // namespace

std::string lowpass_options_error(double keep, std::string_view basis, std::string_view shape,
                                  LowpassBasis* basis_out, LowpassShape* shape_out) {
  if (!std::isfinite(keep) || keep <= 0.0 || keep > 1.0) {
    std::ostringstream s;
    s << "keep: expected a number in (0, 1], got " << keep;
    return s.str();
  }
  if (basis == "dct") *basis_out = LowpassBasis::Dct;
  else if (basis == "fft") *basis_out = LowpassBasis::Fourier;
  else return "basis: expected 'dct' or 'fft', got '" + std::string(basis) + "'";
  if (shape == "square") *shape_out = LowpassShape::Square;
  else if (shape == "disk") *shape_out = LowpassShape::Disk;
  else return "shape: expected 'square' or 'disk', got '" + std::string(shape) + "'";
  return "";
}

std::string lowpass_size_error(int height, int width, double keep, LowpassBasis basis) {
  if (basis != LowpassBasis::Dct) return "";
  for (const int n : {height, width}) {
    if (dct_rank(n, keep) < 1) {
      std::ostringstream s;
      s << "keep=" << keep << " keeps no DCT coefficient of a size-" << n << " axis (int(" << n
        << " * keep) = 0); use keep >= " << 1.0 / n << " or larger images";
      return s.str();
    }
  }
  return "";
}

LowpassFactors lowpass_factors(int height, int width, double keep, LowpassBasis basis,
                               LowpassShape shape) {
  std::vector<double> rows, cols;
  std::vector<int> fh, fw;
  axis_rows(height, keep, basis, rows, fh);
  axis_rows(width, keep, basis, cols, fw);
  LowpassFactors f;
  f.rank_h = static_cast<int>(fh.size());
  f.rank_w = static_cast<int>(fw.size());
  f.rows.assign(rows.begin(), rows.end());
  f.cols.assign(cols.begin(), cols.end());
  if (shape == LowpassShape::Disk) {
    const int64_t rh = dct_rank(height, keep), rw = dct_rank(width, keep);
    for (const int k1 : fh) {
      for (const int k2 : fw) {
        bool inside;
        if (basis == LowpassBasis::Dct) {  // (k1 / r_H)^2 + (k2 / r_W)^2 < 1, in integers
          inside = (k1 * rw) * (k1 * rw) + (k2 * rh) * (k2 * rh) < (rh * rw) * (rh * rw);
        } else {
          const double a = 2.0 * k1 / height, b = 2.0 * k2 / width;
          inside = a * a + b * b <= keep * keep + kEps;
        }
        f.mask.push_back(inside ? 1.0f : 0.0f);
      }
    }
  }
  return f;
}

}  // namespace poisonkit
