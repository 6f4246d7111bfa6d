#include "cli/bench_offline_support.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "kv/kv_cache_manager.h"
#include "util/check.h"
#include "util/format_bytes.h"

namespace moon {

RandomPrompts::RandomPrompts(const Tokenizer& tok, uint64_t seed) : rng_(seed) {
  for (TokenId id = 0; id < tok.vocab_size(); ++id) {
    if (tok.is_special(id) || tok.is_eog(id) || tok.token_type(id) == TokenType::Unused) continue;
    if (id == tok.bos_id()) continue;
    candidates_.push_back(id);
  }
  if (tok.add_bos() && tok.bos_id() >= 0) bos_ = tok.bos_id();
}

std::vector<TokenId> RandomPrompts::make(int64_t n) {
  MOON_CHECK(usable(), "RandomPrompts::make: no ordinary token to draw");
  std::vector<TokenId> ids;
  ids.reserve(static_cast<size_t>(std::max<int64_t>(n, 0)));
  if (bos_ && n > 0) ids.push_back(*bos_);
  std::uniform_int_distribution<size_t> pick(0, candidates_.size() - 1);
  while (static_cast<int64_t>(ids.size()) < n) ids.push_back(candidates_[pick(rng_)]);
  return ids;
}

ModelSummary summarize_model(const std::string& spec, const gguf::GgufFile& file) {
  ModelSummary s;
  s.path = spec.empty() ? "builtin:tiny" : spec;
  s.name =
      s.path.rfind("builtin:", 0) == 0 ? s.path : std::filesystem::path(s.path).filename().string();
  s.size = file.file_size();
  std::map<DType, uint64_t> bytes_by_type;
  for (const gguf::TensorInfo& t : file.tensors()) {
    s.n_params += t.n_elements;
    if (t.n_dims >= 2) bytes_by_type[t.type] += t.n_bytes;
  }
  const auto most =
      std::max_element(bytes_by_type.begin(), bytes_by_type.end(),
                       [](const auto& a, const auto& b) { return a.second < b.second; });
  s.type = most == bytes_by_type.end() ? "?" : std::string(dtype_name(most->first));
  return s;
}

Status check_batch_fits(const KvLayout& kv, int64_t batch, int64_t seq_len) {
  const double watermark = KvCacheManager::Options{}.watermark;
  const int64_t blocks_per_seq = (seq_len + kv.block_size - 1) / kv.block_size;
  const int64_t needed = batch * blocks_per_seq;
  const auto usable_of = [&](int64_t blocks) {
    return blocks - static_cast<int64_t>(watermark * static_cast<double>(blocks));
  };
  const int64_t usable = usable_of(kv.num_blocks);
  if (needed <= usable) return Status::success();
  int64_t wanted = static_cast<int64_t>(std::ceil(static_cast<double>(needed) / (1.0 - watermark)));
  while (usable_of(wanted) < needed) ++wanted;
  const uint64_t block_bytes = kv.bytes_per_token() * static_cast<uint64_t>(kv.block_size);
  const uint64_t mib = uint64_t{1} << 20;
  const uint64_t wanted_mib = (static_cast<uint64_t>(wanted) * block_bytes + mib - 1) / mib;
  return make_error(
      "--batch-size {} sequences of {} tokens need {} KV cache blocks at once but the cache has "
      "{} usable ({} blocks of {} tokens, {}): raise --kv-cache-memory to at least {}MiB (or "
      "lower --batch-size, --input-len or --output-len)",
      batch, seq_len, needed, usable, kv.num_blocks, kv.block_size,
      format_bytes(static_cast<uint64_t>(kv.num_blocks) * block_bytes), wanted_mib);
}

MeanSd mean_sd(const std::vector<double>& samples) {
  MeanSd m;
  if (samples.empty()) return m;
  double sum = 0.0;
  for (double s : samples) sum += s;
  m.mean = sum / static_cast<double>(samples.size());
  if (samples.size() < 2) return m;
  double squares = 0.0;
  for (double s : samples) squares += (s - m.mean) * (s - m.mean);
  m.sd = std::sqrt(squares / static_cast<double>(samples.size() - 1));
  return m;
}

std::string format_mean_sd(const MeanSd& m) {
  return fmt::format("{:.2f} ± {:.2f}", m.mean, m.sd);
}

std::string format_count(uint64_t n) {
  const double v = static_cast<double>(n);
  if (v >= 1e9) return fmt::format("{:.2f} B", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.2f} M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.2f} K", v / 1e3);
  return fmt::format("{}", n);
}

namespace {

// Display width: "±" is two bytes in UTF-8 but one column.
size_t display_width(const std::string& s) {
  size_t width = 0;
  for (unsigned char c : s) width += (c & 0xC0) != 0x80;
  return width;
}

std::string pad(const std::string& s, size_t width, bool right) {
  const size_t w = display_width(s);
  const std::string fill(w < width ? width - w : 0, ' ');
  return right ? fill + s : s + fill;
}

}  // namespace

std::string format_table(const std::vector<TableColumn>& columns,
                         const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const TableColumn& c : columns)
    widths.push_back(std::max<size_t>(display_width(c.header), 3));
  for (const auto& row : rows) {
    MOON_CHECK(row.size() == columns.size(), "format_table: a row of {} cells for {} columns",
               row.size(), columns.size());
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], display_width(row[i]));
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out = "|";
    for (size_t i = 0; i < cells.size(); ++i) {
      out += " " + pad(cells[i], widths[i], columns[i].right_aligned) + " |";
    }
    return out + "\n";
  };
  std::vector<std::string> headers, rules;
  for (size_t i = 0; i < columns.size(); ++i) {
    headers.push_back(columns[i].header);
    rules.push_back(columns[i].right_aligned ? std::string(widths[i] - 1, '-') + ":"
                                             : std::string(widths[i], '-'));
  }
  std::string out = line(headers) + line(rules);
  for (const auto& row : rows) out += line(row);
  return out;
}

}  // namespace moon
