#pragma once
// The built-in formats, one factory per file in src/data/formats; registered by register_builtin_formats().

#include "vigil/data/formats.h"

namespace vigil::data {

FormatInfo make_guns_format();
FormatInfo make_voc_format();
FormatInfo make_yolo_format();
FormatInfo make_coco_format();
FormatInfo make_imagefolder_format();

}  // namespace vigil::data
