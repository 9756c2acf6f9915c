#include "manifest/file_entry.h"

namespace ferry {

const char* to_string(FileType type) {
  switch (type) {
    case FileType::kRegular: return "file";
    case FileType::kDirectory: return "directory";
    case FileType::kSymlink: return "symlink";
  }
  return "unknown";
}

const char* report_type_name(FileType type) {
  switch (type) {
    case FileType::kRegular: return "file";
    case FileType::kDirectory: return "dir";
    case FileType::kSymlink: return "symlink";
  }
  return "file";
}

}  // namespace ferry
