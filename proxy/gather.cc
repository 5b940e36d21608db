#include "proxy/gather.h"

#include "protocol/messages.h"
#include "protocol/sql_error.h"
#include "proxy/reply.h"

namespace pgring::proxy {
namespace be = protocol::be;

Gather::Gather(size_t shards, SpecFactory merge, bool silent)
    : shards_(shards), merge_factory_(std::move(merge)), silent_(silent) {}

char Gather::status() const {
  char status = 'I';
  for (const auto& s : shards_) {
    if (s.status == 'E') return 'E';
    if (s.status == 'T') status = 'T';
  }
  return status;
}

void Gather::Fail(const absl::Status& error) {
  if (failed_) return;
  failed_ = true;
  error_ = ErrorBytes(error);
}

void Gather::Once(uint32_t Shard::*counter, uint32_t& emitted, size_t position,
                  const protocol::Frame& frame, protocol::Buffer& out) {
  uint32_t n = ++(shards_[position].*counter);
  if (n > emitted) {
    emitted = n;
    if (!failed_) out.Append(frame.raw);
  }
}

void Gather::OnRowDescription(size_t position, const protocol::Frame& frame,
                              protocol::Buffer& out) {
  const bool first = ++shards_[position].row_description > row_description_;
  if (first) row_description_ = shards_[position].row_description;
  if (failed_) return;
  if (!merge_factory_) {
    if (first) out.Append(frame.raw);
    return;
  }
  auto fields = protocol::ParseRowDescription(frame.body);
  if (!fields) return Fail(protocol::SqlError(absl::StatusCode::kInternal, "08P01",
                                              "a shard sent a malformed RowDescription"));
  if (first) {
    auto spec = merge_factory_(*fields);
    if (!spec.ok()) return Fail(spec.status());
    merger_ = std::make_unique<sharding::Merger>(std::move(*spec), static_cast<int>(shards_.size()));
  }
  if (!merger_) return;
  if (auto st = merger_->SetRowDescription(static_cast<int>(position), *fields); !st.ok()) {
    return Fail(st);
  }
  if (first) merger_->WriteRowDescription(out);
}

void Gather::OnCommandComplete(size_t position, const protocol::Frame& frame,
                               protocol::Buffer& out) {
  auto& shard = shards_[position];
  if (shard.completed) return;
  shard.completed = true;
  ++completed_;
  if (failed_) return;
  auto tag = protocol::ParseCommandComplete(frame.body);
  if (!tag) return Fail(protocol::SqlError(absl::StatusCode::kInternal, "08P01",
                                           "a shard sent a malformed CommandComplete"));
  if (auto st = tags_.Add(*tag); !st.ok()) return Fail(st);
  if (merger_) {
    if (auto st = merger_->EndShard(static_cast<int>(position), out); !st.ok()) return Fail(st);
  }
  if (completed_ < shards_.size()) return;
  if (merger_) {
    if (auto st = merger_->Finish(out); !st.ok()) return Fail(st);
    return;
  }
  auto merged = tags_.Result();
  if (!merged.ok()) return Fail(merged.status());
  protocol::WriteCommandComplete(out, *merged);
}

// Binary COPY: an 11-byte signature, int32 flags, int32 extension length and the extension
// open the stream; a 16-bit -1 closes it.
constexpr size_t kBinaryCopyHeader = 19;

void Gather::OnCopyData(size_t position, const protocol::Frame& f, protocol::Buffer& out) {
  auto& shard = shards_[position];
  const bool first = shard.copy_data++ == 0;
  if (failed_) return;
  std::span<const std::byte> data = f.body;
  if (copy_binary_) {
    if (first) {
      if (copy_header_sent_ && data.size() >= kBinaryCopyHeader) {
        data = data.subspan(kBinaryCopyHeader);
      }
      copy_header_sent_ = true;
    }
    // The last message of a shard ends with its trailer: hold each message until the next
    // one (or CopyDone) shows whether it was the last.
    if (!shard.held.empty()) {
      protocol::WriteCopyData(out, std::as_bytes(std::span(shard.held)));
    }
    shard.held.assign(reinterpret_cast<const char*>(data.data()), data.size());
    return;
  }
  if (copy_header_ && first) {
    if (copy_header_sent_) return;
    copy_header_sent_ = true;
  }
  out.Append(f.raw);
}

void Gather::OnFrame(size_t position, const protocol::Frame& f, protocol::Buffer& out) {
  if (silent_) {
    // Only the end and a failure matter.
    protocol::Buffer dropped;
    if (f.type == be::kErrorResponse || f.type == be::kReadyForQuery) return Dispatch(position, f, out);
    return Dispatch(position, f, dropped);
  }
  Dispatch(position, f, out);
}

void Gather::Dispatch(size_t position, const protocol::Frame& f, protocol::Buffer& out) {
  auto& shard = shards_[position];
  switch (f.type) {
    case be::kParseComplete:
      return Once(&Shard::parse_complete, parse_complete_, position, f, out);
    case be::kBindComplete:
      return Once(&Shard::bind_complete, bind_complete_, position, f, out);
    case be::kCloseComplete:
      return Once(&Shard::close_complete, close_complete_, position, f, out);
    case be::kNoData:
      return Once(&Shard::no_data, no_data_, position, f, out);
    case be::kEmptyQueryResponse:
      return Once(&Shard::empty_query, empty_query_, position, f, out);
    case be::kPortalSuspended:
      return Once(&Shard::suspended, suspended_, position, f, out);
    case be::kCopyOutResponse:
      if (!f.body.empty()) copy_binary_ = f.body[0] == std::byte{1};
      return Once(&Shard::copy_out, copy_out_, position, f, out);
    case be::kRowDescription:
      return OnRowDescription(position, f, out);
    case be::kDataRow:
      if (failed_) return;
      if (merger_) {
        if (merger_->Done()) return;
        if (auto st = merger_->AddRow(static_cast<int>(position), f.body, out); !st.ok()) Fail(st);
        return;
      }
      out.Append(f.raw);
      return;
    case be::kCopyData:
      return OnCopyData(position, f, out);
    case be::kCommandComplete:
      return OnCommandComplete(position, f, out);
    case be::kCopyDone:
      if (!shard.copy_done) {
        shard.copy_done = true;
        if (copy_binary_ && !failed_) {
          std::string_view rest = shard.held;
          if (rest.size() >= 2 && rest.substr(rest.size() - 2) == "\xff\xff") {
            rest.remove_suffix(2);
          }
          if (!rest.empty()) protocol::WriteCopyData(out, std::as_bytes(std::span(rest)));
          shard.held.clear();
        }
        if (++copy_done_ == shards_.size() && !failed_) {
          if (copy_binary_) {
            const std::byte trailer[] = {std::byte{0xff}, std::byte{0xff}};
            protocol::WriteCopyData(out, trailer);
          }
          out.Append(f.raw);
        }
      }
      return;
    case be::kCopyInResponse:
      if (!shard.copy_in) {
        shard.copy_in = true;
        if (++copy_in_ == shards_.size() && !failed_) out.Append(f.raw);
      }
      return;
    case be::kErrorResponse:
      if (!failed_) {
        failed_ = true;
        error_.assign(reinterpret_cast<const char*>(f.raw.data()), f.raw.size());
      }
      return;
    case be::kReadyForQuery:
      if (!shard.ready) {
        shard.ready = true;
        shard.status = protocol::ParseReadyForQuery(f.body).value_or('E');
        if (++ready_ == shards_.size() && failed_) {
          out.Append(std::as_bytes(std::span(error_.data(), error_.size())));
        }
      }
      return;
    default:
      // Notices, notifications, parameter changes: every shard's reach the client.
      out.Append(f.raw);
      return;
  }
}

}  // namespace pgring::proxy
