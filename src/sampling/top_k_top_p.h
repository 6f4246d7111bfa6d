// Truncation by partial selection, never a full sort of the vocabulary: the k best logits
// by a threshold scan with occasional nth_element cuts (O(V + k log k)), and the top-p
// nucleus by a quickselect that partitions on probability mass (O(n) expected).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace moon {

struct Candidate {
  float logit;
  int32_t id;
  float weight;  // unnormalized probability, filled by the caller
};

// Order of preference: higher logit first, then the lower id.
inline bool better(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// The k best tokens of `logits` with logit >= min_logit (NaN never qualifies), in no
// particular order, into `out` (cleared first). Fewer when fewer qualify.
void select_top_k(std::span<const float> logits, int64_t k, float min_logit,
                  std::vector<Candidate>& out);

// Reorders `c` so that its first m entries are the nucleus: the fewest best tokens (by
// `better`) whose weights add up to at least `mass` (at least one token; all of them if the
// total falls short). Returns m. The weights must be >= 0.
size_t top_p_prefix(std::span<Candidate> c, double mass);

}  // namespace moon
