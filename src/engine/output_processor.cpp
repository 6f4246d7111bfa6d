#include "engine/output_processor.h"

namespace moon {

SequenceOutput::SequenceOutput(const Tokenizer& tokenizer, const SamplingParams& params)
    : decoder_(tokenizer, /*skip_special=*/true, /*continuation=*/true),
      stop_(params, tokenizer.eog_ids()) {}

SequenceOutput::Delta SequenceOutput::apply(SequenceUpdate& u) {
  Delta delta;
  if (finished_) return delta;
  StopUpdate stop;
  if (u.token >= 0) {
    offsets_.push_back(text_.size() + stop_.held_size());
    ids_.push_back(u.token);
    logprobs_.push_back(u.logprob);
    top_.push_back(std::move(u.top_logprobs));
    stop = stop_.push(u.token, decoder_.push(u.token));
    delta.text = std::move(stop.text);
  }
  if (stop.finish == FinishReason::kNone && !u.finished) {
    text_ += delta.text;
    return delta;
  }
  // The text may end here before the engine ends the sequence (a stop string).
  delta.stop_engine = !u.finished;
  const StopUpdate tail = stop_.finish(decoder_.flush());
  delta.text += tail.text;
  text_ += delta.text;
  stopped_by_string_ = stop.stop_string >= 0 || tail.stop_string >= 0;
  reason_ = stopped_by_string_                   ? FinishReason::kStop
            : stop.finish != FinishReason::kNone ? stop.finish
                                                 : u.finish_reason;
  finished_ = true;
  delta.finished = true;
  return delta;
}

}  // namespace moon
