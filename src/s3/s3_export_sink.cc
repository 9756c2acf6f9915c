#include "s3/s3_export_sink.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

#include "core/log.h"
#include "io/safe_path.h"
#include "core/units.h"
#include "s3/multipart_uploader.h"
#include "s3/sigv4.h"

namespace ferry::s3 {

uint64_t export_part_size(uint64_t file_size, uint32_t chunk_size, uint64_t requested) {
  uint64_t want = std::max<uint64_t>(requested ? requested : 8ull << 20, kMinPartSize);
  uint64_t p = (want + chunk_size - 1) / chunk_size * chunk_size;
  while ((file_size + p - 1) / p > kMaxParts) p *= 2;
  return p;
}

namespace {

constexpr int kEtagTries = 3;

// Part buffers are mapped, not taken from malloc: the receiver tunes malloc to keep freed
// chunk buffers (tune_allocator_for_chunks), and part-sized blocks kept that way by every
// thread's arena would hold RSS far above what the budget counts. A mapping goes back to
// the kernel when the part is done, and its untouched pages never count at all.
std::shared_ptr<uint8_t[]> map_part(uint64_t len) {
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  return std::shared_ptr<uint8_t[]>(static_cast<uint8_t*>(p), [len](uint8_t* q) { ::munmap(q, len); });
}  // sends of one part whose ETag does not match its MD5

bool etag_is_md5(const std::string& e) {
  if (e.size() != 32) return false;
  for (char c : e)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

struct Part {
  std::shared_ptr<uint8_t[]> buf;  // len bytes, filled by chunks as they arrive
  uint64_t len = 0;
  uint32_t chunks = 0;  // chunks stored
  uint64_t held = 0;    // budget bytes this part holds (released when uploaded and hashed)
  bool full = false, hashed = false, uploaded = false;
};

// One file on its way to an object. Shared by the sink the session holds and the tasks
// queued on the export's workers; `mu` guards everything mutable.
class FileUpload : public std::enable_shared_from_this<FileUpload> {
 public:
  FileUpload(std::shared_ptr<S3ExportSinks> owner, MemoryBudget& budget, std::string key, const FileEntry& entry,
             uint32_t chunk_size, std::string peer)
      : owner_(std::move(owner)),
        budget_(budget),
        key_(std::move(key)),
        entry_(entry),
        peer_(std::move(peer)),
        chunk_size_(chunk_size),
        part_size_(export_part_size(entry.size, chunk_size, owner_->settings().part_size)),
        part_count_(static_cast<uint32_t>((entry.size + part_size_ - 1) / part_size_)),
        chunks_per_part_(static_cast<uint32_t>(part_size_ / chunk_size)),
        etags_(part_count_) {}

  std::string url() const { return "s3://" + owner_->settings().target.bucket + "/" + key_; }
  bool multipart() const { return part_count_ > 1; }

  // Which parts may receive chunks: those of [cursor, cursor + window), cursor being the
  // first part not yet folded into the file hash. Why this cannot deadlock (TCP):
  //  - the sender schedules one file's chunks in order, file after file (ChunkScheduler),
  //    so every chunk queued ahead of a missing chunk m on its stream was scheduled before
  //    m: it belongs to a part at or before m's, hence to a part that is not hashed yet, so
  //    it is admitted (a file's first missing chunk is always in its cursor part);
  //  - a resend (after a NACK) may queue behind chunks sent after it, beyond the window: the
  //    session lets a chunk that waited a second go ahead (ReceiverSession::wait_admitted),
  //    so the window delays such a stream but cannot block it for ever;
  //  - the window alone does not bound memory: chunks that went ahead, and parts after the
  //    cursor part, hold budget until the cursor part is complete. Once they filled the
  //    budget, the chunk the cursor part lacks would wait for budget for ever (seen: every
  //    stream parked in the budget queue, RSS at the budget, no upload queued). So a chunk
  //    of the cursor part, once no hashed part is uploading, never waits for budget
  //    (needed_now(): taken beyond the limit if need be), and other chunks leave one part
  //    of headroom free (headroom(); see ReceiverSession::acquire_sink_budget), so that it
  //    normally fits within the budget.
  //  - under pressure (budget more than half used) the window shrinks to the cursor part.
  // UDP chunks are acknowledged before the session sees them, so they are never refused
  // here: the UDP receiver drops datagrams for memory instead (budget_drops).
  bool admits(uint32_t index) const {
    uint32_t part = index / chunks_per_part_;
    std::lock_guard lock(mu_);
    if (failed_) return true;  // dropped on arrival
    uint32_t window = static_cast<uint32_t>(std::max(1, owner_->settings().window_parts));
    if (budget_.in_use() * 2 > budget_.limit()) window = 1;
    return part < hash_cursor_ + window;
  }

  // A chunk of the part the file hash waits for, while no hashed part is still uploading:
  // then every byte this file holds waits for that part, and nothing is released before it
  // is whole. (While a hashed part uploads, its release makes room without the network.)
  bool needed_now(uint32_t index) const {
    std::lock_guard lock(mu_);
    if (failed_) return true;  // dropped on arrival
    bool uploading = !parts_.empty() && parts_.begin()->first < hash_cursor_;
    return !uploading && index / chunks_per_part_ == hash_cursor_;
  }
  uint64_t headroom() const { return part_size_; }

  Status write(uint32_t index, const uint8_t* data, uint32_t len, uint64_t* reserved) {
    uint32_t p = index / chunks_per_part_;
    uint64_t offset = static_cast<uint64_t>(index % chunks_per_part_) * chunk_size_;
    std::shared_ptr<uint8_t[]> buf;
    {
      std::lock_guard lock(mu_);
      if (failed_) return failure_;
      Part& part = parts_[p];
      if (!part.buf) {
        part.len = std::min<uint64_t>(part_size_, entry_.size - static_cast<uint64_t>(p) * part_size_);
        // RSS grows as chunks are copied in, in step with what the budget counts.
        part.buf = map_part(part.len);
        if (!part.buf)
          return Status(Error::kLocalIo, "'" + entry_.path + "': cannot map a " + std::to_string(part.len) +
                                             "-byte part buffer: " + std::strerror(errno));
      }
      if (offset + len > part.len) return Status(Error::kInternal, "chunk " + std::to_string(index) + " overflows its part");
      buf = part.buf;
    }
    std::memcpy(buf.get() + offset, data, len);  // distinct chunks: distinct bytes
    std::lock_guard lock(mu_);
    if (failed_) return failure_;  // fail() dropped the part meanwhile; the caller releases *reserved
    Part& part = parts_[p];
    uint64_t take = std::min<uint64_t>(*reserved, len);
    *reserved -= take;
    part.held += take;
    uint32_t in_part = static_cast<uint32_t>((part.len + chunk_size_ - 1) / chunk_size_);
    if (++part.chunks == in_part) {
      part.full = true;
      advance_hash_locked();
      if (multipart()) owner_->post([self = shared_from_this(), p] { self->upload_part(p); });
      finish_locked();
    }
    return Status::ok();
  }

  void commit(const Hash128& expected, FileSink::Done done) {
    std::lock_guard lock(mu_);
    commit_asked_ = true;
    expected_ = expected;
    done_ = std::move(done);
    if (part_count_ == 0) hash_cursor_ = 0;  // empty file: nothing to fold
    finish_locked();
  }

  // The session let go of the file before it was committed: discard everything.
  void abandon() {
    std::lock_guard lock(mu_);
    if (commit_asked_ || failed_) return;  // a commit runs to its end; a failure already cleaned up
    fail_locked(Status(Error::kInterrupted, "'" + entry_.path + "': the transfer ended before the file was complete"));
  }

 private:
  // Folds full parts into the file hash in order; frees parts that are hashed and stored.
  void advance_hash_locked() {
    for (auto it = parts_.find(hash_cursor_); it != parts_.end() && it->second.full; it = parts_.find(hash_cursor_)) {
      hasher_.update(it->second.buf.get(), it->second.len);
      it->second.hashed = true;
      ++hash_cursor_;
      release_if_done_locked(it);
    }
  }

  void release_if_done_locked(std::map<uint32_t, Part>::iterator it) {
    // A single-part file keeps its buffer until the PUT (after the hash check) sent it.
    if (!it->second.hashed || !it->second.uploaded) return;
    budget_.release(it->second.held);
    parts_.erase(it);
  }

  void release_all_locked() {
    for (auto& [n, part] : parts_) budget_.release(part.held);
    parts_.clear();
  }

  void fail_locked(const Status& st) {
    if (failed_) return;
    failed_ = true;
    failure_ = st;
    release_all_locked();
    if (!upload_id_.empty()) owner_->post([self = shared_from_this()] { self->abort_upload(); });
    finish_locked();
  }

  void fail(const Status& st) {
    std::lock_guard lock(mu_);
    fail_locked(st);
  }

  // Calls back the session once the outcome is known.
  void finish_locked() {
    if (!commit_asked_ || finished_) return;
    if (failed_) {
      return call_done_locked(failure_, Hash128{});
    }
    if (hash_cursor_ < part_count_ || completing_) return;
    Hash128 got = hasher_.digest();
    if (got != expected_) {
      fail_locked(Status(Error::kIntegrity, "'" + entry_.path + "': whole-file checksum mismatch after assembly (sender " +
                                                expected_.hex() + ", received " + got.hex() + "); " + url() +
                                                " was not created"));
      return;
    }
    if (multipart() && uploaded_ < part_count_) return;
    completing_ = true;
    owner_->post([self = shared_from_this(), got] { self->multipart() ? self->complete(got) : self->put_single(got); });
  }

  // The callback is dropped once called: it holds the session's file, which holds this.
  void call_done_locked(const Status& st, const Hash128& hash) {
    finished_ = true;
    FileSink::Done done = std::move(done_);
    done_ = nullptr;
    done(st, hash);
  }

  HeaderList metadata(const Hash128* hash) const {
    HeaderList m{meta_header("ferry-mtime", std::to_string(entry_.mtime_ns))};
    if (hash) m.push_back(meta_header("ferry-xxh3", hash->hex()));
    return m;
  }

  Result<S3Client*> client() {
    auto c = owner_->client();
    if (!c) return Status(c.status().code(), owner_->what() + ": " + c.status().message());
    return c;
  }

  // Worker: CreateMultipartUpload once per file (the first part to be sent does it; others
  // wait on create_mu_), then UploadPart with its MD5, sent again if the ETag disagrees.
  void upload_part(uint32_t p) {
    std::shared_ptr<uint8_t[]> buf;
    uint64_t len = 0;
    {
      std::lock_guard lock(mu_);
      if (failed_) return;
      buf = parts_[p].buf;
      len = parts_[p].len;
    }
    auto c = client();
    if (!c) return fail(c.status());
    std::string id;
    {
      std::lock_guard create(create_mu_);
      {
        std::lock_guard lock(mu_);
        if (failed_) return;
        id = upload_id_;
      }
      if (id.empty()) {
        auto created = (*c)->create_multipart(key_, metadata(nullptr));
        if (!created) return fail(created.status());
        std::lock_guard lock(mu_);
        upload_id_ = id = *created;
        if (failed_) {  // failed while creating: fail() saw no id to abort
          owner_->post([self = shared_from_this()] { self->abort_upload(); });
          return;
        }
      }
    }
    Md5Digest m = md5(buf.get(), len);
    std::string etag;
    for (int attempt = 1;; ++attempt) {
      auto e = (*c)->upload_part(key_, id, p + 1, buf.get(), len, m);
      if (!e) return fail(e.status());
      if (!etag_is_md5(*e) || *e == m.hex()) {
        etag = *e;
        break;
      }
      if (attempt == kEtagTries)
        return fail(Status(Error::kIntegrity, "PUT " + url() + " part " + std::to_string(p + 1) + ": the store's ETag " +
                                                  *e + " is not the MD5 of the part sent (" + m.hex() + ")"));
    }
    std::lock_guard lock(mu_);
    if (failed_) return;
    etags_[p] = etag;
    ++uploaded_;
    auto it = parts_.find(p);
    it->second.uploaded = true;
    release_if_done_locked(it);
    finish_locked();
  }

  void put_single(Hash128 hash) {
    std::shared_ptr<uint8_t[]> buf;
    uint64_t len = 0;
    {
      std::lock_guard lock(mu_);
      if (failed_) return;
      if (auto it = parts_.find(0); it != parts_.end()) {
        buf = it->second.buf;
        len = it->second.len;
      }
    }
    Status st;
    if (auto c = client(); !c) {
      st = c.status();
    } else {
      static const uint8_t kNothing = 0;
      const uint8_t* data = buf ? buf.get() : &kNothing;
      auto e = (*c)->put_object(key_, data, len, md5(data, len), metadata(&hash));
      if (!e) st = e.status();
      else if (etag_is_md5(*e) && *e != md5(data, len).hex())
        st = Status(Error::kIntegrity, "PUT " + url() + ": the store's ETag " + *e + " is not the MD5 of what was sent");
    }
    std::lock_guard lock(mu_);
    release_all_locked();
    if (!st) return fail_locked(st);
    call_done_locked(Status::ok(), hash);
  }

  void complete(Hash128 hash) {
    std::vector<CompletedPart> parts;
    std::string id;
    {
      std::lock_guard lock(mu_);
      if (failed_) return;
      for (uint32_t i = 0; i < part_count_; ++i) parts.push_back({i + 1, etags_[i], ""});
      id = upload_id_;
    }
    auto c = client();
    if (!c) return fail(c.status());
    auto etag = (*c)->complete_multipart(key_, id, parts);
    if (!etag) return fail(etag.status());
    Status st;
    if (entry_.size <= kMaxCopySize) {
      st = (*c)->replace_metadata(key_, metadata(&hash));
      if (!st) st = Status(st.code(), st.message() + " (the object is complete but lacks its ferry-xxh3 metadata)");
    } else {
      log::info(url() + " is larger than 5 GiB: its XXH3-128 (" + hash.hex() +
                ") cannot be added to its metadata (CopyObject limit)");
    }
    std::lock_guard lock(mu_);
    call_done_locked(st, hash);
  }

  void abort_upload() {
    std::string id;
    {
      std::lock_guard lock(mu_);
      if (aborted_ || upload_id_.empty()) return;
      aborted_ = true;
      id = upload_id_;
    }
    auto c = owner_->client();
    if (!c) return log::warning(owner_->what() + ": cannot abort the multipart upload of " + url() + ": " +
                                c.status().message());
    bool unsupported = false;
    if (Status st = (*c)->abort_multipart(key_, id, &unsupported); !st)
      log::warning(owner_->what() + ": cannot abort the multipart upload of " + url() + ": " + st.message());
    else if (unsupported)
      log::warning(owner_->what() + ": the store does not implement AbortMultipartUpload; the parts of " + url() +
                   " (upload " + id + ") stay until a lifecycle rule removes them");
  }

  const std::shared_ptr<S3ExportSinks> owner_;
  MemoryBudget& budget_;
  const std::string key_;
  const FileEntry entry_;
  const std::string peer_;
  const uint32_t chunk_size_;
  const uint64_t part_size_;
  const uint32_t part_count_;
  const uint32_t chunks_per_part_;

  mutable std::mutex mu_;
  std::map<uint32_t, Part> parts_;  // by 0-based part number: parts holding bytes
  uint32_t hash_cursor_ = 0;        // invariant: parts [0, hash_cursor_) are folded into hasher_
  StreamingHash128 hasher_;
  std::vector<std::string> etags_;  // [part], once uploaded
  uint32_t uploaded_ = 0;
  std::string upload_id_;
  bool aborted_ = false;
  bool failed_ = false;
  Status failure_;
  bool commit_asked_ = false, completing_ = false, finished_ = false;
  Hash128 expected_;
  FileSink::Done done_;
  std::mutex create_mu_;  // serialises CreateMultipartUpload; taken before mu_
};

class S3FileSink final : public FileSink {
 public:
  explicit S3FileSink(std::shared_ptr<FileUpload> up) : up_(std::move(up)) {}
  ~S3FileSink() override { up_->abandon(); }
  bool admits(uint32_t index) const override { return up_->admits(index); }
  bool needed_now(uint32_t index) const override { return up_->needed_now(index); }
  uint64_t headroom() const override { return up_->headroom(); }
  Status write(uint32_t index, const uint8_t* data, uint32_t len, uint64_t* reserved) override {
    return up_->write(index, data, len, reserved);
  }
  void commit(const Hash128& expected, Done done) override { up_->commit(expected, std::move(done)); }

 private:
  std::shared_ptr<FileUpload> up_;
};

}  // namespace

S3ExportSinks::S3ExportSinks(S3ExportSettings settings) : settings_(std::move(settings)) {}

S3ExportSinks::~S3ExportSinks() { stop(); }

void S3ExportSinks::stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads) {
    // The last reference may go away inside a task: never join the thread we are on.
    if (t.get_id() == std::this_thread::get_id()) t.detach();
    else t.join();
  }
}

