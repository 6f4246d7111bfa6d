#include "server/json_body.h"

#include <fmt/format.h>

#include <optional>
#include <string>
#include <vector>

namespace moon::server {
namespace {

// Builds the DOM from nlohmann's SAX events. The SAX parser itself keeps its own explicit
// stack, so nothing here recurses; `open_` is the chain of containers being filled. Only the
// innermost open container grows, so the pointers to the open ones stay valid even in an
// ordered_json, whose objects are vectors.
template <typename json>
class BoundedDomBuilder {
 public:
  explicit BoundedDomBuilder(int max_depth) : max_depth_(max_depth) {}

  bool null() { return put(nullptr); }
  bool boolean(bool v) { return put(v); }
  bool number_integer(typename json::number_integer_t v) { return put(v); }
  bool number_unsigned(typename json::number_unsigned_t v) { return put(v); }
  bool number_float(typename json::number_float_t v, const std::string&) { return put(v); }
  bool string(std::string& v) { return put(std::move(v)); }
  bool binary(typename json::binary_t& v) { return put(json::binary(std::move(v))); }
  bool start_object(size_t) { return open(json::object()); }
  bool start_array(size_t) { return open(json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(std::string& k) {
    key_ = std::move(k);
    return true;
  }

  bool parse_error(size_t position, const std::string& token,
                   const nlohmann::detail::exception& e) {
    // 406 is nlohmann's "number overflow": valid JSON syntax, but no double holds it.
    if (e.id == 406) {
      const std::string where = path();
      error_ = invalid_request(
          where.empty() ? fmt::format("the number {} is out of range", abbreviate(token))
                        : fmt::format("'{}' is out of range: {}", where, abbreviate(token)),
          where);
    } else {
      error_ = invalid_request(
          fmt::format("the request body is not valid JSON: syntax error at byte {} near '{}'",
                      position, abbreviate(token)));
    }
    return false;
  }

  std::variant<json, ApiError> result(bool ok) {
    if (error_) return std::move(*error_);
    if (!ok) return invalid_request("the request body is not valid JSON");
    return std::move(root_);
  }

 private:
  struct Open {
    json* value;
    std::string key;  // this container's key in its parent ("" in an array or at the top)
    size_t index;     // elements so far, when it is an array
  };

  static std::string abbreviate(const std::string& token) {
    return token.size() <= 40 ? token : token.substr(0, 40) + "...";
  }

  // Where the value being parsed sits, as a client would name it: `messages[2].content`.
  std::string path() const {
    std::string out;
    auto name = [&out](const std::string& key) { out += (out.empty() ? "" : ".") + key; };
    for (size_t i = 1; i < open_.size(); ++i) {
      const Open& parent = open_[i - 1];
      if (parent.value->is_array()) {
        out += fmt::format("[{}]", parent.index - 1);
      } else {
        name(open_[i].key);
      }
    }
    if (!open_.empty()) {
      const Open& top = open_.back();
      if (top.value->is_array()) {
        out += fmt::format("[{}]", top.index);
      } else {
        name(key_);
      }
    }
    return out;
  }

  // Places a value in the container being filled; returns where it now lives.
  json* insert(json&& v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Open& top = open_.back();
    if (top.value->is_array()) {
      top.value->push_back(std::move(v));
      ++top.index;
      return &top.value->back();
    }
    json& slot = (*top.value)[key_];
    slot = std::move(v);
    return &slot;
  }

  template <typename T>
  bool put(T&& v) {
    insert(json(std::forward<T>(v)));
    return true;
  }

  bool open(json&& container) {
    if (static_cast<int>(open_.size()) >= max_depth_) {
      error_ = invalid_request(fmt::format("the request body nests objects and arrays deeper "
                                           "than {} levels",
                                           max_depth_),
                               path());
      return false;
    }
    const bool in_array = !open_.empty() && open_.back().value->is_array();
    std::string key = in_array || open_.empty() ? std::string() : key_;
    json* slot = insert(std::move(container));
    open_.push_back({slot, std::move(key), 0});
    return true;
  }

  bool close() {
    open_.pop_back();
    return true;
  }

  int max_depth_;
  json root_;
  std::vector<Open> open_;
  std::string key_;
  std::optional<ApiError> error_;
};

template <typename json>
std::variant<json, ApiError> parse_bounded(std::string_view body, int max_depth) {
  BoundedDomBuilder<json> builder(max_depth);
  const bool ok = json::sax_parse(body, &builder);
  return builder.result(ok);
}

}  // namespace

std::variant<nlohmann::json, ApiError> parse_json_body(std::string_view body, int max_depth) {
  return parse_bounded<nlohmann::json>(body, max_depth);
}

std::variant<nlohmann::ordered_json, ApiError> parse_ordered_json_body(std::string_view body,
                                                                       int max_depth) {
  return parse_bounded<nlohmann::ordered_json>(body, max_depth);
}

}  // namespace moon::server
