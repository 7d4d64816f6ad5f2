#include "events/queue_message.h"

#include <openssl/evp.h>

#include <cctype>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/crypto.h"

namespace nimbus::events {

using base::ErrorCode;
using base::make_error;

namespace {

class Md5 {
 public:
  Md5() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) { EVP_DigestInit_ex(ctx_.get(), EVP_md5(), nullptr); }
  void update(std::string_view bytes) { EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()); }
  void update_length(std::size_t n) {
    const auto v = static_cast<std::uint32_t>(n);
    const char be[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                        static_cast<char>(v)};
    update(std::string_view(be, 4));
  }
  std::string hex() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), out, &len);
    return base::to_hex(std::string_view(reinterpret_cast<const char*>(out), len));
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

bool valid_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

bool numeric(std::string_view v) {
  // SQS Number: up to 38 digits of precision, -10^128..10^126; we check the form.
  std::size_t i = 0;
  if (i < v.size() && (v[i] == '-' || v[i] == '+')) ++i;
  bool digits = false;
  bool dot = false;
  for (; i < v.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(v[i])) != 0) {
      digits = true;
    } else if (v[i] == '.' && !dot) {
      dot = true;
    } else if ((v[i] == 'e' || v[i] == 'E') && digits) {
      ++i;
      if (i < v.size() && (v[i] == '-' || v[i] == '+')) ++i;
      if (i >= v.size()) return false;
      for (; i < v.size(); ++i) {
        if (std::isdigit(static_cast<unsigned char>(v[i])) == 0) return false;
      }
      return true;
    } else {
      return false;
    }
  }
  return digits;
}

}  // namespace

std::string md5_of_body(std::string_view body) {
  Md5 md5;
  md5.update(body);
  return md5.hex();
}

std::string md5_of_attributes(const MessageAttributeMap& attributes) {
  if (attributes.empty()) return {};
  Md5 md5;
  for (const auto& [name, attr] : attributes) {
    md5.update_length(name.size());
    md5.update(name);
    md5.update_length(attr.data_type.size());
    md5.update(attr.data_type);
    md5.update(std::string_view(attr.binary() ? "\x02" : "\x01", 1));
    md5.update_length(attr.value.size());
    md5.update(attr.value);
  }
  return md5.hex();
}

base::Status validate_attributes(const MessageAttributeMap& attributes) {
  if (attributes.size() > 10) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("Number of message attributes [{}] exceeds the allowed maximum [10].",
                                  attributes.size()));
  }
  for (const auto& [name, attr] : attributes) {
    bool ok = !name.empty() && name.size() <= 256 && name.front() != '.' && name.back() != '.' &&
              name.find("..") == std::string::npos && !starts_with_ci(name, "AWS.") &&
              !starts_with_ci(name, "Amazon.");
    for (char c : name) ok = ok && valid_name_char(c);
    if (!ok) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("Message (user) attribute '{}' is invalid. The attribute name can contain "
                                    "A-Z, a-z, 0-9, underscore (_), hyphen (-), and period (.) characters, "
                                    "up to 256 characters.",
                                    name));
    }
    const std::string_view type = attr.data_type;
    const bool known = type.starts_with("String") || type.starts_with("Number") || type.starts_with("Binary");
    const bool well_formed = type.size() == 6 || (type.size() > 7 && type[6] == '.' && type.size() <= 256);
    if (type.empty()) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("The message attribute '{}' must contain non-empty message attribute type.",
                                    name));
    }
    if (!known || !well_formed) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("The type of message (user) attribute '{}' is invalid. You must use only the "
                                    "following supported type prefixes: Binary, Number, String.",
                                    name));
    }
    if (attr.value.empty()) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("The message attribute '{}' must contain non-empty message attribute value "
                                    "for message attribute type '{}'.",
                                    name, type.substr(0, 6)));
    }
    if (type.starts_with("Number") && !numeric(attr.value)) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("Can't cast the value of message (user) attribute '{}' to a number.", name));
    }
    if (!attr.binary() && !valid_message_text(attr.value)) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("Message (user) attribute '{}' value contains invalid characters.", name));
    }
  }
  return base::Ok{};
}

std::size_t attributes_size(const MessageAttributeMap& attributes) {
  std::size_t n = 0;
  for (const auto& [name, attr] : attributes) n += name.size() + attr.data_type.size() + attr.value.size();
  return n;
}

bool valid_message_text(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    std::uint32_t cp = 0;
    std::size_t len = 0;
    if (c < 0x80) {
      cp = c;
      len = 1;
    } else if ((c & 0xE0) == 0xC0) {
      cp = c & 0x1F;
      len = 2;
    } else if ((c & 0xF0) == 0xE0) {
      cp = c & 0x0F;
      len = 3;
    } else if ((c & 0xF8) == 0xF0) {
      cp = c & 0x07;
      len = 4;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Overlong forms.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    const bool allowed = cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
                         (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
    if (!allowed) return false;
    i += len;
  }
  return true;
}

std::string attributes_to_json(const MessageAttributeMap& attributes) {
  if (attributes.empty()) return "{}";
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, attr] : attributes) {
    nlohmann::json v = {{"DataType", attr.data_type}};
    if (attr.binary()) {
      v["BinaryValue"] = base::base64_encode(attr.value);
    } else {
      v["StringValue"] = attr.value;
    }
    out[name] = std::move(v);
  }
  return out.dump();
}

MessageAttributeMap attributes_from_json(std::string_view text) {
  MessageAttributeMap out;
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_object()) return out;
  for (const auto& [name, v] : doc.items()) {
    if (!v.is_object()) continue;
    MessageAttributeValue attr{v.value("DataType", std::string()), {}};
    if (attr.binary()) {
      attr.value = base::base64_decode(v.value("BinaryValue", std::string())).value_or(std::string());
    } else {
      attr.value = v.value("StringValue", std::string());
    }
    out.emplace(name, std::move(attr));
  }
  return out;
}

}  // namespace nimbus::events