void S3ExportSinks::post(std::function<void()> task) {
  {
    std::unique_lock lock(mu_);
    if (!stopping_) {
      // Workers start on first use: an export nobody sends to costs no threads.
      if (threads_.empty())
        for (int i = 0; i < std::max(1, settings_.s3.concurrency); ++i) threads_.emplace_back([this] { worker(); });
      queue_.push_back(std::move(task));
      cv_.notify_one();
      return;
    }
  }
  task();  // after stop(): the daemon is going away; finish inline
}

void S3ExportSinks::worker() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has run
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

Result<S3Client*> S3ExportSinks::client() {
  std::lock_guard lock(client_mu_);
  if (!client_) {
    auto c = make_client(settings_.target, settings_.s3);
    if (!c) return c.status();
    client_ = std::move(*c);
  }
  return client_.get();
}

Result<bool> S3ExportSinks::up_to_date(const std::string& rel_path, const FileEntry& entry,
                                       protocol::OverwriteMode mode) {
  if (mode == protocol::OverwriteMode::kAlways) return false;
  auto c = client();
  if (!c) return Status(c.status().code(), what() + ": " + c.status().message());
  auto head = (*c)->head_object(settings_.target.key_for(rel_path));
  if (!head) return Status(head.status().code(), what() + ": " + head.status().message());
  if (!head->found) return false;
  if (mode == protocol::OverwriteMode::kNever) return true;
  return head->size == entry.size && head->meta("ferry-mtime") == std::to_string(entry.mtime_ns);
}

