#include "cdr/core/key_layout.h"

#include <charconv>

#include <fmt/format.h>

namespace cdr {

void append_be64(std::string& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string be64(std::uint64_t v) {
  std::string out;
  append_be64(out, v);
  return out;
}

std::uint64_t read_be64(std::string_view s) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

std::string partition::to_string() const { return fmt::format("{}/{}/{}", name(kind), month.to_string(), cls); }

void append_partition_prefix(std::string& out, const partition& p) {
  const auto m = static_cast<std::uint32_t>(p.month.index());
  const char bytes[partition_prefix_size] = {
      static_cast<char>(p.kind),          static_cast<char>((m >> 24) & 0xff), static_cast<char>((m >> 16) & 0xff),
      static_cast<char>((m >> 8) & 0xff), static_cast<char>(m & 0xff),         static_cast<char>((p.cls >> 8) & 0xff),
      static_cast<char>(p.cls & 0xff),
  };
  out.append(bytes, partition_prefix_size);
}

std::string partition_prefix(const partition& p) {
  std::string out;
  append_partition_prefix(out, p);
  return out;
}

void assign_record_key(std::string& out, const partition& p, std::string_view id) {
  out.clear();
  append_partition_prefix(out, p);
  out.append(id);
}

std::string record_key(const partition& p, std::string_view id) {
  std::string out;
  out.reserve(partition_prefix_size + id.size());
  assign_record_key(out, p, id);
  return out;
}

std::string subject_key(const partition& p, std::string_view hash, std::string_view id) {
  std::string out;
  out.reserve(partition_prefix_size + hash.size() + id.size());
  append_partition_prefix(out, p);
  out.append(hash);
  out.append(id);
  return out;
}

std::optional<partition> decode_partition(std::string_view key) {
  if (key.size() < partition_prefix_size) return std::nullopt;
  const auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(key[i])); };
  const auto kind = static_cast<record_kind>(b(0));
  if (kind != record_kind::cdr && kind != record_kind::usage) return std::nullopt;
  const std::uint32_t m = (b(1) << 24) | (b(2) << 16) | (b(3) << 8) | b(4);
  if (m > static_cast<std::uint32_t>(month::of(9999, 12).index())) return std::nullopt;
  return partition{kind, month::from_index(static_cast<std::int32_t>(m)),
                   static_cast<retention_class>((b(5) << 8) | b(6))};
}

std::string_view record_id_of(std::string_view key) {
  return key.size() < partition_prefix_size ? std::string_view{} : key.substr(partition_prefix_size);
}

std::string id_index_key(record_kind kind, std::string_view id) {
  std::string k(1, static_cast<char>(kind));
  k.append(id);
  return k;
}

std::string_view name(family f) {
  switch (f) {
    case family::metadata: return "metadata";
    case family::identifiers: return "identifiers";
    case family::usage: return "usage";
    case family::subject_index: return "subject_index";
    case family::held: return "held";
  }
  return "?";
}

std::optional<family> family_from_name(std::string_view text) {
  for (auto f : {family::metadata, family::identifiers, family::usage, family::subject_index, family::held}) {
    if (name(f) == text) return f;
  }
  return std::nullopt;
}

key_range partition_range(const partition& p) {
  key_range r{partition_prefix(p), partition_prefix(p)};
  // The end is the prefix plus one, as a 56-bit big-endian number.
  for (std::size_t i = partition_prefix_size; i-- > 0;) {
    auto byte = static_cast<unsigned char>(r.end[i]);
    r.end[i] = static_cast<char>(byte + 1);
    if (byte != 0xff) break;
  }
  return r;
}

key_range point_range(std::string_view key) {
  key_range r{std::string(key), std::string(key)};
  r.end.push_back('\0');
  return r;
}

key_range prefix_range(std::string_view prefix) {
  key_range r{std::string(prefix), std::string(prefix)};
  // The smallest key greater than every key with this prefix.
  while (!r.end.empty() && static_cast<unsigned char>(r.end.back()) == 0xff) r.end.pop_back();
  if (!r.end.empty()) r.end.back() = static_cast<char>(static_cast<unsigned char>(r.end.back()) + 1);
  return r;
}

std::string held_key(held_tag tag, std::string_view key) {
  std::string out(1, static_cast<char>(tag));
  out.append(key);
  return out;
}

key_range held_range(held_tag tag) { return prefix_range(std::string(1, static_cast<char>(tag))); }

std::string key_name(key_scope scope, const partition& p, std::uint32_t generation) {
  if (generation == 0) return fmt::format("{}/{}", static_cast<char>(scope), p.to_string());
  return fmt::format("{}/{}#{}", static_cast<char>(scope), p.to_string(), generation);
}

std::optional<key_ref> parse_key_name(std::string_view name) {
  // scope "/" kind "/" YYYY-MM "/" class ["#" generation]
  if (name.size() < 2 || name[1] != '/' || (name[0] != 'p' && name[0] != 'h')) return std::nullopt;
  const auto scope = static_cast<key_scope>(name[0]);
  const auto full = name;
  name.remove_prefix(2);
  std::uint32_t generation = 0;
  if (const auto hash = name.find('#'); hash != std::string_view::npos) {
    const auto text = name.substr(hash + 1);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), generation);
    if (ec != std::errc{} || end != text.data() + text.size() || generation == 0) return std::nullopt;
    name = name.substr(0, hash);
  }
  const auto slash1 = name.find('/');
  if (slash1 == std::string_view::npos) return std::nullopt;
  const auto slash2 = name.find('/', slash1 + 1);
  if (slash2 == std::string_view::npos) return std::nullopt;
  const auto kind = record_kind_from_name(name.substr(0, slash1));
  const auto m = month::parse(name.substr(slash1 + 1, slash2 - slash1 - 1));
  const auto cls_text = name.substr(slash2 + 1);
  if (!kind || !m || cls_text.empty() || cls_text.size() > 5) return std::nullopt;
  std::uint32_t cls = 0;
  for (char c : cls_text) {
    if (c < '0' || c > '9') return std::nullopt;
    cls = cls * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (cls > 0xffff) return std::nullopt;
  const partition p{*kind, *m, static_cast<retention_class>(cls)};
  if (key_name(scope, p, generation) != full) return std::nullopt;
  return key_ref{scope, p, generation};
}

}  // namespace cdr
