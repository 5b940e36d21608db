// Splits the data of `COPY t FROM STDIN` by shard key: reads the client's CopyData bodies
// as PostgreSQL 15 reads COPY text and CSV input, and appends each complete data row,
// byte for byte, to a CopyData message for the shard that owns the row's key.
//
//   absl::StatusOr<CopyFormat> format = CopyFormatOf(*statement.copy);  // 0A000 for binary
//   CopySplitter splitter(*format, *plan.copy_split, ring);  // ring: the plan's snapshot
//   std::vector<protocol::Buffer> out(ring->shard_count());
//   on client CopyData:  status = splitter.Add(body, out);  then send out[i] to shard i
//   on client CopyDone:  status = splitter.Finish(out);     then send out[i], CopyDone
//   on an error status:  send CopyFail to every shard and the status to the client
//
// Rows follow PostgreSQL's COPY FROM line rules (copyfromparse.c): "\n", "\r\n" or "\r"
// ends a line, whichever the first line uses (a different one later is an error, as in
// PostgreSQL); in text format a backslash escapes the next byte (so backslash-newline does
// not end the row); in CSV a quoted field may hold newlines; "\." followed by the line end
// ends the data (in text format also after data on the same line, in CSV only alone on a
// line) and everything after it is dropped. Only the shard-key field of each row is
// decoded (escapes, quotes, the NULL string); every other byte is forwarded unchanged.
//
// A HEADER line is sent to every shard (each shard's COPY skips or matches its own first
// line). A row whose key is NULL (23502), missing (22P04) or not valid for the key type
// (22P02 / 22003) fails the COPY; so do the line-end errors PostgreSQL raises (22P04).
// Messages start with "COPY line N:", N counted as PostgreSQL counts it (the header is
// line 1; newlines inside CSV quotes count).
//
// Assumes the client encoding keeps ASCII bytes ASCII (UTF8, LATIN*, EUC_*; not SJIS,
// BIG5, GBK, GB18030, UHC, JOHAB) and that text keys arrive in the server's encoding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "protocol/buffer.h"
#include "protocol/frame.h"
#include "sharding/ring.h"
#include "sharding/router.h"
#include "sharding/statement.h"
#include "sharding/types.h"

namespace pgring::sharding {

// The data format of one COPY FROM STDIN, with PostgreSQL's defaults filled in.
struct CopyFormat {
  bool csv = false;
  char delimiter = '\t';    // ',' for CSV
  char quote = '"';         // CSV only
  char escape = '"';        // CSV only; the quote unless ESCAPE says otherwise
  std::string null_string;  // "\N" in text format, "" in CSV
  bool header = false;      // the first line is a header (HEADER true or MATCH)
};

// Returns the format of a COPY ... FROM STDIN statement. Errors are protocol::SqlError
// statuses: 0A000 for what pgring cannot split (FORMAT binary, COPY TO, a file or program)
// and for multi-byte delimiter or quote (as PostgreSQL), 22023 for the option values
// PostgreSQL rejects (newline delimiter, delimiter inside the NULL string, ...), each with
// a hint naming the fix. The CSV escape is CopyInfo's ESCAPE, else the quote.
absl::StatusOr<CopyFormat> CopyFormatOf(const CopyInfo& copy);

// Owned by one session (one thread); not thread-safe. Holds the ring it was built with for
// the whole COPY, so a ring swapped meanwhile does not move rows mid-COPY. Borrows nothing
// beyond each call. After the first error every call returns that error again.
class CopySplitter {
 public:
  // Longest row (raw bytes, with its line end) kept while waiting for its end: as large as
  // one client message may be.
  static constexpr size_t kDefaultMaxRowBytes = protocol::kDefaultMaxMessage;

  // Requires `ring` non-null and split.key_index >= 0.
  CopySplitter(CopyFormat format, CopySplit split, std::shared_ptr<const Ring> ring,
               size_t max_row_bytes = kDefaultMaxRowBytes);

