#include "s3/multipart_uploader.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <ctime>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "codec/hash.h"
#include "core/log.h"
#include "core/units.h"
#include "io/unique_fd.h"
#include "s3/upload_journal.h"

namespace ferry::s3 {

Result<uint64_t> choose_part_size(uint64_t file_size, uint64_t requested) {
  if (requested) {
    if (requested < kMinPartSize || requested > kMaxPartSize)
      return Status(Error::kUsage, "--part-size must be between 5M and 4G (S3 allows 5 MiB..5 GiB; ferry buffers parts)");
    if ((file_size + requested - 1) / requested > kMaxParts)
      return Status(Error::kUsage, "--part-size " + format_bytes(requested) + " would cut a " + format_bytes(file_size) +
                                       " file into more than 10,000 parts (S3's limit)");
    return requested;
  }
  uint64_t p = kDefaultPartSize;
  while ((file_size + p - 1) / p > kMaxParts && p < kMaxPartSize) p *= 2;
  return p;
}

namespace {

constexpr int kEtagTries = 3;  // sends of one body whose ETag does not match its MD5

Status pread_all(int fd, uint8_t* dst, size_t len, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, dst + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status(Error::kLocalIo, "read '" + path + "'", errno);
    if (n == 0) return Status(Error::kLocalIo, "read '" + path + "': the file shrank while it was uploaded");
    done += static_cast<size_t>(n);
  }
  return Status::ok();
}

// An ETag that is a plain MD5 (32 hex digits) can be checked against what we sent; others
// (SSE-KMS, some gateways) cannot.
bool etag_is_md5(const std::string& e) {
  if (e.size() != 32) return false;
  for (char c : e)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// Takes n bytes of the budget, waiting (FIFO) for releases if need be. A worker never holds
// budget while it waits here, so waiting cannot deadlock.
void acquire_blocking(MemoryBudget& b, uint64_t n) {
  std::promise<void> granted;
  auto f = granted.get_future();
  b.acquire(n, [&granted] { granted.set_value(); });
  f.wait();
}

// A part buffer. Large ones are fresh mappings (see run()); asking for transparent huge
// pages on them turns 4,096 page faults per 16 MiB into 8 (the kernel decides; a hint only).
Buffer make_part_buffer(uint64_t n) {
  Buffer b = make_buffer(n ? n : 1);
  constexpr uintptr_t kHuge = 2u << 20;
  uintptr_t start = (reinterpret_cast<uintptr_t>(b.get()) + kHuge - 1) & ~(kHuge - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(b.get()) + n) & ~(kHuge - 1);
  if (end > start) ::madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE);
  return b;
}

// Part buffers that finished their request, kept for the next part of the same size instead
// of going back to the kernel: a fresh mapping costs page faults and the kernel's zeroing of
// every page (measured: ~15 % of ferry's CPU uploading 1 GiB with CRC32C). The pool holds a
// free buffer only while free + budgeted bytes stay within the budget's limit, so the bytes
// mapped for parts never exceed --memory (the budget is still what bounds parts in flight).
class PartBufferPool {
 public:
  explicit PartBufferPool(MemoryBudget& budget) : budget_(budget) {}

  // A buffer of n bytes; the caller has already taken n from the budget.
  Buffer take(uint64_t n) {
    {
      std::lock_guard lock(mu_);
      for (auto it = free_.begin(); it != free_.end(); ++it) {
        if (it->first != n) continue;
        Buffer b = std::move(it->second);
        free_.erase(it);
        pooled_ -= n;
        return b;
      }
      // None of this size: drop pooled buffers (of other sizes) that no longer fit beside it.
      while (!free_.empty() && pooled_ + budget_.in_use() > budget_.limit()) {
        pooled_ -= free_.front().first;
        free_.pop_front();
      }
    }
    return make_part_buffer(n);
  }
  // Returns a buffer of n bytes; call before releasing its n bytes of budget.
  void give(Buffer b, uint64_t n) {
    std::lock_guard lock(mu_);
    if (pooled_ + budget_.in_use() > budget_.limit()) return;  // b is unmapped here
    pooled_ += n;
    free_.emplace_back(n, std::move(b));
  }