// The listing for sync. ListObjectsV2 gives keys and sizes; the source mtime (and the hash)
// that sync compares live in each object's ferry-* metadata, so every key gets a HeadObject,
// kListHeadThreads at a time. An object ferry did not write (no ferry-mtime) lists with
// mtime 0 and no hash, so sync sends it again rather than trust it. Keys that are not a valid
// relative path below the prefix ("a//b", "../x", "dir/" folder markers) are left out: sync
// can neither compare nor delete what it cannot name.
Status S3ExportSinks::list(const std::string& rel_dir, bool with_hashes,
                           const std::function<void(const FileEntry&, const Hash128*)>& visit) {
  constexpr size_t kListHeadThreads = 8;
  auto c = client();
  if (!c) return Status(c.status().code(), what() + ": " + c.status().message());
  const std::string prefix = settings_.target.key_for(rel_dir.empty() ? std::string() : rel_dir + "/");
  auto listed = (*c)->list_objects(prefix);
  if (!listed) return Status(listed.status().code(), what() + ": listing: " + listed.status().message());
  std::vector<const ObjectInfo*> objects;
  for (const auto& o : *listed) {
    std::string rel = o.key.substr(prefix.size());
    if (o.key.compare(0, prefix.size(), prefix) == 0 && validate_relative_path(rel)) objects.push_back(&o);
  }
  std::vector<HeadResult> heads(objects.size());
  std::vector<Status> errors(objects.size());
  std::atomic<size_t> next{0};
  auto head_some = [&] {
    for (size_t i; (i = next++) < objects.size();) {
      auto h = (*c)->head_object(objects[i]->key);
      if (h) heads[i] = std::move(*h);
      else errors[i] = h.status();
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < std::min(kListHeadThreads, objects.size()); ++t) threads.emplace_back(head_some);
  head_some();
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < objects.size(); ++i) {
    if (!errors[i]) return Status(errors[i].code(), what() + ": " + errors[i].message());
    if (!heads[i].found) continue;  // deleted since the listing
    FileEntry e;
    e.path = objects[i]->key.substr(prefix.size());
    e.type = FileType::kRegular;
    e.size = heads[i].size;
    e.mtime_ns = 0;
    const std::string mtime = heads[i].meta("ferry-mtime");
    if (!mtime.empty()) {
      char* end = nullptr;
      long long v = std::strtoll(mtime.c_str(), &end, 10);
      if (end && *end == '\0') e.mtime_ns = v;
    }
    Hash128 h;
    const bool have_hash = with_hashes && Hash128::from_hex(heads[i].meta("ferry-xxh3"), &h);
    visit(e, have_hash ? &h : nullptr);
  }
  return Status::ok();
}

Status S3ExportSinks::remove(const std::string& rel_path) {
  auto c = client();
  if (!c) return Status(c.status().code(), what() + ": " + c.status().message());
  const std::string key = settings_.target.key_for(rel_path);
  if (Status st = (*c)->delete_object(key); !st)
    return Status(st.code(), what() + ": deleting " + (*c)->object_url(key) + ": " + st.message());
  return Status::ok();
}

Result<std::unique_ptr<FileSink>> S3ExportSinks::begin(const std::string& rel_path, const FileEntry& entry,
                                                       uint32_t chunk_size, MemoryBudget& budget,
                                                       const std::string& peer) {
  if (chunk_size == 0) return Status(Error::kProtocol, "chunk size 0");
  auto up = std::make_shared<FileUpload>(shared_from_this(), budget, settings_.target.key_for(rel_path), entry,
                                         chunk_size, peer);
  return std::unique_ptr<FileSink>(std::make_unique<S3FileSink>(std::move(up)));
}

}  // namespace ferry::s3
