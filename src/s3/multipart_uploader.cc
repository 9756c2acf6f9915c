#include "s3/multipart_uploader.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <ctime>
#include <deque>
#include <future>
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

// Takes n bytes of the budget, waiting for releases (FIFO) if need be.
void acquire_blocking(MemoryBudget& b, uint64_t n) {
  std::promise<void> granted;
  auto f = granted.get_future();
  b.acquire(n, [&granted] { granted.set_value(); });
  f.wait();
}

std::string ns_text(int64_t ns) { return std::to_string(ns); }

struct FileState {
  const UploadItem* item = nullptr;
  UploadResult* result = nullptr;
  UniqueFd fd;
  bool multipart = false;
  uint64_t part_size = 0;
  uint32_t part_count = 0;

  std::mutex mu;  // guards what follows
  std::string upload_id;
  std::vector<std::string> etags;  // [part - 1]
  uint32_t outstanding = 0;        // parts this run still has to finish
  bool failed = false;
  std::unique_ptr<OrderedFileHasher> hasher;
  std::unique_ptr<UploadJournal> journal;
};

struct Task {
  enum Kind { kSingle, kPrepare, kPart } kind;
  FileState* file;
  uint32_t part = 0;  // 1-based
};

}  // namespace

MultipartUploader::MultipartUploader(S3Client& client, const UploaderOptions& options)
    : client_(client), options_(options), budget_(options.memory) {}

