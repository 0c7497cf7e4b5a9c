#include "filter2d_op.h"

namespace poisonkit::dali_ops {

Padding parse_padding(const std::string& name) {
  Padding padding;
  DALI_ENFORCE(::poisonkit::parse_padding(name, &padding),
               ::dali::make_string("argument `padding`: expected ", kFilter2dPaddings, ", got '",
                                   name, "'"));
  return padding;
}

}  // namespace poisonkit::dali_ops
