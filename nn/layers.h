// Parameter-free and small layers: activations, Flatten, Dropout, pooling, Embedding.
#pragma once
#include "engine/rng.h"
#include "nn/module.h"
#include "ops/elementwise.h"
#include "ops/pool.h"

namespace spool::nn {

class ReLU : public Module {
 public:
  std::string type_name() const override { return "ReLU"; }
  Tensor forward(const Tensor& x) override { return relu(x); }
};

class GELU : public Module {
 public:
  explicit GELU(GeluApprox approx = GeluApprox::none) : approx_(approx) {}
  std::string type_name() const override { return "GELU"; }
  Tensor forward(const Tensor& x) override { return gelu(x, approx_); }

 private:
  GeluApprox approx_;
};

class Tanh : public Module {
 public:
  std::string type_name() const override { return "Tanh"; }
  Tensor forward(const Tensor& x) override { return tanh(x); }
};

class Sigmoid : public Module {
 public:
  std::string type_name() const override { return "Sigmoid"; }
  Tensor forward(const Tensor& x) override { return sigmoid(x); }
};

// Flattens dims start..end (default: all but the batch dim).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start = 1, int64_t end = -1) : start_(start), end_(end) {}
  std::string type_name() const override { return "Flatten"; }
  Tensor forward(const Tensor& x) override;

 private:
  int64_t start_, end_;
};

// Zeroes elements with probability p in training mode; the identity in eval mode.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* gen = nullptr);
  std::string type_name() const override { return "Dropout"; }
  Tensor forward(const Tensor& x) override;
  double p;  // public so tools can switch dropout off (spool grad --no-dropout)

 private:
  Generator* gen_;
};

// Max / average pooling over `dims` spatial dims.
class MaxPool : public Module {
 public:
  MaxPool(int64_t dims, PoolOptions options) : dims_(dims), o_(std::move(options)) {}
  std::string type_name() const override { return "MaxPool" + std::to_string(dims_) + "d"; }
  Tensor forward(const Tensor& x) override;

 private:
  int64_t dims_;
  PoolOptions o_;
};

class AvgPool : public Module {
 public:
  AvgPool(int64_t dims, PoolOptions options) : dims_(dims), o_(std::move(options)) {}
  std::string type_name() const override { return "AvgPool" + std::to_string(dims_) + "d"; }
  Tensor forward(const Tensor& x) override;

 private:
  int64_t dims_;
  PoolOptions o_;
};

// The dimension-named forms, as LibTorch spells them.
struct MaxPool1d : MaxPool {
  explicit MaxPool1d(PoolOptions o) : MaxPool(1, std::move(o)) {}
};
struct MaxPool2d : MaxPool {
  explicit MaxPool2d(PoolOptions o) : MaxPool(2, std::move(o)) {}
};
struct MaxPool3d : MaxPool {
  explicit MaxPool3d(PoolOptions o) : MaxPool(3, std::move(o)) {}
};
struct AvgPool1d : AvgPool {
  explicit AvgPool1d(PoolOptions o) : AvgPool(1, std::move(o)) {}
};
struct AvgPool2d : AvgPool {
  explicit AvgPool2d(PoolOptions o) : AvgPool(2, std::move(o)) {}
};
struct AvgPool3d : AvgPool {
  explicit AvgPool3d(PoolOptions o) : AvgPool(3, std::move(o)) {}
};

// Global average pooling: every spatial dim to size 1 (AdaptiveAvgPool with output size 1).
class AdaptiveAvgPool : public Module {
 public:
  std::string type_name() const override { return "AdaptiveAvgPool"; }
  Tensor forward(const Tensor& x) override { return adaptive_avg_pool_global(x); }
};

// A lookup table [num, dim], initialised N(0, 1) as torch.nn.Embedding.
class Embedding : public Module {
 public:
  Embedding(int64_t num, int64_t dim, Generator* gen = nullptr);
  std::string type_name() const override { return "Embedding"; }
  Tensor forward(const Tensor& index) override;
  Tensor weight;
};

}  // namespace spool::nn
