// Turns the answers of several shards to one request into the answer one server would
// have sent: one ParseComplete/BindComplete/RowDescription, the shards' rows (merged by a
// sharding::Merger when the statement needs it, else concatenated as they arrive), one
// CommandComplete with the shards' tags combined ("UPDATE 7"), COPY responses combined,
// and the first error instead of a result when any shard failed.
//
//   Gather g(3, std::move(spec_factory));   // three shards, positions 0..2
//   for each frame of the shard at position i:  g.OnFrame(i, frame, client_out);
//   when g.done():  write ReadyForQuery(g.status()) to the client (the unit's end).
//
// Every shard receives the same request, so each answers with the same sequence of
// messages. Control messages (ParseComplete, BindComplete, NoData, RowDescription...) go to
// the client when the first shard sends them and are dropped for the others, so a fast
// shard's rows never wait for a slow shard's BindComplete; CommandComplete, CopyDone and
// CopyInResponse wait for every shard. ReadyForQuery ends a shard's part; the client's
// ReadyForQuery is the session's to write (it may end a longer sequence).
//
// No I/O and no clocks: a Gather belongs to one client session and runs on its thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "protocol/buffer.h"
#include "protocol/frame.h"
#include "sharding/command_tag.h"
#include "sharding/merge.h"

namespace pgring::proxy {

class Gather {
 public:
  // Builds the merge of a SELECT from the first shard's RowDescription; empty when the rows
  // are only concatenated (writes with RETURNING, COPY, reads that need no merge).
  using SpecFactory =
      std::function<absl::StatusOr<sharding::MergeSpec>(std::span<const protocol::RowField>)>;

  // `silent`: only an error reaches the client (pgring's own COMMIT after a statement).
  Gather(size_t shards, SpecFactory merge, bool silent = false);
  Gather(const Gather&) = delete;
  Gather& operator=(const Gather&) = delete;

  // Feeds one message of the shard at `position`; appends what the client gets now to `out`.
  void OnFrame(size_t position, const protocol::Frame& frame, protocol::Buffer& out);

  // Every shard has sent ReadyForQuery.
  bool done() const { return ready_ == shards_.size(); }
  // Every shard has sent CopyInResponse (COPY FROM STDIN may start).
  bool copy_in_ready() const { return copy_in_ == shards_.size(); }
  // A shard failed (its error goes to the client once every shard is done).
  bool failed() const { return failed_; }
  // Combined transaction status: 'E' if a shard is in a failed transaction, else 'T' if any
  // is in a transaction, else 'I'.
  char status() const;
  // COPY ... TO STDOUT with a header line (CSV HEADER): only the first shard's header
  // reaches the client. Binary COPY output is always stitched into one stream (one
  // signature header, one trailer).
  void set_copy_header(bool header) { copy_header_ = header; }
  // Fails the unit with `error` (for example a COPY row without a valid key); the error goes
  // to the client once every shard is done.
  void Fail(const absl::Status& error);

 private:
  struct Shard {
    // Occurrences of the control messages that go to the client once.
    uint32_t parse_complete = 0, bind_complete = 0, close_complete = 0, no_data = 0,
             row_description = 0, empty_query = 0, suspended = 0, copy_out = 0;
    bool completed = false;  // CommandComplete or CopyDone of the current result arrived
    bool copy_done = false;
    uint64_t copy_data = 0;  // CopyData messages received
    std::string held;        // binary COPY: the latest data, which may end with the trailer
    bool copy_in = false;
    bool ready = false;
    char status = 'I';
  };
  // Forwards the n-th occurrence of a control message once: when the first shard sends it.
  void Once(uint32_t Shard::*counter, uint32_t& emitted, size_t position,
            const protocol::Frame& frame, protocol::Buffer& out);
  void Dispatch(size_t position, const protocol::Frame& frame, protocol::Buffer& out);
  void OnRowDescription(size_t position, const protocol::Frame& frame, protocol::Buffer& out);
  void OnCommandComplete(size_t position, const protocol::Frame& frame, protocol::Buffer& out);

  std::vector<Shard> shards_;
  SpecFactory merge_factory_;
  std::unique_ptr<sharding::Merger> merger_;
  sharding::CommandTagMerger tags_;
  size_t completed_ = 0;
  size_t copy_done_ = 0;
  size_t copy_in_ = 0;
  size_t ready_ = 0;
  uint32_t parse_complete_ = 0, bind_complete_ = 0, close_complete_ = 0, no_data_ = 0,
           row_description_ = 0, empty_query_ = 0, suspended_ = 0, copy_out_ = 0;
  bool failed_ = false;
  bool silent_ = false;
  bool copy_header_ = false;
  bool copy_binary_ = false;
  bool copy_header_sent_ = false;
  void OnCopyData(size_t position, const protocol::Frame& frame, protocol::Buffer& out);
  std::string error_;  // the ErrorResponse message to send at the end
};

}  // namespace pgring::proxy