  // Splits `data`, the body of one client CopyData message (any cut of the stream: a row,
  // a field, an escape or a quote may continue in the next message). Appends to
  // out[shard.value()] (out.size() must be the ring's shard count) at most one CopyData
  // message per shard holding whole rows in input order; the header line goes to every
  // shard. The unfinished row at the end is kept for the next call. Data after the
  // end-of-data marker is dropped. On error `out` still holds well-formed messages (with
  // rows before the failing one): fail the COPY on every shard.
  absl::Status Add(std::span<const std::byte> data, std::vector<protocol::Buffer>& out);

  // Ends the data (the client's CopyDone): routes a last row that has no line end (or sends
  // a header that has none to every shard); 22P04 if a CSV quoted field is unterminated
  // or, in text format, "\." ends the data without a line end (as PostgreSQL). Further
  // calls do nothing.
  absl::Status Finish(std::vector<protocol::Buffer>& out);

  // Returns the number of data rows routed so far (the header is not a data row).
  uint64_t rows() const { return rows_; }
  // Returns the number of data rows routed to `shard` (0 for an id outside the ring).
  uint64_t rows_to(ShardId shard) const;
  // Returns true once the end-of-data marker "\." was read.
  bool ended() const { return ended_; }

 private:
  enum class Eol : uint8_t { kUnknown, kNl, kCr, kCrNl };
  // What the line scan waits for: the byte after "\r", after "\", after "\.", after "\.\r".
  enum class Look : uint8_t { kNone, kCr, kBackslash, kDot, kDotCr };
  enum class Step : uint8_t { kMore, kLine, kEndOfData, kError };
  enum class KeyField : uint8_t { kValue, kNull, kMissing, kUnterminated };

  Step ScanLine(const char* data, size_t size, size_t& pos, bool eof);
  Step Consume(char c, uint64_t offset);
  Step NotEndMarker(bool after_cr);
  std::string_view RowBytes(const char* data, size_t end);
  // Sends a complete row (`content_size` bytes before its line end) to its shard, or the
  // header to every shard. False (and status_ set) on a bad key.
  bool Route(std::string_view bytes, size_t content_size, std::vector<protocol::Buffer>& out);
  void NextLine(uint64_t next_row_start);
  KeyField TextKey(std::string_view line, std::string_view& value);
  KeyField CsvKey(std::string_view line, std::string_view& value);
  void Emit(ShardId shard, std::string_view bytes, std::vector<protocol::Buffer>& out);
  void CloseMessages(std::vector<protocol::Buffer>& out);
  void SetError(absl::StatusCode code, std::string_view sqlstate, std::string_view message,
                std::string_view hint);
  Step FailFormat(std::string_view message, std::string_view hint = {});
  Step FailCarriageReturn();
  absl::Status CheckOut(const std::vector<protocol::Buffer>& out) const;

  static constexpr size_t kClosed = static_cast<size_t>(-1);

  const CopyFormat format_;
  const CopySplit split_;
  const std::shared_ptr<const Ring> ring_;
  const size_t max_row_bytes_;
  char line_escape_ = '\0';  // the CSV escape as the line scan sees it
  bool special_[256] = {};   // bytes the line scan must look at one by one

  // Line reader state, as PostgreSQL's CopyReadLineText keeps it.
  Eol eol_ = Eol::kUnknown;
  Look look_ = Look::kNone;
  bool in_quote_ = false;
  bool last_was_esc_ = false;
  bool first_char_ = true;  // nothing of the current line read yet
  uint64_t line_ = 1;       // PostgreSQL's line number of the current row

  // Positions are offsets in the whole COPY stream.
  uint64_t stream_pos_ = 0;     // of the first byte of the current Add's data
  uint64_t row_start_ = 0;      // of the current row's first byte
  uint64_t content_end_ = 0;    // of the current row's line end (or "\.")
  uint64_t backslash_pos_ = 0;  // of the last "\" that may start "\."
  std::string pending_;         // the bytes of the current row read in earlier calls

  bool header_pending_ = false;
  bool ended_ = false;
  bool finished_ = false;
  absl::Status status_;
  std::string key_buf_;       // a de-escaped key
  std::vector<size_t> open_;  // per shard: offset of this call's CopyData message, or kClosed
  std::vector<uint64_t> rows_to_;
  uint64_t rows_ = 0;
};

}  // namespace pgring::sharding
