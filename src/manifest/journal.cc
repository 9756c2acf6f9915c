#include "manifest/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "codec/hash.h"
#include "core/byte_order.h"
#include "protocol/wire_buffer.h"

namespace ferry::journal {
namespace {

std::vector<uint8_t> frame(protocol::WireWriter& body) {
  auto& b = body.buffer();
  std::vector<uint8_t> out(kRecordHeaderSize + b.size());
  store_be32(out.data(), static_cast<uint32_t>(b.size()));
  store_be64(out.data() + 4, xxh3_64(b.data(), b.size()));
  std::memcpy(out.data() + kRecordHeaderSize, b.data(), b.size());
  return out;
}

}  // namespace

std::vector<uint8_t> encode_file(const FileRecord& r) {
  protocol::WireWriter w;
  w.u8(static_cast<uint8_t>(Kind::kFile));
  w.u32(r.slot);
  w.u64(r.size);
  w.u64(static_cast<uint64_t>(r.mtime_ns));
  w.u32(r.chunk_size);
  w.u64(r.temp_dev);
  w.u64(r.temp_ino);
  w.str(r.rel_path);
  w.str(r.temp_name);
  return frame(w);
}

std::vector<uint8_t> encode_chunks(uint32_t slot, std::span<const std::pair<uint32_t, uint64_t>> chunks) {
  protocol::WireWriter w;
  w.u8(static_cast<uint8_t>(Kind::kChunks));
  w.u32(slot);
  w.u16(static_cast<uint16_t>(chunks.size()));
  for (const auto& [index, hash] : chunks) {
    w.u32(index);
    w.u64(hash);
  }
  return frame(w);
}

std::vector<uint8_t> encode_mark(Kind kind, uint32_t slot) {
  protocol::WireWriter w;
  w.u8(static_cast<uint8_t>(kind));
  w.u32(slot);
  return frame(w);
}

Loaded parse(std::span<const uint8_t> bytes) {
  Loaded out;
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    out.ignored_bytes = bytes.size();
    return out;
  }
  out.header_ok = true;
  size_t pos = sizeof kMagic;
  std::map<uint32_t, std::string> slot_path;
  while (bytes.size() - pos >= kRecordHeaderSize) {
    uint32_t len = load_be32(&bytes[pos]);
    uint64_t sum = load_be64(&bytes[pos + 4]);
    if (len == 0 || len > kMaxRecordBody || bytes.size() - pos - kRecordHeaderSize < len) break;
    std::span<const uint8_t> body = bytes.subspan(pos + kRecordHeaderSize, len);
    if (xxh3_64(body.data(), body.size()) != sum) break;
    protocol::WireReader r(body);
    auto kind = static_cast<Kind>(r.u8());
    bool ok = true;
    switch (kind) {
      case Kind::kFile: {
        FileRecord f;
        f.slot = r.u32();
        f.size = r.u64();
        f.mtime_ns = static_cast<int64_t>(r.u64());
        f.chunk_size = r.u32();
        f.temp_dev = r.u64();
        f.temp_ino = r.u64();
        f.rel_path = r.str();
        f.temp_name = r.str();
        ok = r.at_end() && f.chunk_size > 0;
        if (ok) {
          out.next_slot = std::max(out.next_slot, f.slot + 1);
          slot_path[f.slot] = f.rel_path;
          PartialFile p;
          p.file = std::move(f);
          out.files[p.file.rel_path] = std::move(p);
        }
        break;
      }
      case Kind::kChunks: {
        uint32_t slot = r.u32();
        uint16_t count = r.u16();
        std::vector<std::pair<uint32_t, uint64_t>> chunks;
        for (uint16_t i = 0; i < count && r.ok(); ++i) {
          uint32_t index = r.u32();
          uint64_t hash = r.u64();
          chunks.emplace_back(index, hash);
        }
        ok = r.at_end();
        auto it = slot_path.find(slot);
        if (ok && it != slot_path.end()) {
          PartialFile& p = out.files[it->second];
          for (auto& [index, hash] : chunks) p.chunks[index] = hash;
        }
        break;
      }
      case Kind::kCommitted:
      case Kind::kDiscarded: {
        uint32_t slot = r.u32();
        ok = r.at_end();
        auto it = slot_path.find(slot);
        if (ok && it != slot_path.end()) {
          PartialFile& p = out.files[it->second];
          (kind == Kind::kCommitted ? p.committed : p.discarded) = true;
          p.chunks.clear();
        }
        break;
      }
      default:
        ok = false;
    }
    if (!ok) break;  // a well-checksummed but unreadable record: written by a newer ferry
    pos += kRecordHeaderSize + len;
  }
  out.valid_bytes = pos;
  out.ignored_bytes = bytes.size() - pos;
  return out;
}

}  // namespace ferry::journal

