// Dynamic values of the Jinja subset used by chat templates. Lists and dicts are shared by
// reference, as in Python, so that `ns.x = ...` or `list.append(...)` is seen by every holder.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace moon::jinja {

// Raised anywhere inside the interpreter; converted to moon::Error at the public boundary so
// that deeply nested evaluation code need not thread Results through every call.
class TemplateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& message);

class Value;
struct Dict;
struct CallArgs;
using List = std::vector<Value>;
using ListPtr = std::shared_ptr<List>;
using DictPtr = std::shared_ptr<Dict>;
using Function = std::function<Value(CallArgs&)>;
using FunctionPtr = std::shared_ptr<Function>;

struct Undefined {
  // The name that was looked up, for error messages when an undefined value is misused.
  std::string name;
};
struct None {};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kFunction };

  Value() : data_(Undefined{}) {}
  Value(None) : data_(None{}) {}                        // NOLINT
  Value(bool b) : data_(b) {}                           // NOLINT
  Value(int64_t i) : data_(i) {}                        // NOLINT
  Value(int i) : data_(static_cast<int64_t>(i)) {}      // NOLINT
  Value(double d) : data_(d) {}                         // NOLINT
  Value(std::string s) : data_(std::move(s)) {}         // NOLINT
  Value(std::string_view s) : data_(std::string(s)) {}  // NOLINT
  Value(const char* s) : data_(std::string(s)) {}       // NOLINT
  Value(ListPtr l) : data_(std::move(l)) {}             // NOLINT
  Value(DictPtr d) : data_(std::move(d)) {}             // NOLINT
  Value(FunctionPtr f) : data_(std::move(f)) {}         // NOLINT

  static Value undefined(std::string name) { return Value(Undefined{std::move(name)}); }
  static Value list(List items = {});
  static Value dict();
  static Value function(Function f);
  static Value from_json(const nlohmann::ordered_json& json);

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  bool is_number() const { return is_int() || is_float(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_function() const { return kind() == Kind::kFunction; }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return std::get<int64_t>(data_); }
  double as_float() const { return std::get<double>(data_); }
  // Ints, floats and bools as a double (Python's numeric tower).
  double as_number() const;
  const std::string& as_string() const { return std::get<std::string>(data_); }
  List& as_list() const { return *std::get<ListPtr>(data_); }
  Dict& as_dict() const { return *std::get<DictPtr>(data_); }
  const Function& as_function() const { return *std::get<FunctionPtr>(data_); }
  const std::string& undefined_name() const { return std::get<Undefined>(data_).name; }

  bool truthy() const;
  // How {{ value }} renders (Python's str()).
  std::string to_string() const;
  // Python's repr(), used inside rendered lists and dicts.
  std::string repr() const;
  std::string type_name() const;
  nlohmann::ordered_json to_json() const;

  bool operator==(const Value& other) const;

 private:
  explicit Value(Undefined u) : data_(std::move(u)) {}
  std::variant<Undefined, None, bool, int64_t, double, std::string, ListPtr, DictPtr, FunctionPtr>
      data_;
};

// A dict that keeps insertion order (Python 3.7+ semantics, which `tojson` and `items` show).
struct Dict {
  std::vector<std::pair<std::string, Value>> items;

  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value value);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> named;

  // The argument at `position` or named `name`; nullptr if neither was given.
  const Value* get(size_t position, std::string_view name) const;
};

// Python-style float formatting: shortest round trip, always with a '.' or exponent.
std::string format_float(double d);
// Serialization as @huggingface/jinja and Python's json.dumps do it: ", "/": " separators
// without indent, ","/": " with it, insertion key order, non-ASCII kept as UTF-8.
std::string to_json_text(const Value& value, int indent);

// UTF-8 helpers: Python strings index by code point.
std::u32string utf8_decode(std::string_view s);
std::string utf8_encode(std::u32string_view s);
size_t utf8_length(std::string_view s);

// While one is alive on a thread, it remembers every list and dict made there, and when it
// ends it empties those still alive. A template can make a container hold itself (`{% set
// ns.n = ns %}`, `l.append(l)`), a cycle reference counting never frees; the interpreter
// holds one for each render, whose containers nothing outside the render can reach.
class ContainerArena {
 public:
  ContainerArena();
  ~ContainerArena();
  ContainerArena(const ContainerArena&) = delete;
  ContainerArena& operator=(const ContainerArena&) = delete;

  static void note(const ListPtr& list);
  static void note(const DictPtr& dict);

 private:
  // Forgets the containers already freed, when the lists have doubled since the last time,
  // so that a render that makes many short-lived containers keeps no memory for them.
  void prune();

  std::vector<std::weak_ptr<List>> lists_;
  std::vector<std::weak_ptr<Dict>> dicts_;
  size_t prune_at_ = 1024;
  ContainerArena* previous_;
};

}  // namespace moon::jinja
