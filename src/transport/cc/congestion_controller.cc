#include "transport/cc/congestion_controller.h"

#include <string>

#include "transport/cc/model_rate_controller.h"

namespace ferry::cc {

std::unique_ptr<CongestionController> make_controller(const RateConfig& cfg) {
  return std::make_unique<ModelRateController>(cfg);
}

Result<Policy> parse_policy(std::string_view text) {
  if (text == "fixed") return Policy::kFixed;
  if (text == "high") return Policy::kHigh;
  if (text == "fair") return Policy::kFair;
  if (text == "low") return Policy::kLow;
  return Status(Error::kUsage,
                "unknown rate policy '" + std::string(text) + "' (expected fixed, high, fair or low)");
}

const char* to_string(Policy p) {
  switch (p) {
    case Policy::kFixed: return "fixed";
    case Policy::kHigh: return "high";
    case Policy::kFair: return "fair";
    case Policy::kLow: return "low";
  }
  return "unknown";
}

}  // namespace ferry::cc
