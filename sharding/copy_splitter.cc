#include "sharding/copy_splitter.h"

#include <cstring>
#include <utility>

#include "conf/config.h"
#include "fmt/format.h"
#include "protocol/messages.h"
#include "protocol/sql_error.h"

namespace pgring::sharding {
namespace {

using protocol::SqlError;

// SQLSTATEs of the errors below, as PostgreSQL raises them.
constexpr std::string_view kBadCopyFileFormat = "22P04";
constexpr std::string_view kInvalidParameterValue = "22023";
constexpr std::string_view kFeatureNotSupported = "0A000";
constexpr std::string_view kNotNullViolation = "23502";
constexpr std::string_view kProgramLimitExceeded = "54000";

absl::Status Unsupported(std::string_view message, std::string_view hint) {
  return SqlError(absl::StatusCode::kUnimplemented, kFeatureNotSupported, message, hint);
}

absl::Status InvalidOption(std::string_view message, std::string_view hint = {}) {
  return SqlError(absl::StatusCode::kInvalidArgument, kInvalidParameterValue, message, hint);
}

bool IsOctal(char c) { return c >= '0' && c <= '7'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes the text-format escapes of one field as PostgreSQL's CopyReadAttributesText does:
// \b \f \n \r \t \v, up to three octal digits, \x and up to two hex digits, and any other
// byte after a backslash stands for itself.
void DecodeText(std::string_view raw, std::string& out) {
  out.clear();
  const char* p = raw.data();
  const char* const end = p + raw.size();
  while (p < end) {
    char c = *p++;
    if (c == '\\') {
      if (p >= end) break;  // a lone trailing backslash is dropped
      c = *p++;
      switch (c) {
        case '0':
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7': {
          int value = c - '0';
          if (p < end && IsOctal(*p)) {
            value = (value << 3) + (*p++ - '0');
            if (p < end && IsOctal(*p)) value = (value << 3) + (*p++ - '0');
          }
          c = static_cast<char>(value & 0377);
          break;
        }
        case 'x':
          if (p < end && HexValue(*p) >= 0) {
            int value = HexValue(*p++);
            if (p < end && HexValue(*p) >= 0) value = (value << 4) + HexValue(*p++);
            c = static_cast<char>(value & 0xff);
          }
          break;
        case 'b':
          c = '\b';
          break;
        case 'f':
          c = '\f';
          break;
        case 'n':
          c = '\n';
          break;
        case 'r':
          c = '\r';
          break;
        case 't':
          c = '\t';
          break;
        case 'v':
          c = '\v';
          break;
        default:
          break;
      }
    }
    out.push_back(c);
  }
}

// Returns the position after the escape that starts at `p` (just after its backslash).
const char* SkipTextEscape(const char* p, const char* end) {
  const char c = *p++;
  if (IsOctal(c)) {
    if (p < end && IsOctal(*p)) {
      ++p;
      if (p < end && IsOctal(*p)) ++p;
    }
  } else if (c == 'x') {
    if (p < end && HexValue(*p) >= 0) {
      ++p;
      if (p < end && HexValue(*p) >= 0) ++p;
    }
  }
  return p;
}

// Decodes a CSV field that holds at least one quote (and whose quotes are all closed).
void DecodeCsv(std::string_view raw, char quote, char escape, std::string& out) {
  out.clear();
  const char* p = raw.data();
  const char* const end = p + raw.size();
  bool in_quote = false;
  while (p < end) {
    const char c = *p++;
    if (!in_quote) {
      if (c == quote) {
        in_quote = true;
      } else {
        out.push_back(c);
      }
      continue;
    }
    if (c == escape && p < end && (*p == escape || *p == quote)) {
      out.push_back(*p++);
      continue;
    }
    if (c == quote) {
      in_quote = false;
      continue;
    }
    out.push_back(c);
  }
}

}  // namespace

absl::StatusOr<CopyFormat> CopyFormatOf(const CopyInfo& copy) {
  if (!copy.is_from || !copy.stdio || copy.is_query) {
    return Unsupported("pgring splits the rows of COPY ... FROM STDIN only",
                       "use COPY table FROM STDIN (psql's \\copy)");
  }
  if (copy.format == "binary") {
    return Unsupported(
        "COPY FROM STDIN in binary format into a sharded table is not supported: pgring reads "
        "each row's shard key from text or CSV rows",
        "use FORMAT text or FORMAT csv");
  }
  if (copy.format != "text" && copy.format != "csv") {
    return InvalidOption(fmt::format("COPY format \"{}\" not recognized", copy.format),
                         "use FORMAT text or FORMAT csv");
  }
  CopyFormat f;
  f.csv = copy.format == "csv";
  f.delimiter = f.csv ? ',' : '\t';
  f.null_string = f.csv ? "" : "\\N";
  f.header = copy.header;
  if (copy.delimiter) {
    if (copy.delimiter->size() != 1 || (*copy.delimiter)[0] == '\0') {
      return Unsupported("COPY delimiter must be a single one-byte character",
                         f.csv ? "use a one-byte delimiter such as DELIMITER ','"
                               : "use a one-byte delimiter such as DELIMITER E'\\t'");
    }
    f.delimiter = (*copy.delimiter)[0];
  }
  if (f.delimiter == '\n' || f.delimiter == '\r') {
    return InvalidOption("COPY delimiter cannot be newline or carriage return");
  }
  if (!f.csv && std::string_view("\\.abcdefghijklmnopqrstuvwxyz0123456789").find(f.delimiter) !=
                    std::string_view::npos) {
    return InvalidOption(fmt::format("COPY delimiter cannot be \"{}\"", f.delimiter));
  }
  if (copy.null_string) f.null_string = *copy.null_string;
  if (f.null_string.find_first_of("\r\n") != std::string::npos) {
    return InvalidOption("COPY null representation cannot use newline or carriage return");
  }
  // QUOTE and ESCAPE: CSV only, one byte each.
  auto csv_char = [&](const std::optional<std::string>& value, std::string_view option,
                      std::string_view keyword, std::string_view example,
                      char& out) -> absl::Status {
    if (!value) return absl::OkStatus();
    if (!f.csv) {
      return Unsupported(fmt::format("COPY {} available only in CSV mode", option),
                         fmt::format("remove {}, or use FORMAT csv", keyword));
    }
    if (value->size() != 1 || (*value)[0] == '\0') {
      return Unsupported(fmt::format("COPY {} must be a single one-byte character", option),
                         fmt::format("use a one-byte {} such as {} {}", option, keyword,
                                     example));
    }
    out = (*value)[0];
    return absl::OkStatus();
  };
  if (auto st = csv_char(copy.quote, "quote", "QUOTE", "'\"'", f.quote); !st.ok()) return st;
  f.escape = f.quote;
  if (auto st = csv_char(copy.escape, "escape", "ESCAPE", "'\\'", f.escape); !st.ok()) return st;
  if (f.csv && f.delimiter == f.quote) {
    return InvalidOption("COPY delimiter and quote must be different");
  }
  if (f.null_string.find(f.delimiter) != std::string::npos) {
    return InvalidOption("COPY delimiter must not appear in the NULL specification");
  }
  if (f.csv && f.null_string.find(f.quote) != std::string::npos) {
    return InvalidOption("CSV quote character must not appear in the NULL specification");
  }
  return f;
}

CopySplitter::CopySplitter(CopyFormat format, CopySplit split, std::shared_ptr<const Ring> ring,
                           size_t max_row_bytes)
    : format_(std::move(format)),
      split_(std::move(split)),
      ring_(std::move(ring)),
      max_row_bytes_(max_row_bytes),
      header_pending_(format_.header),
      open_(ring_->shard_count(), kClosed),
      rows_to_(ring_->shard_count(), 0) {
  // PostgreSQL's line reader ignores the escape when it equals the quote (a doubled quote
  // then toggles in and out of the quoted field); '\0' never matches in valid input.
  line_escape_ = format_.escape == format_.quote ? '\0' : format_.escape;
  special_[static_cast<unsigned char>('\n')] = true;
  special_[static_cast<unsigned char>('\r')] = true;
  if (format_.csv) {
    special_[static_cast<unsigned char>(format_.quote)] = true;
    special_[static_cast<unsigned char>(line_escape_)] = true;
  } else {
    special_[static_cast<unsigned char>('\\')] = true;
  }
}

uint64_t CopySplitter::rows_to(ShardId shard) const {
  return shard.value() < rows_to_.size() ? rows_to_[shard.value()] : 0;
}

absl::Status CopySplitter::CheckOut(const std::vector<protocol::Buffer>& out) const {
  if (out.size() != ring_->shard_count()) {
    return SqlError(absl::StatusCode::kInternal, "XX000",
                    fmt::format("COPY splitter called with {} output buffers for {} shards",
                                out.size(), ring_->shard_count()));
  }
  return absl::OkStatus();
}

absl::Status CopySplitter::Add(std::span<const std::byte> data,
                               std::vector<protocol::Buffer>& out) {
  if (!status_.ok()) return status_;
  if (absl::Status s = CheckOut(out); !s.ok()) return s;
  if (finished_) {
    return SqlError(absl::StatusCode::kInternal, "XX000", "COPY data after the end of the COPY");
  }
  if (ended_) return absl::OkStatus();  // PostgreSQL ignores what follows "\." too

  const char* const bytes = reinterpret_cast<const char*>(data.data());
  const size_t size = data.size();
  size_t pos = 0;
  while (status_.ok()) {
    const Step step = ScanLine(bytes, size, pos, /*eof=*/false);
    if (step == Step::kMore || step == Step::kError) break;
    const std::string_view row = RowBytes(bytes, pos);
    const size_t content = content_end_ - row_start_;
    if (step == Step::kEndOfData) {
      ended_ = true;
      if (content > 0) Route(row.substr(0, content), content, out);
      pending_.clear();
      break;
    }
    if (!Route(row, content, out)) break;
    NextLine(stream_pos_ + pos);
  }
  if (status_.ok() && !ended_) {
    // Keep the unfinished row: its head may already be pending from earlier calls.
    const size_t from = pending_.empty() ? static_cast<size_t>(row_start_ - stream_pos_) : 0;
    if (from < size) pending_.append(bytes + from, size - from);
    if (pending_.size() > max_row_bytes_) {
      SetError(absl::StatusCode::kResourceExhausted, kProgramLimitExceeded,
               fmt::format("row is longer than {} bytes, the most pgring holds while it waits "
                           "for the row's end",
                           max_row_bytes_),
               "end each row with a newline; split very large values over several rows");
    }
  }
  CloseMessages(out);
  stream_pos_ += size;
  return status_;
}

absl::Status CopySplitter::Finish(std::vector<protocol::Buffer>& out) {
  if (!status_.ok()) return status_;
  if (absl::Status s = CheckOut(out); !s.ok()) return s;
  if (finished_) return absl::OkStatus();
  finished_ = true;
  if (!ended_) {
    // Resolve a pending look-ahead ("\r", "\", "\.") as PostgreSQL does at the end of input.
    size_t pos = 0;
    while (status_.ok()) {
      const Step step = ScanLine(nullptr, 0, pos, /*eof=*/true);
      if (step == Step::kMore || step == Step::kError) break;
      const size_t content = content_end_ - row_start_;
      if (step == Step::kEndOfData) {
        ended_ = true;
        if (content > 0) Route(std::string_view(pending_).substr(0, content), content, out);
        pending_.clear();
        break;
      }
      if (!Route(pending_, content, out)) break;
      NextLine(stream_pos_);
    }
    // A last row without a line end is a row (PostgreSQL reads it as if a newline followed).
    if (status_.ok() && !ended_ && !pending_.empty()) {
      if (format_.csv && in_quote_ && !header_pending_) {
        SetError(absl::StatusCode::kInvalidArgument, kBadCopyFileFormat,
                 "unterminated CSV quoted field",
                 "close the quoted field before the end of the data");
      } else {
        Route(pending_, pending_.size(), out);
      }
      pending_.clear();
    }
  }
  CloseMessages(out);
  return status_;
}

// The line scan follows PostgreSQL's CopyReadLineText byte for byte, so that pgring and the
// shards agree on where every row ends; the look-ahead states stand for the places where
// PostgreSQL peeks at the next byte, which may be in the next CopyData message.
CopySplitter::Step CopySplitter::ScanLine(const char* data, size_t size, size_t& pos, bool eof) {
  for (;;) {
    switch (look_) {
      case Look::kNone: {
        // In CSV the first byte of a line is looked at alone: "\." ends the data only there.
        if (!format_.csv || !first_char_) {
          const size_t start = pos;
          while (pos < size && !special_[static_cast<unsigned char>(data[pos])]) ++pos;
          if (pos > start) {
            first_char_ = false;
            last_was_esc_ = false;
          }
        }
        if (pos == size) return Step::kMore;
        const char c = data[pos];
        ++pos;
        const Step step = Consume(c, stream_pos_ + pos - 1);
        if (step != Step::kMore) return step;
        continue;
      }
      case Look::kCr: {
        if (pos == size && !eof) return Step::kMore;
        look_ = Look::kNone;
        if (pos < size && data[pos] == '\n') {
          ++pos;
          eol_ = Eol::kCrNl;
          return Step::kLine;
        }
        if (eol_ == Eol::kCrNl) return FailCarriageReturn();
        eol_ = Eol::kCr;  // the first line ends in a bare "\r"; the byte after is not consumed
        return Step::kLine;
      }
      case Look::kBackslash: {
        if (pos == size) {
          if (!eof) return Step::kMore;
          look_ = Look::kNone;  // a backslash just before the end is data
          first_char_ = false;
          return Step::kMore;
        }
        look_ = Look::kNone;
        if (data[pos] == '.') {
          ++pos;
          look_ = Look::kDot;
          continue;
        }
        first_char_ = false;
        if (!format_.csv) ++pos;  // text: the escaped byte is data, even a newline
        continue;
      }
      case Look::kDot:
      case Look::kDotCr: {
        if (look_ == Look::kDot && eol_ == Eol::kCrNl) {
          if (pos == size && !eof) return Step::kMore;
          const char c2 = pos < size ? data[pos] : '\0';
          if (c2 == '\r') {
            ++pos;
            look_ = Look::kDotCr;
            continue;
          }
          if (!format_.csv) {
            return FailFormat(c2 == '\n'
                                  ? "end-of-copy marker does not match previous newline style"
                                  : "end-of-copy marker corrupt");
          }
          const Step step = NotEndMarker(/*after_cr=*/false);
          if (step != Step::kMore) return step;
          continue;
        }
        if (pos == size && !eof) return Step::kMore;
        const char c2 = pos < size ? data[pos] : '\0';
        if (c2 != '\r' && c2 != '\n') {
          if (!format_.csv) return FailFormat("end-of-copy marker corrupt");
          const Step step = NotEndMarker(/*after_cr=*/look_ == Look::kDotCr);
          if (step != Step::kMore) return step;
          continue;
        }
        if ((eol_ == Eol::kNl && c2 != '\n') || (eol_ == Eol::kCrNl && c2 != '\n') ||
            (eol_ == Eol::kCr && c2 != '\r')) {
          return FailFormat("end-of-copy marker does not match previous newline style");
        }
        ++pos;
        look_ = Look::kNone;
        content_end_ = backslash_pos_;
        return Step::kEndOfData;
      }
    }
  }
}

CopySplitter::Step CopySplitter::Consume(char c, uint64_t offset) {
  if (format_.csv) {
    if (in_quote_ && c == line_escape_) last_was_esc_ = !last_was_esc_;
    if (c == format_.quote && !last_was_esc_) in_quote_ = !in_quote_;
    if (c != line_escape_) last_was_esc_ = false;
    // PostgreSQL counts the newlines inside quotes as lines (for its error messages).
    if (in_quote_ && c == (eol_ == Eol::kNl ? '\n' : '\r')) ++line_;
  }
  const bool quoted = format_.csv && in_quote_;
  if (c == '\r' && !quoted) {
    content_end_ = offset;
    if (eol_ == Eol::kUnknown || eol_ == Eol::kCrNl) {
      look_ = Look::kCr;
      return Step::kMore;
    }
    if (eol_ == Eol::kNl) return FailCarriageReturn();
    return Step::kLine;
  }
  if (c == '\n' && !quoted) {
    if (eol_ == Eol::kCr || eol_ == Eol::kCrNl) {
      return format_.csv
                 ? FailFormat("unquoted newline found in data",
                              "Use quoted CSV field to represent newline.")
                 : FailFormat("literal newline found in data", "Use \"\\n\" to represent newline.");
    }
    eol_ = Eol::kNl;
    content_end_ = offset;
    return Step::kLine;
  }
  if (c == '\\' && (!format_.csv || first_char_)) {
    backslash_pos_ = offset;
    look_ = Look::kBackslash;
    return Step::kMore;
  }
  first_char_ = false;
  return Step::kMore;
}

// CSV only: "\." at the start of a line was data after all. PostgreSQL goes back to the byte
// after the backslash; the bytes it had peeked at are known ('.' and maybe '\r'), so they
// are fed through the scan again here.
CopySplitter::Step CopySplitter::NotEndMarker(bool after_cr) {
  look_ = Look::kNone;
  first_char_ = false;
  const Step step = Consume('.', backslash_pos_ + 1);
  if (step != Step::kMore || !after_cr) return step;
  return Consume('\r', backslash_pos_ + 2);
}

std::string_view CopySplitter::RowBytes(const char* data, size_t end) {
  if (!pending_.empty()) {
    if (end > 0) pending_.append(data, end);
    return pending_;
  }
  const size_t start = static_cast<size_t>(row_start_ - stream_pos_);
  return {data + start, end - start};
}

void CopySplitter::NextLine(uint64_t next_row_start) {
  row_start_ = next_row_start;
  pending_.clear();
  in_quote_ = false;
  last_was_esc_ = false;
  first_char_ = true;
  ++line_;
}

bool CopySplitter::Route(std::string_view bytes, size_t content_size,
                         std::vector<protocol::Buffer>& out) {
  if (header_pending_) {
    header_pending_ = false;
    for (uint32_t s = 0; s < out.size(); ++s) Emit(ShardId(s), bytes, out);
    return true;
  }
  const std::string_view line = bytes.substr(0, content_size);
  std::string_view key;
  const KeyField field = format_.csv ? CsvKey(line, key) : TextKey(line, key);
  switch (field) {
    case KeyField::kValue:
      break;
    case KeyField::kNull:
      SetError(absl::StatusCode::kFailedPrecondition, kNotNullViolation,
               fmt::format("null value in column \"{}\" violates not-null constraint",
                           split_.key_column),
               fmt::format("every row of a COPY into a sharded table needs its shard key {}: "
                           "pgring sends each row to the shard that owns its key",
                           split_.key_column));
      return false;
    case KeyField::kMissing:
      SetError(absl::StatusCode::kInvalidArgument, kBadCopyFileFormat,
               fmt::format("missing data for column \"{}\"", split_.key_column),
               fmt::format("the shard key {} is field {} of each row", split_.key_column,
                           split_.key_index + 1));
      return false;
    case KeyField::kUnterminated:
      SetError(absl::StatusCode::kInvalidArgument, kBadCopyFileFormat,
               "unterminated CSV quoted field", "");
      return false;
  }
  const absl::StatusOr<int64_t> hash = Router::HashKeyText(key, split_.key_type);
  if (!hash.ok()) {
    std::string hint = protocol::HintOf(hash.status());
    if (hint.empty()) {
      hint = fmt::format("the shard key {} is read as a {} value", split_.key_column,
                         conf::ToString(split_.key_type));
    }
    status_ = SqlError(hash.status().code(), protocol::SqlStateOf(hash.status()),
                       fmt::format("COPY line {}, column {}: {}", line_, split_.key_column,
                                   protocol::MessageOf(hash.status())),
                       hint);
    return false;
  }
  const ShardId shard = ring_->Lookup(*hash);
  Emit(shard, bytes, out);
  ++rows_;
  ++rows_to_[shard.value()];
  return true;
}

// Mirrors PostgreSQL's CopyReadAttributesText up to the key field. The NULL string is
// compared with the raw bytes, before de-escaping; a backslash that ends the line is
// dropped and not part of the raw field.
CopySplitter::KeyField CopySplitter::TextKey(std::string_view line, std::string_view& value) {
  const char delimiter = format_.delimiter;
  const char* p = line.data();
  const char* const end = p + line.size();
  for (int field = 0;; ++field) {
    const char* const start = p;
    const char* field_end = p;
    bool found_delimiter = false;
    bool escaped = false;
    for (;;) {
      while (p < end && *p != delimiter && *p != '\\') ++p;
      field_end = p;
      if (p == end) break;
      if (*p++ == delimiter) {
        found_delimiter = true;
        break;
      }
      escaped = true;
      if (p == end) break;
      p = SkipTextEscape(p, end);
    }
    if (field == split_.key_index) {
      const std::string_view raw(start, static_cast<size_t>(field_end - start));
      if (raw == format_.null_string) return KeyField::kNull;
      if (!escaped) {
        value = raw;
      } else {
        DecodeText(raw, key_buf_);
        value = key_buf_;
      }
      return KeyField::kValue;
    }
    if (!found_delimiter) return KeyField::kMissing;
  }
}

// Mirrors PostgreSQL's CopyReadAttributesCSV up to the key field: only an unquoted field equal
// to the NULL string is NULL.
CopySplitter::KeyField CopySplitter::CsvKey(std::string_view line, std::string_view& value) {
  const char delimiter = format_.delimiter;
  const char quote = format_.quote;
  const char escape = format_.escape;
  const char* p = line.data();
  const char* const end = p + line.size();
  for (int field = 0;; ++field) {
    const char* const start = p;
    const char* field_end = p;
    bool found_delimiter = false;
    bool saw_quote = false;
    for (;;) {
      while (p < end && *p != delimiter && *p != quote) ++p;
      field_end = p;
      if (p == end) break;
      if (*p++ == delimiter) {
        found_delimiter = true;
        break;
      }
      saw_quote = true;
      for (;;) {
        if (p == end) return KeyField::kUnterminated;
        const char c = *p++;
        if (c == escape && p < end && (*p == escape || *p == quote)) {
          ++p;
          continue;
        }
        if (c == quote) break;
      }
    }
    if (field == split_.key_index) {
      const std::string_view raw(start, static_cast<size_t>(field_end - start));
      if (!saw_quote) {
        if (raw == format_.null_string) return KeyField::kNull;
        value = raw;
      } else {
        DecodeCsv(raw, quote, escape, key_buf_);
        value = key_buf_;
      }
      return KeyField::kValue;
    }
    if (!found_delimiter) return KeyField::kMissing;
  }
}

void CopySplitter::Emit(ShardId shard, std::string_view bytes, std::vector<protocol::Buffer>& out) {
  protocol::Buffer& buf = out[shard.value()];
  size_t& open = open_[shard.value()];
  if (open == kClosed) {
    // Type byte and a length placeholder, patched by CloseMessages.
    open = buf.size();
    std::span<std::byte> head = buf.Prepare(5);
    head[0] = static_cast<std::byte>(protocol::fe::kCopyData);
    std::memset(head.data() + 1, 0, 4);
    buf.Commit(5);
  }
  buf.Append(bytes);
}

void CopySplitter::CloseMessages(std::vector<protocol::Buffer>& out) {
  for (size_t s = 0; s < open_.size(); ++s) {
    if (open_[s] == kClosed) continue;
    const uint32_t length = static_cast<uint32_t>(out[s].size() - open_[s] - 1);
    std::byte* p = out[s].MutableAt(open_[s] + 1);
    p[0] = static_cast<std::byte>(length >> 24);
    p[1] = static_cast<std::byte>(length >> 16);
    p[2] = static_cast<std::byte>(length >> 8);
    p[3] = static_cast<std::byte>(length);
    open_[s] = kClosed;
  }
}

void CopySplitter::SetError(absl::StatusCode code, std::string_view sqlstate,
                            std::string_view message, std::string_view hint) {
  status_ = SqlError(code, sqlstate, fmt::format("COPY line {}: {}", line_, message), hint);
}

CopySplitter::Step CopySplitter::FailFormat(std::string_view message, std::string_view hint) {
  SetError(absl::StatusCode::kInvalidArgument, kBadCopyFileFormat, message, hint);
  return Step::kError;
}

CopySplitter::Step CopySplitter::FailCarriageReturn() {
  return format_.csv ? FailFormat("unquoted carriage return found in data",
                                  "Use quoted CSV field to represent carriage return.")
                     : FailFormat("literal carriage return found in data",
                                  "Use \"\\r\" to represent carriage return.");
}

}  // namespace pgring::sharding