 private:
  MemoryBudget& budget_;
  std::mutex mu_;
  std::deque<std::pair<uint64_t, Buffer>> free_;
  uint64_t pooled_ = 0;
};

std::string absolute_path(const std::string& path) {
  char* real = ::realpath(path.c_str(), nullptr);
  std::string abs = real ? real : path;
  std::free(real);
  return abs;
}

struct FileState {
  const UploadItem* item = nullptr;
  UploadResult* result = nullptr;
  UniqueFd fd;
  bool multipart = false;
  uint64_t part_size = 0;
  uint32_t part_count = 0;

  std::mutex mu;  // guards what follows (and result's counters)
  std::string upload_id;
  std::vector<std::string> etags;  // [part - 1]
  std::vector<std::string> sums;   // [part - 1]: base64 CRC32C with kCrc32c (Complete lists them)
  ChecksumAlgorithm checksum = ChecksumAlgorithm::kMd5;
  uint32_t outstanding = 0;        // parts this run still has to finish
  bool failed = false;
  std::unique_ptr<OrderedFileHasher> hasher;  // chunk = part
  std::unique_ptr<UploadJournal> journal;
};

struct Task {
  enum Kind { kSingle, kPrepare, kPart } kind;
  FileState* file;
  uint32_t part = 0;  // 1-based
};

// One call of MultipartUploader::run: the scheduler, and what a worker does with a task.
class UploadRun {
 public:
  UploadRun(S3Client& client, const UploaderOptions& options, MemoryBudget& budget, std::atomic<uint64_t>& bytes_done,
            std::atomic<uint64_t>& files_done)
      : client_(client), options_(options), budget_(budget), bytes_done_(bytes_done), files_done_(files_done) {}

  void add(const UploadItem* item, UploadResult* result) {
    auto f = std::make_unique<FileState>();
    f->item = item;
    f->result = result;
    f->multipart = item->size > options_.single_put_cutoff;
    files_.push_back(std::move(f));
  }

  void worker() {
    Task t{};
    while (next_task(&t)) {
      FileState* f = t.file;
      bool finished = false;
      if (t.kind == Task::kSingle) {
        put_single(f);
        finished = true;
      } else if (t.kind == Task::kPrepare) {
        std::vector<uint32_t> todo = prepare(f);
        bool ok;
        {
          std::lock_guard lock(f->mu);
          ok = !f->failed;
        }
        {
          std::lock_guard lock(mu_);
          for (uint32_t n : todo) ready_.push_back(Task{Task::kPart, f, n});
          --preparing_;
        }
        cv_.notify_all();
        if (ok && todo.empty()) {
          complete(f);  // every part was stored by an earlier run
          finished = true;
        }
      } else if (upload_part(f, t.part)) {
        complete(f);
        finished = true;
      }
      if (finished) f->fd.reset();
    }
  }

 private:
  // Files in order; a multipart file first needs a kPrepare (create or resume the upload),
  // whose worker then queues the parts still missing. Invariant: a part task exists only for
  // a prepared file. Returns false when there is no work left.
  bool next_task(Task* t) {
    std::unique_lock lock(mu_);
    for (;;) {
      if (!ready_.empty()) {
        *t = ready_.front();
        ready_.pop_front();
        return true;
      }
      if (cursor_ < files_.size()) {
        FileState* f = files_[cursor_++].get();
        *t = Task{f->multipart ? Task::kPrepare : Task::kSingle, f};
        if (f->multipart) ++preparing_;
        return true;
      }
      if (preparing_ == 0) return false;
      cv_.wait(lock);  // a prepare in flight may still queue parts
    }
  }

  void fail(FileState* f, const Status& st) {
    std::lock_guard lock(f->mu);
    fail_locked(f, st);
  }
  void fail_locked(FileState* f, const Status& st) {
    if (f->failed) return;
    f->failed = true;
    f->result->status = st;
    ++files_done_;
  }

