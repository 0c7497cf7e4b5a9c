#include "filter2d_op.h"

namespace poisonkit::dali_ops {

Padding parse_padding(const std::string& name) {
  if (name == "zeros") return Padding::Zeros;
  if (name == "reflect") return Padding::Reflect;
  if (name == "replicate") return Padding::Replicate;
  if (name == "valid") return Padding::Valid;
  DALI_FAIL(::dali::make_string("argument `padding`: expected 'zeros', 'reflect', 'replicate' or ",
                                "'valid', got '", name, "'"));
}

}  // namespace poisonkit::dali_ops
