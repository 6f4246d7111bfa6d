// Decides when a sequence ends and what of its text may be streamed yet: stop token ids,
// EOS (unless ignore_eos), stop strings over the decoded text, max_tokens, min_tokens.
//
// A stop string may be split across tokens, so text that could be the start of one is held
// back until the next tokens decide it: streamed text never contains a stop string (unless
// include_stop_str_in_output asks for it) and never has to be taken back.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sampling/finish_reason.h"
#include "sampling/sampling_params.h"

namespace moon {

struct StopUpdate {
  std::string text;  // safe to stream now
  FinishReason finish = FinishReason::kNone;
  int32_t stop_token = -1;  // the stop token or EOS that ended the sequence, if one did
  int stop_string = -1;     // index into SamplingParams::stop of the string that did
};

class StopChecker {
 public:
  StopChecker(const SamplingParams& params, std::vector<int32_t> eos_ids);

  // One generated token and its decoded text (possibly empty, e.g. half a UTF-8 character
  // that the decoder holds). After a finishing update, push must not be called again.
  StopUpdate push(int32_t token, std::string_view piece);

  // Ends the text of a sequence, whether it ended here or outside (the engine's length limit
  // or a stop token, an abort): `tail` is text decoded at the end (e.g. what a UTF-8 decoder
  // still held). The held-back text and the tail come out, cut at a stop string if they hold
  // one. Nothing comes out once a stop token or string ended the text.
  StopUpdate finish(std::string_view tail = {});

  // Bytes pushed but not yet released (the start of a possible stop string).
  size_t held_size() const { return held_.size(); }

  int64_t n_generated() const { return n_generated_; }
  bool finished() const { return finished_; }

 private:
  // Length of the longest suffix of held_ that is a proper prefix of some stop string.
  size_t partial_match_length() const;
  // Where the earliest stop string starts in held_ and which one it is (-1: none).
  std::pair<size_t, int> earliest_stop() const;
  // If held_ contains a stop string: fills `u` with the text before it, finishes, true.
  bool cut_at_stop(StopUpdate& u);

  SamplingParams params_;
  std::vector<int32_t> eos_ids_;
  size_t longest_stop_ = 0;
  std::string held_;
  int64_t n_generated_ = 0;
  bool finished_ = false;
  bool stopped_ = false;  // by a stop token or string (finished_ also counts the length limit)
};

}  // namespace moon
