#include "s3/s3_transfer.h"

#include <atomic>
#include <cstdlib>
#include <ctime>
#include <map>
#include <set>
#include <thread>

#include "codec/hash.h"
#include "core/log.h"
#include "io/source_file.h"
#include "manifest/manifest_file.h"
#include "manifest/path_filter.h"
#include "manifest/scanner.h"
#include "manifest/source_list.h"
#include "s3/multipart_uploader.h"
#include "s3/upload_journal.h"

namespace ferry::s3 {
namespace {

// The status of a run from its files: all good -> ok; every attempted file failed -> the
// most severe of their errors; some failed -> kPartial naming the first.
Status overall_status(const TransferReport& r, const Status& first_error, uint64_t attempted) {
  if (r.files_failed == 0) return Status::ok();
  std::string msg = first_error.message();
  if (r.files_failed == attempted) return Status(first_error.code(), msg);
  return Status(Error::kPartial, std::to_string(r.files_failed) + " of " + std::to_string(attempted) +
                                     " files failed; first: " + msg);
}

// Plans (what to upload) and runs the uploads, filling the report.
struct Planned {
  FileEntry entry;
  std::string key;
  const char* plan_action;  // "send", "update", "skip"
};

class Transfer {
 public:
  Transfer(const S3Target& t, const S3Options& s3, const SendOptions& o) : target_(t), s3_(s3), opts_(o) {}

  TransferReport run(const std::vector<std::string>& sources, const SyncOptions* sync) {
    start_ = std::chrono::steady_clock::now();
    report_.is_sync = sync != nullptr;
    if (sync) report_.sync.dry_run = sync->dry_run;
    if (Status st = go(sources, sync); !st) report_.status = st;
    report_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    return report_;
  }

 private:
  Status go(const std::vector<std::string>& sources, const SyncOptions* sync) {
    if (s3_.concurrency < 1 || s3_.concurrency > 256) return Status(Error::kUsage, "--s3-concurrency must be between 1 and 256");
    if (s3_.part_size) {
      if (auto p = choose_part_size(0, s3_.part_size); !p) return p.status();
    }
    auto filter = build_filter(opts_);
    if (!filter) return filter.status();
    auto files = select_sources(sources, opts_, *filter);
    if (!files) return files.status();
    auto client = make_client(target_, s3_);
    if (!client) return client.status();
    client_ = std::move(*client);

    // What is there already: one listing (1,000 keys a request) instead of a HEAD per file.
    std::map<std::string, ObjectInfo> existing;
    bool need_listing = sync || opts_.overwrite != Overwrite::kAlways;
    if (need_listing) {
      auto listed = client_->list_objects(target_.prefix);
      if (!listed) return listed.status();
      for (auto& o : *listed) existing.emplace(o.key, std::move(o));
    }

    std::vector<Planned> plan;
    std::set<std::string> local_keys;
    for (auto& e : *files) {
      report_.files_total++;
      if (e.type == FileType::kDirectory) continue;
      std::string key = target_.key_for(e.path);
      if (e.type == FileType::kSymlink) {
        log::warning("skipping symlink '" + e.source_path + "': S3 has no links (use --follow-symlinks to upload what it points to)");
        report_.files.push_back({e.path, "symlink", 0, "skipped", "", "symlinks are not uploaded to S3"});
        continue;
      }
      local_keys.insert(key);
      auto it = existing.find(key);
      const char* action = it == existing.end() ? "send" : "update";
      if (it != existing.end()) {
        if (opts_.overwrite == Overwrite::kNever && !sync) action = "skip";
        else if (it->second.size == e.size) {
          auto same = same_content(e, key, sync && sync->checksum);
          if (!same) return same.status();
          if (*same) action = "skip";
        }
      }
      plan.push_back({std::move(e), key, action});
    }

    SyncCounts& c = report_.sync;
    std::vector<std::string> deletions;
    if (sync && sync->delete_extraneous) {
      for (const auto& [key, info] : existing) {
        // Listing was by prefix, so every key is below it; check anyway: --delete must
        // never reach outside the prefix.
        if (key.compare(0, target_.prefix.size(), target_.prefix) != 0) continue;
        if (local_keys.count(key) || key.back() == '/') continue;
        std::string rel = key.substr(target_.prefix.size());
        if (excluded_with_parents(*filter, rel)) continue;
        deletions.push_back(key);
      }
    }
    for (const auto& p : plan) {
      if (!std::string_view(p.plan_action).compare("skip")) ++c.skip;
      else if (!std::string_view(p.plan_action).compare("update")) ++c.update, c.update_bytes += p.entry.size;
      else ++c.send, c.send_bytes += p.entry.size;
    }
    c.remove = deletions.size();

    if (sync && sync->dry_run) {
      for (const auto& p : plan) report_.files.push_back({p.entry.path, "file", p.entry.size, p.plan_action, "", ""});
      for (const auto& k : deletions) report_.files.push_back({k.substr(target_.prefix.size()), "file", existing[k].size, "delete", "", ""});
      return Status::ok();
    }
    return upload_and_delete(plan, deletions);
  }

