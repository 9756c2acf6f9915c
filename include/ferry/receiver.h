// The embedded receiver (`ferry recv`); ferryd reuses it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ferry/options.h"
#include "ferry/status.h"

namespace ferry {

class Receiver {
 public:
  // Opens the root and binds the listening socket (so url() is valid before run()).
  static Result<std::unique_ptr<Receiver>> create(const ReceiveOptions& options);
  virtual ~Receiver() = default;

  // "ferry://127.0.0.1:7400/": the URL a sender should use.
  virtual std::string url() const = 0;
  virtual uint16_t port() const = 0;

  // Serves sessions until stop(), or with options.once until the first session ends;
  // then returns that session's status.
  virtual Status run() = 0;
  // Thread-safe; run() returns soon after.
  virtual void stop() = 0;
};

}  // namespace ferry
