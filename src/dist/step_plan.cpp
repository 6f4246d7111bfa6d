#include "dist/step_plan.h"

#include <cstring>

namespace moon {
namespace {

template <typename T>
void put(std::vector<uint8_t>* out, const T& value) {
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  out->insert(out->end(), p, p + sizeof(T));
}

template <typename T>
void put_array(std::vector<uint8_t>* out, std::span<const T> values) {
  put<uint64_t>(out, values.size());
  const auto* p = reinterpret_cast<const uint8_t*>(values.data());
  out->insert(out->end(), p, p + values.size_bytes());
}

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  template <typename T>
  bool get(T* value) {
    if (bytes_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

  template <typename T>
  bool get_array(std::vector<T>* values) {
    uint64_t n = 0;
    if (!get(&n) || n > (bytes_.size() - pos_) / sizeof(T)) return false;
    values->resize(n);
    if (n > 0) std::memcpy(values->data(), bytes_.data() + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
    return true;
  }

  bool done() const { return pos_ == bytes_.size(); }

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
};

}  // namespace

void encode_step_plan(StepPlan::Kind kind, std::span<const std::pair<BlockId, BlockId>> copies,
                      const ForwardBatch& b, std::vector<uint8_t>* out) {
  out->clear();
  put(out, kind);
  std::vector<BlockId> flat;
  for (const auto& [src, dst] : copies) flat.insert(flat.end(), {src, dst});
  put_array<BlockId>(out, flat);
  put_array<int32_t>(out, b.tokens);
  put_array<int32_t>(out, b.positions);
  put_array<int64_t>(out, b.slot_mapping);
  put_array<int64_t>(out, b.query_start);
  put_array<int64_t>(out, b.context_len);
  put_array<BlockId>(out, b.block_tables);
  put(out, b.block_table_stride);
  put_array<int64_t>(out, b.logits_rows);
}

Status decode_step_plan(std::span<const uint8_t> bytes, StepPlan* plan) {
  Reader in(bytes);
  std::vector<BlockId> flat;
  ForwardBatch& b = plan->batch;
  const bool ok = in.get(&plan->kind) && in.get_array(&flat) && in.get_array(&b.tokens) &&
                  in.get_array(&b.positions) && in.get_array(&b.slot_mapping) &&
                  in.get_array(&b.query_start) && in.get_array(&b.context_len) &&
                  in.get_array(&b.block_tables) && in.get(&b.block_table_stride) &&
                  in.get_array(&b.logits_rows) && in.done() && flat.size() % 2 == 0;
  const auto kind = static_cast<uint8_t>(plan->kind);
  if (!ok || kind < 1 || kind > 3) {
    return make_error("tensor parallel: a step plan of {} bytes is malformed", bytes.size());
  }
  plan->block_copies.clear();
  for (size_t i = 0; i < flat.size(); i += 2) plan->block_copies.emplace_back(flat[i], flat[i + 1]);
  return Status::success();
}

}  // namespace moon
