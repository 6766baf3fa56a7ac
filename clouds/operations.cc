#include "clouds/operations.h"

namespace ch {

namespace {

MetaValue::Map* find_map(MetaValue::Map& m, std::string_view key) {
  for (auto& [k, v] : m)
    if (k == key) return v.is_map() ? &v.map() : nullptr;
  return nullptr;
}

// The mapping at KEY of M, created (replacing a non-mapping value) if needed.
MetaValue::Map& ensure_map(MetaValue::Map& m, std::string_view key) {
  for (auto& [k, v] : m) {
    if (k != key) continue;
    if (!v.is_map()) v = MetaValue(MetaValue::Map{});
    return v.map();
  }
  m.emplace_back(std::string(key), MetaValue(MetaValue::Map{}));
  return m.back().second.map();
}

// Sets KEY of M to VALUE in place, or appends it.
void set_entry(MetaValue::Map& m, std::string_view key, std::string value) {
  for (auto& [k, v] : m) {
    if (k == key) {
      v = MetaValue(std::move(value));
      return;
    }
  }
  m.emplace_back(std::string(key), MetaValue(std::move(value)));
}

void erase_key(MetaValue::Map& m, std::string_view key) {
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (it->first == key) {
      m.erase(it);
      return;
    }
  }
}

std::string scalar_or_empty(const MetaValue& v) {
  if (!v.is_scalar() || v.is_null()) return "";
  return v.scalar();
}

MetaValue::Map top_map(const ImageMetadata& meta, std::string_view key) {
  const MetaValue* v = meta.get(key);
  if (!v || !v->is_map()) return {};
  return v->map();
}

// Writes OPS back as `operations`, or removes the key when OPS is empty.
void store_operations(ImageMetadata& meta, MetaValue::Map ops) {
  if (ops.empty()) {
    meta.remove("operations");
  } else {
    meta.set("operations", MetaValue(std::move(ops)));
  }
}

}  // namespace

std::optional<std::string> op_get(const ImageMetadata& meta, std::string_view section,
                                  std::string_view key) {
  const MetaValue* ops = meta.get("operations");
  if (!ops) return std::nullopt;
  const MetaValue* sec = ops->find(section);
  if (!sec) return std::nullopt;
  const MetaValue* v = sec->find(key);
  if (!v) return std::nullopt;
  std::string s = scalar_or_empty(*v);
  if (s.empty()) return std::nullopt;
  return s;
}

std::vector<std::pair<std::string, std::string>> op_entries(const ImageMetadata& meta,
                                                            std::string_view section) {
  std::vector<std::pair<std::string, std::string>> out;
  const MetaValue* ops = meta.get("operations");
  const MetaValue* sec = ops ? ops->find(section) : nullptr;
  if (!sec || !sec->is_map()) return out;
  for (const auto& [k, v] : sec->map()) {
    std::string s = scalar_or_empty(v);
    if (!s.empty()) out.emplace_back(k, s);
  }
  return out;
}

void op_set(ImageMetadata& meta, std::string_view section, std::string_view key,
            std::string value) {
  MetaValue::Map ops = top_map(meta, "operations");
  set_entry(ensure_map(ops, section), key, std::move(value));
  meta.set("operations", MetaValue(std::move(ops)));
}

void op_remove(ImageMetadata& meta, std::string_view section, std::string_view key) {
  if (!meta.get("operations")) return;
  MetaValue::Map ops = top_map(meta, "operations");
  if (MetaValue::Map* sec = find_map(ops, section)) {
    erase_key(*sec, key);
    if (sec->empty()) erase_key(ops, section);
  }
  store_operations(meta, std::move(ops));
}

void op_remove_section(ImageMetadata& meta, std::string_view section) {
  if (!meta.get("operations")) return;
  MetaValue::Map ops = top_map(meta, "operations");
  erase_key(ops, section);
  store_operations(meta, std::move(ops));
}

std::optional<std::string> map_get(const ImageMetadata& meta, std::string_view key,
                                   std::string_view entry) {
  const MetaValue* m = meta.get(key);
  const MetaValue* v = m ? m->find(entry) : nullptr;
  if (!v) return std::nullopt;
  std::string s = scalar_or_empty(*v);
  if (s.empty()) return std::nullopt;
  return s;
}

void map_set(ImageMetadata& meta, std::string_view key, std::string_view entry, std::string value) {
  MetaValue::Map m = top_map(meta, key);
  set_entry(m, entry, std::move(value));
  meta.set(key, MetaValue(std::move(m)));
}

std::vector<std::pair<std::string, std::string>> map_entries(const ImageMetadata& meta,
                                                             std::string_view key) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [k, v] : top_map(meta, key)) {
    std::string s = scalar_or_empty(v);
    if (!s.empty()) out.emplace_back(k, s);
  }
  return out;
}

}  // namespace ch
