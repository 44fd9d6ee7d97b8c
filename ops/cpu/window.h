// The 3-D window geometry of engine/window.h, for the CPU conv and pool kernels.
#pragma once
#include "engine/window.h"

namespace spool::cpu {

using spool::Window3;
using spool::window3;

}  // namespace spool::cpu