std::vector<UploadResult> MultipartUploader::run(const std::vector<UploadItem>& items) {
  std::vector<UploadResult> results(items.size());
  std::vector<std::unique_ptr<FileState>> files;
  files.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    auto f = std::make_unique<FileState>();
    f->item = &items[i];
    f->result = &results[i];
    f->multipart = items[i].size > options_.single_put_cutoff;
    files.push_back(std::move(f));
  }

  // The scheduler: files in order; a multipart file first needs a kPrepare (create or
  // resume the upload), whose worker then queues the parts still missing. Invariant: a part
  // task exists only for a prepared file.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Task> ready;
  size_t cursor = 0;
  int preparing = 0;
  std::atomic<uint64_t> parts_journaled{0};

  auto next_task = [&](Task* t) {
    std::unique_lock lock(mu);
    for (;;) {
      if (!ready.empty()) {
        *t = ready.front();
        ready.pop_front();
        return true;
      }
      if (cursor < files.size()) {
        FileState* f = files[cursor++].get();
        *t = Task{f->multipart ? Task::kPrepare : Task::kSingle, f};
        if (f->multipart) ++preparing;
        return true;
      }
      if (preparing == 0) return false;
      cv.wait(lock);
    }
  };

  auto fail_file = [&](FileState* f, const Status& st) {
    std::lock_guard lock(f->mu);
    if (!f->failed) {
      f->failed = true;
      f->result->status = st;
      files_done++;
    }
  };

  auto open_source = [&](FileState* f) -> Status {
    int fd = ::open(f->item->source_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno_status(Error::kLocalIo, "open '" + f->item->source_path + "'", errno);
    f->fd = UniqueFd(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return Status::ok();
  };

  auto base_meta = [&](const FileState* f) {
    return HeaderList{meta_header("ferry-mtime", ns_text(f->item->mtime_ns))};
  };

  // Single PUT: the whole file in one budgeted buffer; hash and MD5 from memory.
  auto do_single = [&](FileState* f) {
    const UploadItem& it = *f->item;
    if (Status st = open_source(f); !st) return fail_file(f, st);
    acquire_blocking(budget_, it.size);
    Buffer buf = make_buffer(it.size ? it.size : 1);
    Status st = pread_all(f->fd.get(), buf.get(), it.size, 0, it.source_path);
    Hash128 h = xxh3_128(buf.get(), it.size);
    Md5Digest m = md5(buf.get(), it.size);
    HeaderList meta = base_meta(f);
    meta.push_back(meta_header("ferry-xxh3", h.hex()));
    for (int round = 0; st && round < 3; ++round) {
      auto etag = client_.put_object(it.key, buf.get(), it.size, m, meta);
      if (!etag) {
        st = etag.status();
        break;
      }
      f->result->bytes_sent += it.size;
      f->result->parts_sent++;
      if (!etag_is_md5(*etag) || *etag == m.hex()) {
        st = Status::ok();
        f->result->done = true;
        break;
      }
      f->result->parts_resent++;
      st = Status(Error::kIntegrity, "PUT " + client_.object_url(it.key) + ": the store's ETag " + *etag +
                                         " is not the MD5 of what was sent (" + m.hex() + ")");
    }
    buf.reset();
    budget_.release(it.size);
    if (!st) return fail_file(f, st);
    f->result->xxh3 = h.hex();
    bytes_done += it.size;
    files_done++;
  };

  // Completes a multipart upload whose parts are all stored, then stores the hash.
  auto finish_multipart = [&](FileState* f) {
    const UploadItem& it = *f->item;
    std::vector<CompletedPart> parts;
    std::string upload_id;
    Hash128 h;
    {
      std::lock_guard lock(f->mu);
      if (f->failed) return;
      upload_id = f->upload_id;
      for (uint32_t i = 0; i < f->part_count; ++i) parts.push_back({i + 1, f->etags[i]});
      if (!f->hasher->complete()) {
        f->failed = true;
        f->result->status = Status(Error::kInternal, "hash of '" + it.source_path + "' incomplete at the end");
        files_done++;
        return;
      }
      h = f->hasher->digest();
    }
    auto etag = client_.complete_multipart(it.key, upload_id, parts);
    if (!etag) return fail_file(f, etag.status());
    if (f->journal) (void)f->journal->remove();
    if (it.size <= kMaxCopySize) {
      HeaderList meta = base_meta(f);
      meta.push_back(meta_header("ferry-xxh3", h.hex()));
      if (Status st = client_.replace_metadata(it.key, meta); !st)
        return fail_file(f, Status(st.code(), st.message() + " (the object is complete but lacks its ferry-xxh3 metadata)"));
    } else {
      log::info(client_.object_url(it.key) + " is larger than 5 GiB: its XXH3-128 (" + h.hex() +
                ") is not stored in its metadata (CopyObject limit)");
    }
    f->result->xxh3 = h.hex();
    f->result->done = true;
    files_done++;
  };

  // Creates the upload, or resumes the journaled one: parts the store still has (ListParts,
  // or the journal alone where the store cannot list them) are not sent again.
  auto do_prepare = [&](FileState* f) -> std::vector<uint32_t> {
    const UploadItem& it = *f->item;
    std::vector<uint32_t> todo;
    if (Status st = open_source(f); !st) {
      fail_file(f, st);
      return todo;
    }
    auto ps = choose_part_size(it.size, options_.part_size);
    if (!ps) {
      fail_file(f, ps.status());
      return todo;
    }
    f->part_size = *ps;
    f->part_count = static_cast<uint32_t>((it.size + f->part_size - 1) / f->part_size);
    f->etags.assign(f->part_count, "");
    int fd = f->fd.get();
    std::string path = it.source_path;
    f->hasher = std::make_unique<OrderedFileHasher>(
        it.size, static_cast<uint32_t>(f->part_size),
        [fd, path](uint64_t off, uint8_t* dst, size_t len) { return pread_all(fd, dst, len, off, path); });

    std::vector<bool> have(f->part_count, false);
    std::string journal_path;
    // The journal is keyed by the absolute path, so the same command from another
    // directory (or a relative SRC) finds it.
    char* real = ::realpath(it.source_path.c_str(), nullptr);
    const std::string abs = real ? real : it.source_path;
    std::free(real);
    if (!options_.state_dir.empty()) {
      journal_path = UploadJournal::path_for(options_.state_dir, client_.endpoint().to_string(), client_.bucket(), it.key, abs);
      bool absent = false;
      auto j = UploadJournal::open_existing(journal_path, &absent);
      if (!j && j.status().code() == Error::kRefused) {
        fail_file(f, j.status());
        return todo;
      }
      if (!j) {
        log::warning(j.status().message() + "; starting the upload over");
      } else if (!absent) {
        const UploadJournalState& s = (*j)->state();
        if (s.size != it.size || s.mtime_ns != it.mtime_ns || s.part_size != f->part_size) {
          log::info("'" + it.source_path + "' changed since the interrupted upload: starting over");
          (void)client_.abort_multipart(it.key, s.upload_id);
          (void)(*j)->remove();
        } else {
          bool unsupported = false, gone = false;
          auto listed = client_.list_parts(it.key, s.upload_id, &unsupported, &gone);
          if (!listed) {
            fail_file(f, listed.status());
            return todo;
          }
          if (gone) {
            log::info("the interrupted upload of " + client_.object_url(it.key) + " is gone: starting over");
            (void)(*j)->remove();
          } else {
            f->upload_id = s.upload_id;
            std::map<uint32_t, std::string> stored;
            for (const auto& p : *listed) stored[p.number] = p.etag;
            for (const auto& [n, part] : s.parts) {
              if (n > f->part_count) continue;
              // Trust a journaled part when the store lists it with the same ETag, or when
              // the store cannot list parts at all (then the journal is all we have).
              bool ok = unsupported ? true : (stored.count(n) && stored[n] == part.etag);
              if (!ok) continue;
              have[n - 1] = true;
              f->etags[n - 1] = part.etag;
            }
            f->journal = std::move(*j);
          }
        }
      }
    }
    if (f->upload_id.empty()) {
      auto id = client_.create_multipart(it.key, base_meta(f));
      if (!id) {
        fail_file(f, id.status());
        return todo;
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
        auto j = UploadJournal::create(journal_path, s);
        if (!j) log::warning(j.status().message() + ": this upload cannot be resumed");
        else f->journal = std::move(*j);
      }
    }
    std::lock_guard lock(f->mu);
    for (uint32_t n = 1; n <= f->part_count; ++n) {
      if (have[n - 1]) {
        uint64_t len = chunk_length(it.size, static_cast<uint32_t>(f->part_size), n - 1);
        f->result->parts_resumed++;
        f->result->bytes_resumed += len;
        bytes_done += len;
        if (Status st = f->hasher->add_chunk_on_disk(n - 1); !st) {
          f->failed = true;
          f->result->status = st;
          files_done++;
          return {};
        }
      } else {
        todo.push_back(n);
      }
    }
    f->outstanding = static_cast<uint32_t>(todo.size());
    return todo;
  };

  // One part: read into a budgeted buffer, MD5, fold into the file hash, upload, journal.
  // Returns true when it was the file's last outstanding part.
  auto do_part = [&](FileState* f, uint32_t n) -> bool {
    const UploadItem& it = *f->item;
    {
      std::lock_guard lock(f->mu);
      if (f->failed) return false;
    }
    uint32_t ps = static_cast<uint32_t>(f->part_size);
    uint64_t len = chunk_length(it.size, ps, n - 1);
    uint64_t offset = static_cast<uint64_t>(n - 1) * f->part_size;
    acquire_blocking(budget_, len);
    Buffer buf = make_buffer(len);
    Status st = pread_all(f->fd.get(), buf.get(), len, offset, it.source_path);
    Md5Digest m{};
    if (st) {
      m = md5(buf.get(), len);
      st = f->hasher->add_chunk(n - 1, buf.get(), len);
    }
    std::string etag;
    for (int round = 0; st && round < 3; ++round) {
      auto e = client_.upload_part(it.key, f->upload_id, n, buf.get(), len, m);
      if (!e) {
        st = e.status();
        break;
      }
      {
        std::lock_guard lock(f->mu);
        f->result->bytes_sent += len;
        f->result->parts_sent++;
      }
      if (!etag_is_md5(*e) || *e == m.hex()) {
        etag = *e;
        break;
      }
      std::lock_guard lock(f->mu);
      f->result->parts_resent++;
      st = Status(Error::kIntegrity, "part " + std::to_string(n) + " of " + client_.object_url(it.key) + ": ETag " +
                                         *e + " is not the MD5 of what was sent (" + m.hex() + ")");
    }
    buf.reset();
    budget_.release(len);
    if (st && etag.empty()) st = Status(Error::kIntegrity, "part " + std::to_string(n) + " of " + client_.object_url(it.key) + " never stored intact");
    if (st && f->journal) st = f->journal->record_part(n, {etag, m.base64()});
    if (!st) {
      fail_file(f, st);
      return false;
    }
    bytes_done += len;
    uint64_t journaled = ++parts_journaled;
    if (options_.fault_sigkill_after_parts && journaled >= options_.fault_sigkill_after_parts) ::raise(SIGKILL);
    std::lock_guard lock(f->mu);
    f->etags[n - 1] = etag;
    return --f->outstanding == 0 && !f->failed;
  };

  auto worker = [&] {
    Task t{};
    while (next_task(&t)) {
      FileState* f = t.file;
      if (t.kind == Task::kSingle) {
        do_single(f);
        f->fd.reset();
      } else if (t.kind == Task::kPrepare) {
        std::vector<uint32_t> todo = do_prepare(f);
        bool failed;
        {
          std::lock_guard lock(f->mu);
          failed = f->failed;
        }
        {
          std::lock_guard lock(mu);
          for (uint32_t n : todo) ready.push_back(Task{Task::kPart, f, n});
          --preparing;
        }
        cv.notify_all();
        if (!failed && todo.empty()) {
          finish_multipart(f);
          f->fd.reset();
        }
      } else if (do_part(f, t.part)) {
        finish_multipart(f);
        f->fd.reset();
      }
    }
  };

  int n = std::max(1, options_.concurrency);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  return results;
}

}  // namespace ferry::s3