namespace ferry {

using namespace journal;

Result<std::unique_ptr<ReceiveJournal>> ReceiveJournal::open(const RootDir& root, const std::string& id_hex) {
  auto dir = root.open_dir(".ferry/journal", /*create=*/true, 0700);
  if (!dir) return dir.status();
  std::string name = id_hex + ".fj";
  std::string shown = root.path() + "/.ferry/journal/" + name;
  int fd = ::openat(dir->get(), name.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return errno_status(Error::kLocalIo, "open journal '" + shown + "'", errno);
  UniqueFd file(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0)
    return Status(Error::kRefused, "transfer " + id_hex.substr(0, 16) + " is already running from another sender");
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_status(Error::kLocalIo, "stat journal '" + shown + "'", errno);
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = ::pread(fd, bytes.data() + got, bytes.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  bytes.resize(got);
  Loaded loaded = parse(bytes);
  if (!loaded.header_ok) {
    // Empty, or not a journal: start a fresh one.
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, kMagic, sizeof kMagic, 0) != static_cast<ssize_t>(sizeof kMagic))
      return errno_status(Error::kLocalIo, "write journal '" + shown + "'", errno);
    loaded = Loaded{};
    loaded.header_ok = true;
    loaded.valid_bytes = sizeof kMagic;
  } else if (loaded.ignored_bytes > 0) {
    if (::ftruncate(fd, static_cast<off_t>(loaded.valid_bytes)) != 0)
      return errno_status(Error::kLocalIo, "truncate journal '" + shown + "'", errno);
  }
  if (::lseek(fd, static_cast<off_t>(loaded.valid_bytes), SEEK_SET) < 0)
    return errno_status(Error::kLocalIo, "seek journal '" + shown + "'", errno);
  return std::unique_ptr<ReceiveJournal>(new ReceiveJournal(std::move(*dir), std::move(file), name, std::move(loaded)));
}

ReceiveJournal::ReceiveJournal(UniqueFd dir, UniqueFd fd, std::string name, Loaded loaded)
    : dir_fd_(std::move(dir)),
      fd_(std::move(fd)),
      name_(std::move(name)),
      loaded_(std::move(loaded)),
      next_slot_(loaded_.next_slot),
      last_flush_(std::chrono::steady_clock::now()) {}

ReceiveJournal::~ReceiveJournal() { (void)flush(); }

const PartialFile* ReceiveJournal::partial(const std::string& rel_path) const {
  auto it = loaded_.files.find(rel_path);
  if (it == loaded_.files.end() || it->second.committed || it->second.discarded) return nullptr;
  return &it->second;
}

bool ReceiveJournal::committed_earlier(const std::string& rel_path) const {
  auto it = loaded_.files.find(rel_path);
  return it != loaded_.files.end() && it->second.committed;
}

Status ReceiveJournal::append_locked(const std::vector<uint8_t>& bytes) {
  if (removed_ || !write_error_.is_ok()) return write_error_;
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd_.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      write_error_ = errno_status(Error::kLocalIo, "append to journal '" + name_ + "'", errno);
      return write_error_;
    }
    done += static_cast<size_t>(n);
  }
  return Status::ok();
}

Status ReceiveJournal::flush_locked() {
  last_flush_ = std::chrono::steady_clock::now();
  if (pending_count_ == 0) return Status::ok();
  std::vector<uint8_t> batch;
  for (auto& [slot, chunks] : pending_) {
    for (size_t i = 0; i < chunks.size(); i += kMaxChunksPerRecord) {
      size_t n = std::min(kMaxChunksPerRecord, chunks.size() - i);
      auto rec = encode_chunks(slot, std::span(chunks).subspan(i, n));
      batch.insert(batch.end(), rec.begin(), rec.end());
    }
  }
  pending_.clear();
  pending_count_ = 0;
  return append_locked(batch);  // one write(2) for the whole batch
}

uint32_t ReceiveJournal::begin_file(FileRecord record) {
  std::lock_guard lock(mu_);
  record.slot = next_slot_++;
  (void)append_locked(encode_file(record));
  return record.slot;
}

void ReceiveJournal::chunk_done(uint32_t slot, uint32_t index, uint64_t hash) {
  std::lock_guard lock(mu_);
  pending_[slot].emplace_back(index, hash);
  ++pending_count_;
  if (pending_count_ >= kFlushAfterChunks || std::chrono::steady_clock::now() - last_flush_ >= kFlushAfter)
    (void)flush_locked();
}

void ReceiveJournal::committed(uint32_t slot) {
  std::lock_guard lock(mu_);
  if (auto it = pending_.find(slot); it != pending_.end()) {
    pending_count_ -= it->second.size();  // superseded by COMMITTED
    pending_.erase(it);
  }
  (void)flush_locked();
  (void)append_locked(encode_mark(Kind::kCommitted, slot));
}

void ReceiveJournal::discarded(uint32_t slot) {
  std::lock_guard lock(mu_);
  (void)flush_locked();
  (void)append_locked(encode_mark(Kind::kDiscarded, slot));
}

Status ReceiveJournal::flush() {
  std::lock_guard lock(mu_);
  return flush_locked();
}

void ReceiveJournal::remove() {
  std::lock_guard lock(mu_);
  if (removed_) return;
  pending_.clear();
  pending_count_ = 0;
  removed_ = true;
  ::unlinkat(dir_fd_.get(), name_.c_str(), 0);
}

}  // namespace ferry
