// The one place engine updates become what a user sees, shared by `moon generate` and every
// server endpoint: per sequence, the incremental detokenizer (whole UTF-8 characters only),
// the stop-string check with its hold-back, the finish decision, and the record of tokens,
// logprobs and text offsets that protocol formatting reads. Front ends only format.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "engine/sequence_update.h"
#include "engine/stop_checker.h"
#include "tokenizer/incremental_decoder.h"

namespace moon {

class SequenceOutput {
 public:
  // `tokenizer` must outlive the output. Special tokens are not shown.
  SequenceOutput(const Tokenizer& tokenizer, const SamplingParams& params);

  // What one update changed.
  struct Delta {
    std::string text;          // text released by this update (appended to text())
    bool finished = false;     // this update ended the sequence
    bool stop_engine = false;  // a stop string ended it before the engine did: tell it
  };
  // Takes one of this sequence's updates (its top logprobs are moved out). Updates after the
  // sequence finished (the engine's own end of a sequence a stop string ended) change
  // nothing.
  Delta apply(SequenceUpdate& update);

  const std::string& text() const { return text_; }
  const std::vector<TokenId>& ids() const { return ids_; }
  const std::vector<float>& logprobs() const { return logprobs_; }
  // Per token: the top logprobs asked for (empty when none were).
  const std::vector<std::vector<TokenLogprob>>& top_logprobs() const { return top_; }
  // Per token: where its text starts in text() (counting text held back at the time).
  const std::vector<size_t>& offsets() const { return offsets_; }
  bool finished() const { return finished_; }
  FinishReason finish_reason() const { return reason_; }
  bool stopped_by_string() const { return stopped_by_string_; }

 private:
  IncrementalDecoder decoder_;
  StopChecker stop_;
  std::string text_;
  std::vector<TokenId> ids_;
  std::vector<float> logprobs_;
  std::vector<std::vector<TokenLogprob>> top_;
  std::vector<size_t> offsets_;
  bool finished_ = false;
  FinishReason reason_ = FinishReason::kNone;
  bool stopped_by_string_ = false;
};

}  // namespace moon