  Status open_source(FileState* f) {
    int fd = ::open(f->item->source_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno_status(Error::kLocalIo, "open '" + f->item->source_path + "'", errno);
    f->fd = UniqueFd(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return Status::ok();
  }

  HeaderList metadata(const FileState* f, const std::string& xxh3) const {
    HeaderList m{meta_header("ferry-mtime", std::to_string(f->item->mtime_ns))};
    if (!xxh3.empty()) m.push_back(meta_header("ferry-xxh3", xxh3));
    return m;
  }

  // Sends one body (a single PUT when upload_id is empty, else part `number`) until the store
  // returns an ETag that matches its MD5, up to kEtagTries times. Returns the ETag. With
  // CRC32C there is no MD5 to compare: the store's check of x-amz-checksum-crc32c is it.
  Result<std::string> send_body(FileState* f, uint32_t number, const uint8_t* data, uint64_t len, const BodyChecksum& m,
                                const HeaderList& meta) {
    const std::string& key = f->item->key;
    for (int round = 0; round < kEtagTries; ++round) {
      auto etag = number == 0 ? client_.put_object(key, data, len, m, meta)
                              : client_.upload_part(key, f->upload_id, number, data, len, m);
      if (!etag) return etag.status();
      std::lock_guard lock(f->mu);
      f->result->bytes_sent += len;
      f->result->parts_sent++;
      if (!m.comparable_with_etag() || !etag_is_md5(*etag) || *etag == m.md5.hex()) return etag;
      f->result->parts_resent++;
      log::warning((number ? "part " + std::to_string(number) + " of " : std::string()) + client_.object_url(key) +
                   ": the store's ETag " + *etag + " is not the MD5 of what was sent (" + m.md5.hex() + "); sending again");
    }
    return Status(Error::kIntegrity, (number ? "part " + std::to_string(number) + " of " : std::string()) +
                                         client_.object_url(key) + " was never stored intact (ETag never matched the MD5 sent)");
  }

  // Single PUT: the whole file in one budgeted buffer; hash and MD5 from memory.
  void put_single(FileState* f) {
    const UploadItem& it = *f->item;
    if (Status st = open_source(f); !st) return fail(f, st);
    acquire_blocking(budget_, it.size);
    Buffer buf = pool_.take(it.size);
    Status st = pread_all(f->fd.get(), buf.get(), it.size, 0, it.source_path);
    Hash128 h;
    if (st) {
      h = xxh3_128(buf.get(), it.size);
      auto etag = send_body(f, 0, buf.get(), it.size, BodyChecksum::compute(options_.checksum, buf.get(), it.size),
                            metadata(f, h.hex()));
      st = etag.status();
    }
    pool_.give(std::move(buf), it.size);
    budget_.release(it.size);
    if (!st) return fail(f, st);
    f->result->xxh3 = h.hex();
    f->result->done = true;
    bytes_done_ += it.size;
    ++files_done_;
  }

  // Resumes the journaled upload of `f` when it is still valid: sets f->upload_id and marks
  // the parts the store still holds in *have. Returns the journal to keep appending to, or
  // nullptr (start over). Fails the file only when the journal is locked by another process.
  std::unique_ptr<UploadJournal> resume_from_journal(FileState* f, const std::string& path, std::vector<bool>* have) {
    const UploadItem& it = *f->item;
    bool absent = false;
    auto j = UploadJournal::open_existing(path, &absent);
    if (!j) {
      if (j.status().code() == Error::kRefused) {
        fail(f, j.status());
        return nullptr;
      }
      log::warning(j.status().message() + "; starting the upload of '" + it.source_path + "' over");
      return nullptr;
    }
    if (absent) return nullptr;
    const UploadJournalState& s = (*j)->state();
    if (s.size != it.size || s.mtime_ns != it.mtime_ns || s.part_size != f->part_size) {
      log::info("'" + it.source_path + "' changed since its interrupted upload: starting over");
      (void)client_.abort_multipart(it.key, s.upload_id);
      (void)(*j)->remove();
      return nullptr;
    }
    bool unsupported = false, gone = false;
    auto listed = client_.list_parts(it.key, s.upload_id, &unsupported, &gone);
    if (!listed) {
      fail(f, listed.status());
      return nullptr;
    }
    if (gone) {
      log::info("the interrupted upload of " + client_.object_url(it.key) + " is gone: starting over");
      (void)(*j)->remove();
      return nullptr;
    }
    std::map<uint32_t, std::string> stored;
    for (const auto& p : *listed) stored[p.number] = p.etag;
    f->upload_id = s.upload_id;
    f->checksum = s.checksum == "crc32c" ? ChecksumAlgorithm::kCrc32c : ChecksumAlgorithm::kMd5;
    for (const auto& [n, part] : s.parts) {
      if (n > f->part_count) continue;
      // A journaled part counts when the store lists it with the same ETag, or when the
      // store cannot list parts at all (then the journal is all there is).
      auto listed_part = stored.find(n);
      if (!unsupported && (listed_part == stored.end() || listed_part->second != part.etag)) continue;
      (*have)[n - 1] = true;
      f->etags[n - 1] = part.etag;
      f->sums[n - 1] = part.md5_b64;
    }
    return std::move(*j);
  }

  // Creates the upload, or resumes the journaled one. Returns the part numbers to send.
  std::vector<uint32_t> prepare(FileState* f) {
    const UploadItem& it = *f->item;
    if (Status st = open_source(f); !st) {
      fail(f, st);
      return {};
    }
    auto ps = choose_part_size(it.size, options_.part_size);
    if (!ps) {
      fail(f, ps.status());
      return {};
    }
    f->part_size = *ps;
    f->part_count = static_cast<uint32_t>((it.size + f->part_size - 1) / f->part_size);
    f->etags.assign(f->part_count, "");
    f->sums.assign(f->part_count, "");
    f->checksum = options_.checksum;
    int fd = f->fd.get();
    std::string src = it.source_path;
    f->hasher = std::make_unique<OrderedFileHasher>(
        it.size, static_cast<uint32_t>(f->part_size),
        [fd, src](uint64_t off, uint8_t* dst, size_t len) { return pread_all(fd, dst, len, off, src); });

    std::vector<bool> have(f->part_count, false);
    // Keyed by the absolute path, so the same command from another directory resumes.
    const std::string abs = absolute_path(it.source_path);
    std::string journal_path;
    if (!options_.state_dir.empty()) {
      journal_path = UploadJournal::path_for(options_.state_dir, client_.endpoint().to_string(), client_.bucket(), it.key, abs);
      f->journal = resume_from_journal(f, journal_path, &have);
      std::lock_guard lock(f->mu);
      if (f->failed) return {};
    }
    if (f->upload_id.empty()) {
      f->checksum = options_.checksum;
      auto id = client_.create_multipart(it.key, metadata(f, ""), f->checksum);
      if (!id) {
        fail(f, id.status());
        return {};
      }
      f->upload_id = *id;
      if (!journal_path.empty()) {
        UploadJournalState s;
        s.endpoint = client_.endpoint().to_string();
        s.bucket = client_.bucket();
        s.key = it.key;
        s.source = abs;
        s.size = it.size;
        s.mtime_ns = it.mtime_ns;
        s.part_size = f->part_size;
        s.upload_id = *id;
        s.created_unix = static_cast<int64_t>(std::time(nullptr));
        s.checksum = to_string(f->checksum);
        auto j = UploadJournal::create(journal_path, s);
        if (!j) log::warning(j.status().message() + ": this upload cannot be resumed");
        else f->journal = std::move(*j);
      }
    }
    std::vector<uint32_t> todo;
    std::lock_guard lock(f->mu);
    for (uint32_t n = 1; n <= f->part_count; ++n) {
      if (!have[n - 1]) {
        todo.push_back(n);
        continue;
      }
      uint64_t len = chunk_length(it.size, static_cast<uint32_t>(f->part_size), n - 1);
      f->result->parts_resumed++;
      f->result->bytes_resumed += len;
      bytes_done_ += len;
      // Stored by an earlier run: the hash re-reads it from the file when it gets there.
      if (Status st = f->hasher->add_chunk_on_disk(n - 1); !st) {
        fail_locked(f, st);
        return {};
      }
    }
    f->outstanding = static_cast<uint32_t>(todo.size());
    return todo;
  }

  // One part: read into a budgeted buffer, checksum, fold into the file hash, upload, journal.
  // Returns true when it was the file's last outstanding part.
  bool upload_part(FileState* f, uint32_t n) {
    const UploadItem& it = *f->item;
    {
      std::lock_guard lock(f->mu);
      if (f->failed) return false;
    }
    uint64_t len = chunk_length(it.size, static_cast<uint32_t>(f->part_size), n - 1);
    uint64_t offset = static_cast<uint64_t>(n - 1) * f->part_size;
    acquire_blocking(budget_, len);
    Buffer buf = pool_.take(len);
    Status st = pread_all(f->fd.get(), buf.get(), len, offset, it.source_path);
    BodyChecksum m;
    std::string etag;
    if (st) {
      m = BodyChecksum::compute(f->checksum, buf.get(), len);
      st = f->hasher->add_chunk(n - 1, buf.get(), len);
    }
    if (st) {
      auto e = send_body(f, n, buf.get(), len, m, {});
      st = e.status();
      if (e) etag = *e;
    }
    pool_.give(std::move(buf), len);
    budget_.release(len);
    if (st && f->journal) st = f->journal->record_part(n, {etag, m.base64()});
    if (st) {
      std::lock_guard lock(f->mu);
      f->sums[n - 1] = m.base64();
    }
    if (!st) {
      fail(f, st);
      return false;
    }
    bytes_done_ += len;
    // TEST-ONLY FAULT: die like a kill -9 once this many parts are durable in journals.
    uint64_t journaled = ++parts_journaled_;
    if (options_.fault_sigkill_after_parts && journaled >= options_.fault_sigkill_after_parts) ::raise(SIGKILL);
    std::lock_guard lock(f->mu);
    f->etags[n - 1] = etag;
    return --f->outstanding == 0 && !f->failed;
  }

  // Completes a multipart upload whose parts are all stored, then stores the file hash.
  void complete(FileState* f) {
    const UploadItem& it = *f->item;
    std::vector<CompletedPart> parts;
    Hash128 h;
    {
      std::lock_guard lock(f->mu);
      if (f->failed) return;
      for (uint32_t i = 0; i < f->part_count; ++i)
        parts.push_back({i + 1, f->etags[i], f->checksum == ChecksumAlgorithm::kCrc32c ? f->sums[i] : ""});
      if (!f->hasher->complete()) {
        fail_locked(f, Status(Error::kInternal, "the hash of '" + it.source_path + "' is incomplete after its last part"));
        return;
      }
      h = f->hasher->digest();
    }
    auto etag = client_.complete_multipart(it.key, f->upload_id, parts);
    if (!etag) return fail(f, etag.status());
    if (f->journal) (void)f->journal->remove();
    if (it.size <= kMaxCopySize) {
      if (Status st = client_.replace_metadata(it.key, metadata(f, h.hex())); !st)
        return fail(f, Status(st.code(), st.message() + " (the object is complete but lacks its ferry-xxh3 metadata)"));
    } else {
      log::info(client_.object_url(it.key) + " is larger than 5 GiB: its XXH3-128 (" + h.hex() +
                ") cannot be added to its metadata (CopyObject limit)");
    }
    f->result->xxh3 = h.hex();
    f->result->done = true;
    ++files_done_;
  }

  S3Client& client_;
  const UploaderOptions& options_;
  MemoryBudget& budget_;
  PartBufferPool pool_{budget_};
  std::atomic<uint64_t>& bytes_done_;
  std::atomic<uint64_t>& files_done_;
  std::vector<std::unique_ptr<FileState>> files_;
  std::atomic<uint64_t> parts_journaled_{0};

  std::mutex mu_;  // guards the scheduler state below
  std::condition_variable cv_;
  std::deque<Task> ready_;
  size_t cursor_ = 0;
  int preparing_ = 0;
};

}  // namespace

MultipartUploader::MultipartUploader(S3Client& client, const UploaderOptions& options)
    : client_(client), options_(options), budget_(options.memory) {}

std::vector<UploadResult> MultipartUploader::run(const std::vector<UploadItem>& items) {
  // Part buffers are large and live for one request. Served by mmap, a freed one goes back to
  // the kernel at once; from the heap, each worker's malloc arena would keep its last part
  // buffer and RSS would grow to workers x part size whatever --memory says. The page faults
  // of a fresh mapping cost far less than the request that sends it.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  std::vector<UploadResult> results(items.size());
  UploadRun run(client_, options_, budget_, bytes_done, files_done);
  for (size_t i = 0; i < items.size(); ++i) run.add(&items[i], &results[i]);
  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, options_.concurrency); ++i) threads.emplace_back([&run] { run.worker(); });
  for (auto& t : threads) t.join();
  return results;
}

}  // namespace ferry::s3
