#include "api/detail/sqs_protocol.h"

#include <cctype>
#include <map>

#include <fmt/format.h>

namespace nimbus::api::detail {

using nlohmann::json;

namespace {

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (std::isdigit(static_cast<unsigned char>(c)) == 0) return false;
  }
  return true;
}

// Orders decimal digit strings by their value, however long they are (an
// index is the client's text: "AttributeName.99999999999999999999" must not
// overflow a conversion).
struct ByNumericValue {
  bool operator()(std::string_view a, std::string_view b) const {
    const auto strip = [](std::string_view s) {
      while (s.size() > 1 && s.front() == '0') s.remove_prefix(1);
      return s;
    };
    a = strip(a);
    b = strip(b);
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  }
};

// "1" -> {...}, "2" -> {...} as an array ordered by index.
json indexed_to_array(const json& node) {
  std::map<std::string, json, ByNumericValue> ordered;
  if (node.is_object()) {
    for (const auto& [k, v] : node.items()) {
      if (all_digits(k)) ordered.emplace(k, v);
    }
  }
  json out = json::array();
  for (auto& [i, v] : ordered) out.push_back(std::move(v));
  return out;
}

json convert(const json& tree);

// Flattened map entries {Name|Key, Value} -> {name: value}.
json entries_to_map(const json& node, std::string_view key_name, bool convert_values) {
  json out = json::object();
  for (const auto& entry : indexed_to_array(node)) {
    if (!entry.is_object() || !entry.contains(key_name) || !entry[std::string(key_name)].is_string()) continue;
    const json value = entry.contains("Value") ? entry["Value"] : json();
    out[entry[std::string(key_name)].get<std::string>()] = convert_values ? convert(value) : value;
  }
  return out;
}

// The query tree (dotted names split) in the JSON protocol's shape.
json convert(const json& tree) {
  if (!tree.is_object()) return tree;
  json out = json::object();
  for (const auto& [k, v] : tree.items()) {
    if (k == "Attribute") {
      out["Attributes"] = entries_to_map(v, "Name", false);
    } else if (k == "Tag") {
      out["tags"] = entries_to_map(v, "Key", false);
    } else if (k == "MessageAttribute" || k == "MessageSystemAttribute") {
      out[k + "s"] = entries_to_map(v, "Name", true);
    } else if (k == "AttributeName" || k == "MessageAttributeName" || k == "MessageSystemAttributeName") {
      out[k + "s"] = indexed_to_array(v);
    } else if (k.ends_with("RequestEntry")) {
      json entries = json::array();
      for (const auto& e : indexed_to_array(v)) entries.push_back(convert(e));
      out["Entries"] = std::move(entries);
    } else {
      out[k] = convert(v);
    }
  }
  return out;
}

void render(std::string& xml, std::string_view action, const json& value);

void element(std::string& xml, std::string_view name, const json& value, std::string_view action) {
  xml += '<';
  xml += name;
  xml += '>';
  render(xml, action, value);
  xml += "</";
  xml += name;
  xml += '>';
}

void render(std::string& xml, std::string_view action, const json& value) {
  if (value.is_string()) {
    xml += xml_escape(value.get_ref<const std::string&>());
    return;
  }
  if (value.is_boolean()) {
    xml += value.get<bool>() ? "true" : "false";
    return;
  }
  if (value.is_number()) {
    xml += value.dump();
    return;
  }
  if (!value.is_object()) return;
  for (const auto& [k, v] : value.items()) {
    if (k == "Attributes") {
      for (const auto& [name, val] : v.items()) {
        xml += "<Attribute><Name>" + xml_escape(name) + "</Name><Value>";
        render(xml, action, val);
        xml += "</Value></Attribute>";
      }
    } else if (k == "MessageAttributes") {
      for (const auto& [name, val] : v.items()) {
        xml += "<MessageAttribute><Name>" + xml_escape(name) + "</Name>";
        element(xml, "Value", val, action);
        xml += "</MessageAttribute>";
      }
    } else if (k == "QueueUrls" || k == "Messages" || k == "Successful" || k == "Failed") {
      const std::string item = k == "QueueUrls"    ? std::string("QueueUrl")
                               : k == "Messages"   ? std::string("Message")
                               : k == "Successful" ? fmt::format("{}ResultEntry", action)
                                                   : std::string("BatchResultErrorEntry");
      for (const auto& e : v) element(xml, item, e, action);
    } else {
      element(xml, k, v, action);
    }
  }
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      case '\r': out += "&#xD;"; break;
      default: out += c;
    }
  }
  return out;
}

json query_to_json(const http::Params& form) {
  json tree = json::object();
  for (const auto& [name, value] : form) {
    json* node = &tree;
    std::string_view rest = name;
    bool ok = true;
    while (ok) {
      const auto dot = rest.find('.');
      const std::string part(rest.substr(0, dot));
      if (!node->is_object()) {
        ok = false;
        break;
      }
      if (dot == std::string_view::npos) {
        if (!node->contains(part)) (*node)[part] = value;
        break;
      }
      node = &(*node)[part];
      if (node->is_null()) *node = json::object();
      rest = rest.substr(dot + 1);
    }
  }
  return convert(tree);
}

std::string json_to_query_xml(std::string_view action, const json& result, std::string_view request_id) {
  std::string xml = fmt::format("<?xml version=\"1.0\"?><{}Response xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\">",
                                action);
  if (result.is_object() && !result.empty()) {
    xml += fmt::format("<{}Result>", action);
    render(xml, action, result);
    xml += fmt::format("</{}Result>", action);
  } else {
    xml += fmt::format("<{}Result/>", action);
  }
  xml += fmt::format("<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{}Response>", request_id,
                     action);
  return xml;
}

std::string query_error_xml(std::string_view type, std::string_view code, std::string_view message,
                            std::string_view request_id) {
  return fmt::format(
      "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\"><Error>"
      "<Type>{}</Type><Code>{}</Code><Message>{}</Message><Detail/></Error><RequestId>{}</RequestId>"
      "</ErrorResponse>",
      type, xml_escape(code), xml_escape(message), request_id);
}

}  // namespace nimbus::api::detail
