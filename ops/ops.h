// Everything a user of the ops needs: tensors, factories, autograd and every op family.
#pragma once
#include "engine/autograd.h"
#include "engine/factory.h"
#include "engine/tensor.h"
#include "ops/elementwise.h"
#include "ops/gradcheck.h"
#include "ops/index.h"
#include "ops/loss.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "ops/softmax.h"
