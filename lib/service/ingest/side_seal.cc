#include "side_seal.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cdr/core/hex.h"
#include "cdr/crypto/crypto.h"

namespace cdr::service {
namespace {

constexpr std::string_view format_name = "cdr-retention dead letter v1";

std::string associated(const dead_letter_seal::source& s) {
  return fmt::format("{}|{}|{}|{}", format_name, s.topic, s.partition, s.offset);
}

}  // namespace

dead_letter_seal::dead_letter_seal(std::string_view subject_key)
    : aead_(crypto::hmac_sha256(subject_key, "cdr-retention dead letter seal v1")) {}

std::string dead_letter_seal::seal(const source& from, std::string_view reason, std::string_view key,
                                   std::string_view value) {
  // The key's length, then the key and the value: both may be any bytes.
  std::string framed = fmt::format("{}:", key.size());
  framed.append(key).append(value);
  std::string sealed;
  {
    std::lock_guard lock(mutex_);
    sealed = aead_.seal(framed, associated(from));
  }
  return nlohmann::json{{"format", format_name},
                        {"source", {{"topic", from.topic}, {"partition", from.partition}, {"offset", from.offset}}},
                        {"reason", reason},
                        {"bytes", value.size()},
                        {"sealed", to_hex(sealed)}}
      .dump();
}

std::optional<dead_letter_seal::opened> dead_letter_seal::open(std::string_view envelope, std::string* why) {
  const auto j = nlohmann::json::parse(envelope, nullptr, false);
  opened out;
  std::string sealed;
  try {
    if (!j.is_object() || j.value("format", "") != format_name) throw std::invalid_argument("not a dead letter");
    const auto& s = j.at("source");
    out.from = {s.at("topic").get<std::string>(), s.at("partition").get<std::int32_t>(),
                s.at("offset").get<std::int64_t>()};
    out.reason = j.value("reason", "");
    const auto bytes = from_hex(j.at("sealed").get<std::string>());
    if (!bytes) throw std::invalid_argument("\"sealed\" is not hex");
    sealed = *bytes;
  } catch (const std::exception&) {
    if (why != nullptr)
      *why = fmt::format("not a dead letter of this daemon (a JSON object of format \"{}\")", format_name);
    return std::nullopt;
  }
  std::optional<std::string> framed;
  {
    std::lock_guard lock(mutex_);
    framed = aead_.open(sealed, associated(out.from));
  }
  const auto colon = framed ? framed->find(':') : std::string::npos;
  std::size_t key_size = 0;
  if (colon != std::string::npos) key_size = std::strtoull(framed->substr(0, colon).c_str(), nullptr, 10);
  if (!framed || colon == std::string::npos || key_size > framed->size() - colon - 1) {
    if (why != nullptr) {
      *why = "the dead letter does not open: sealed under another subject key, or its bytes or source were altered";
    }
    return std::nullopt;
  }
  out.key = framed->substr(colon + 1, key_size);
  out.value = framed->substr(colon + 1 + key_size);
  return out;
}

namespace {
constexpr std::string_view handover_prefix = "cdr-retention handover v1:";
}

handover_seal::handover_seal(std::string_view subject_key)
    : aead_(crypto::hmac_sha256(subject_key, "cdr-retention handover seal v1")) {}

std::string handover_seal::seal(std::string_view id, std::string_view event) {
  std::lock_guard lock(mutex_);
  return std::string(handover_prefix) + to_hex(aead_.seal(event, id));
}

std::optional<std::string> handover_seal::open(std::string_view id, std::string_view value) {
  if (value.substr(0, handover_prefix.size()) != handover_prefix) return std::nullopt;
  const auto sealed = from_hex(value.substr(handover_prefix.size()));
  if (!sealed) return std::nullopt;
  std::lock_guard lock(mutex_);
  return aead_.open(*sealed, id);
}

}  // namespace cdr::service