  bool excluded_with_parents(const PathFilter& f, const std::string& rel) {
    if (f.empty()) return false;
    for (size_t pos = rel.find('/'); pos != std::string::npos; pos = rel.find('/', pos + 1))
      if (f.excluded(rel.substr(0, pos), true)) return true;
    return f.excluded(rel, false);
  }

  // Same size already established. Equal ferry-mtime is enough unless checksum; else the
  // stored XXH3-128 must equal the local file's.
  Result<bool> same_content(const FileEntry& e, const std::string& key, bool checksum) {
    auto head = client_->head_object(key);
    if (!head) return head.status();
    if (!head->found || head->size != e.size) return false;
    if (!checksum && head->meta("ferry-mtime") == std::to_string(e.mtime_ns)) return true;
    std::string stored = head->meta("ferry-xxh3");
    if (stored.empty()) return false;
    auto h = hash_source_file(e.source_path, e.size);
    if (!h) return h.status();
    return h->hex() == stored;
  }

  Status upload_and_delete(const std::vector<Planned>& plan, const std::vector<std::string>& deletions) {
    std::vector<UploadItem> items;
    std::vector<size_t> report_index;
    for (const auto& p : plan) {
      if (!std::string_view(p.plan_action).compare("skip")) {
        report_.files_skipped++;
        report_.files.push_back({p.entry.path, "file", p.entry.size, "skipped", "", ""});
        continue;
      }
      report_index.push_back(report_.files.size());
      report_.files.push_back({p.entry.path, "file", p.entry.size, "pending", "", ""});
      items.push_back({p.entry.source_path, p.key, p.entry.size, p.entry.mtime_ns});
    }
    UploaderOptions uo;
    uo.part_size = s3_.part_size;
    uo.single_put_cutoff = s3_.single_put_cutoff;
    uo.concurrency = s3_.concurrency;
    uo.checksum = s3_.checksum;
    uo.memory = opts_.memory;
    uo.state_dir = opts_.resume == "off" ? "" : (s3_.state_dir.empty() ? UploadJournal::default_state_dir() : s3_.state_dir);
    uo.fault_sigkill_after_parts = opts_.fault_sigkill_after_chunks;
    MultipartUploader up(*client_, uo);

    uint64_t total_bytes = 0;
    for (const auto& it : items) total_bytes += it.size;
    std::atomic<bool> running{true};
    std::thread progress;
    if (opts_.on_progress) {
      progress = std::thread([&] {
        while (running) {
          for (int i = 0; i < 5 && running; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
          Progress p;
          p.bytes_done = up.bytes_done;
          p.bytes_total = total_bytes;
          p.files_done = up.files_done;
          p.files_total = items.size();
          p.wire_bytes = up.bytes_done;
          p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
          opts_.on_progress(p);
        }
      });
    }
    std::vector<UploadResult> results = up.run(items);
    running = false;
    if (progress.joinable()) progress.join();

    Status first_error;
    uint64_t attempted = items.size();
    for (size_t i = 0; i < results.size(); ++i) {
      const UploadResult& r = results[i];
      FileReport& fr = report_.files[report_index[i]];
      report_.chunks_sent += r.parts_sent;
      report_.chunks_resumed += r.parts_resumed;
      report_.bytes_resumed += r.bytes_resumed;
      report_.chunks_resent += r.parts_resent;
      report_.bytes_on_wire += r.bytes_sent;
      if (r.done && r.status.is_ok()) {
        fr.action = "sent";
        fr.xxh3_128 = r.xxh3;
        report_.files_sent++;
        report_.bytes_on_disk += fr.size;
      } else {
        fr.action = "failed";
        fr.error = r.status.message();
        report_.files_failed++;
        if (first_error.is_ok()) first_error = r.status;
      }
    }
    for (const auto& k : deletions) {
      ++attempted;
      FileReport fr{k.substr(target_.prefix.size()), "file", 0, "deleted", "", ""};
      if (Status st = client_->delete_object(k); !st) {
        fr.action = "failed";
        fr.error = st.message();
        report_.files_failed++;
        if (first_error.is_ok()) first_error = st;
      } else {
        report_.sync.deleted++;
      }
      report_.files.push_back(std::move(fr));
    }
    return overall_status(report_, first_error, attempted);
  }

  S3Target target_;
  S3Options s3_;
  SendOptions opts_;
  std::unique_ptr<S3Client> client_;
  TransferReport report_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

Result<std::unique_ptr<S3Client>> make_client(const S3Target& target, const S3Options& s3) {
  CredentialOptions co;
  co.profile = s3.profile;
  auto creds = resolve_credentials(co);
  if (!creds) return creds.status();
  S3ClientOptions o;
  o.endpoint = s3.endpoint;
  o.path_style = s3.path_style;
  o.region = resolve_region(s3.region, co);
  o.retry = s3.retry;
  o.http.ca_file = s3.ca_file;
  if (o.http.ca_file.empty())
    if (const char* b = std::getenv("AWS_CA_BUNDLE")) o.http.ca_file = b;
  o.http.max_idle = static_cast<size_t>(s3.concurrency) + 4;
  // Temporary credentials are refreshed by the provider; static ones are used as resolved.
  auto provider = creds->expires_unix ? std::make_shared<CredentialProvider>(co)
                                      : std::make_shared<CredentialProvider>(*creds);
  return S3Client::create(o, provider, target.bucket);
}

TransferReport send_files(const std::vector<std::string>& sources, const S3Target& target, const S3Options& s3,
                          const SendOptions& options) {
  return Transfer(target, s3, options).run(sources, nullptr);
}

TransferReport sync_tree(const std::string& source_dir, const S3Target& target, const S3Options& s3,
                         const SendOptions& options, const SyncOptions& sync) {
  auto src = sync_source(source_dir, options);
  if (!src) {
    TransferReport r;
    r.status = src.status();
    return r;
  }
  return Transfer(target, s3, options).run({*src}, &sync);
}

Result<UploadListing> list_uploads(const S3Target& target, const S3Options& s3,
                                   std::optional<std::chrono::seconds> abort_older_than) {
  auto client = make_client(target, s3);
  if (!client) return client.status();
  UploadListing out;
  bool unsupported = false;
  auto listed = (*client)->list_uploads(target.prefix, &unsupported);
  if (!listed) return listed.status();
  out.server_can_list = !unsupported;
  std::set<std::string> seen;
  for (const auto& u : *listed) {
    out.uploads.push_back({u.key, u.upload_id, u.initiated_unix, "server", false, ""});
    seen.insert(u.upload_id);
  }
  std::string dir = s3.state_dir.empty() ? UploadJournal::default_state_dir() : s3.state_dir;
  std::map<std::string, std::string> journal_of;  // upload id -> journal path
  for (const auto& [path, st] : UploadJournal::list(dir)) {
    if (st.endpoint != (*client)->endpoint().to_string() || st.bucket != target.bucket) continue;
    if (st.key.compare(0, target.prefix.size(), target.prefix) != 0) continue;
    journal_of[st.upload_id] = path;
    if (!seen.count(st.upload_id)) out.uploads.push_back({st.key, st.upload_id, st.created_unix, "journal", false, ""});
  }
  if (abort_older_than) {
    int64_t cutoff = static_cast<int64_t>(std::time(nullptr)) - abort_older_than->count();
    for (auto& u : out.uploads) {
      if (u.initiated_unix > cutoff) continue;
      if (Status st = (*client)->abort_multipart(u.key, u.upload_id); !st) {
        u.error = st.message();
        continue;
      }
      u.aborted = true;
      if (auto it = journal_of.find(u.upload_id); it != journal_of.end()) std::remove(it->second.c_str());
    }
  }
  return out;
}

Result<std::string> get_object(const S3Target& target, const std::string& key, const S3Options& s3, size_t max_size) {
  auto client = make_client(target, s3);
  if (!client) return client.status();
  return (*client)->get_object(key, max_size);
}

}  // namespace ferry::s3
