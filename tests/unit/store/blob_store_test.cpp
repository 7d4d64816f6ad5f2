#include "store/blob_store.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "base/crypto.h"
#include "base/files.h"

namespace nimbus::store {
namespace {

namespace fs = std::filesystem;
using base::ErrorCode;

constexpr std::string_view kNotAZip =
    "Could not unzip uploaded file. Please check your file, then try to upload again.";

// Builds a zip in memory with libarchive's writer; entries keep the exact
// names given, hostile ones included.
class ZipBuilder {
 public:
  ZipBuilder& file(std::string name, std::string data, unsigned perm = 0644) {
    entries_.push_back({std::move(name), AE_IFREG, perm, std::move(data), ""});
    return *this;
  }
  ZipBuilder& dir(std::string name) {
    entries_.push_back({std::move(name), AE_IFDIR, 0755, "", ""});
    return *this;
  }
  ZipBuilder& symlink(std::string name, std::string target) {
    entries_.push_back({std::move(name), AE_IFLNK, 0777, "", std::move(target)});
    return *this;
  }

  std::string build() const {
    std::string out;
    archive* a = archive_write_new();
    EXPECT_EQ(archive_write_set_format_zip(a), ARCHIVE_OK);
    EXPECT_EQ(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
    EXPECT_EQ(archive_write_open(a, &out, nullptr, &ZipBuilder::append, nullptr), ARCHIVE_OK);
    for (const Entry& e : entries_) {
      archive_entry* entry = archive_entry_new();
      archive_entry_set_pathname(entry, e.name.c_str());
      archive_entry_set_filetype(entry, e.type);
      archive_entry_set_perm(entry, e.perm);
      archive_entry_set_size(entry, static_cast<la_int64_t>(e.data.size()));
      if (e.type == AE_IFLNK) archive_entry_set_symlink(entry, e.target.c_str());
      EXPECT_EQ(archive_write_header(a, entry), ARCHIVE_OK) << e.name << ": " << archive_error_string(a);
      if (!e.data.empty()) {
        EXPECT_EQ(archive_write_data(a, e.data.data(), e.data.size()),
                  static_cast<la_ssize_t>(e.data.size()));
      }
      archive_entry_free(entry);
    }
    EXPECT_EQ(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return out;
  }

 private:
  struct Entry {
    std::string name;
    unsigned type;
    unsigned perm;
    std::string data;
    std::string target;
  };

  static la_ssize_t append(archive*, void* client, const void* data, size_t size) {
    static_cast<std::string*>(client)->append(static_cast<const char*>(data), size);
    return static_cast<la_ssize_t>(size);
  }

  std::vector<Entry> entries_;
};

// libarchive's writer refuses fifos and devices, so this writes a zip by hand:
// stored entries made on Unix, each with the file type in its external
// attributes.
struct RawEntry {
  std::string name;
  unsigned mode;  // st_mode: type and permissions
  std::string data;
};

std::uint32_t crc32(std::string_view data) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

constexpr unsigned kMadeByUnix = 0x031E;  // Unix, spec 3.0
constexpr unsigned kMadeByDos = 0x0014;   // MS-DOS, spec 2.0

std::string raw_zip(const std::vector<RawEntry>& entries, unsigned made_by = kMadeByUnix) {
  auto le16 = [](std::string& out, unsigned v) {
    out.push_back(static_cast<char>(v & 0xFF));
    out.push_back(static_cast<char>((v >> 8) & 0xFF));
  };
  auto le32 = [&](std::string& out, std::uint32_t v) {
    le16(out, v & 0xFFFF);
    le16(out, v >> 16);
  };
  std::string out;
  std::string central;
  for (const RawEntry& e : entries) {
    const auto offset = static_cast<std::uint32_t>(out.size());
    const std::uint32_t crc = crc32(e.data);
    const auto size = static_cast<std::uint32_t>(e.data.size());
    le32(out, 0x04034b50);  // local file header
    le16(out, 10);          // version needed
    le16(out, 0);           // flags
    le16(out, 0);           // stored
    le16(out, 0);           // time
    le16(out, 0x21);        // date (1980-01-01)
    le32(out, crc);
    le32(out, size);
    le32(out, size);
    le16(out, static_cast<unsigned>(e.name.size()));
    le16(out, 0);  // extra length
    out += e.name;
    out += e.data;

    le32(central, 0x02014b50);  // central directory header
    le16(central, made_by);
    le16(central, 10);
    le16(central, 0);
    le16(central, 0);
    le16(central, 0);
    le16(central, 0x21);
    le32(central, crc);
    le32(central, size);
    le32(central, size);
    le16(central, static_cast<unsigned>(e.name.size()));
    le16(central, 0);  // extra
    le16(central, 0);  // comment
    le16(central, 0);  // disk
    le16(central, 0);  // internal attributes
    le32(central, static_cast<std::uint32_t>(e.mode) << 16);
    le32(central, offset);
    central += e.name;
  }
  const auto central_offset = static_cast<std::uint32_t>(out.size());
  out += central;
  le32(out, 0x06054b50);  // end of central directory
  le16(out, 0);
  le16(out, 0);
  le16(out, static_cast<unsigned>(entries.size()));
  le16(out, static_cast<unsigned>(entries.size()));
  le32(out, static_cast<std::uint32_t>(central.size()));
  le32(out, central_offset);
  le16(out, 0);
  return out;
}

void expect_invalid(const base::Result<ZipInfo>& r, std::string_view message) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidParameterValue);
  EXPECT_EQ(r.error().message, message);
}

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// A fresh directory under the system temp dir, deleted (read-only parts
// included) at the end of each test.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "blob_store_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir_, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->symlink_status().type() == fs::file_type::directory) {
        ::chmod(it->path().c_str(), 0755);
      }
    }
    fs::remove_all(dir_, ec);
  }

  fs::path dir_;
};

class BlobStoreTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    store_ = std::make_unique<BlobStore>(dir_ / "store");
    ASSERT_TRUE(store_->open().ok());
  }

  // Entries of a directory that are not a published blob or tree.
  std::vector<std::string> leftovers(const fs::path& dir) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (!name.empty() && name.front() == '.') out.push_back(name);
    }
    return out;
  }

  std::unique_ptr<BlobStore> store_;
};

// --- inspect_zip -----------------------------------------------------------

TEST(InspectZip, ReportsSizesAndFiles) {
  const std::string zip = ZipBuilder()
                              .file("index.py", "def handler(e, c):\n    return 1\n")
                              .dir("lib/")
                              .file("lib/util.py", std::string(3000, 'x'))
                              .file("bootstrap", "#!/bin/sh\n", 0755)
                              .build();
  auto info = inspect_zip(zip);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->zipped_size, zip.size());
  EXPECT_EQ(info->unzipped_size, 32u + 3000u + 10u);
  EXPECT_EQ(info->files, (std::vector<std::string>{"index.py", "lib/util.py", "bootstrap"}));
}

TEST(InspectZip, NormalisesPaths) {
  const std::string zip = ZipBuilder().dir("./").file("./a//b/./c.txt", "c").build();
  auto info = inspect_zip(zip);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->files, std::vector<std::string>{"a/b/c.txt"});
}

TEST(InspectZip, RejectsZipWithoutEntries) {
  // libarchive does not recognise a bare end-of-central-directory record.
  const std::string zip = ZipBuilder().build();
  ASSERT_EQ(zip.size(), 22u);
  expect_invalid(inspect_zip(zip), kNotAZip);
}

TEST(InspectZip, RejectsCorruptBytes) {
  expect_invalid(inspect_zip("this is not a zip file at all, just some text"), kNotAZip);
}

TEST(InspectZip, RejectsEmptyInput) {
  expect_invalid(inspect_zip(""), kNotAZip);
}

TEST(InspectZip, RejectsTruncatedZip) {
  const std::string zip = ZipBuilder().file("a.txt", std::string(5000, 'a')).build();
  expect_invalid(inspect_zip(std::string_view(zip).substr(0, zip.size() / 2)), kNotAZip);
}

TEST(InspectZip, RejectsDamagedData) {
  std::string text;
  for (int i = 0; i < 3000; ++i) text += std::to_string(i * 7919 % 10007) + ",";
  std::string zip = ZipBuilder().file("a.txt", text).build();
  const std::size_t middle = zip.size() / 2;  // inside the deflated data
  zip[middle] = static_cast<char>(zip[middle] ^ 0x55);
  expect_invalid(inspect_zip(zip), kNotAZip);
}

TEST(InspectZip, RejectsZipSlipEntry) {
  const std::string zip = ZipBuilder().file("ok.txt", "ok").file("../evil", "x").build();
  expect_invalid(inspect_zip(zip), "Code package entry '../evil' escapes the package root");
}

TEST(InspectZip, RejectsDotDotInsideThePath) {
  const std::string zip = ZipBuilder().file("lib/../../evil", "x").build();
  expect_invalid(inspect_zip(zip), "Code package entry 'lib/../../evil' escapes the package root");
}

TEST(InspectZip, RejectsBackslashZipSlipFromWindows) {
  // libarchive turns backslashes into slashes in names without a slash (as
  // Windows archivers write them) before the checks see the name.
  expect_invalid(inspect_zip(raw_zip({{"..\\evil", S_IFREG | 0644, "x"}}, kMadeByDos)),
                 "Code package entry '../evil' escapes the package root");
}

TEST(InspectZip, RejectsAbsoluteEntry) {
  const std::string zip = ZipBuilder().file("/etc/x", "x").build();
  expect_invalid(inspect_zip(zip), "Code package entry '/etc/x' escapes the package root");
}

TEST(InspectZip, RejectsAbsoluteSymlink) {
  const std::string zip = ZipBuilder().symlink("passwd", "/etc/passwd").build();
  expect_invalid(inspect_zip(zip),
                 "Code package entry 'passwd' is a symlink that points outside the package");
}

TEST(InspectZip, RejectsSymlinkAboveTheRoot) {
  const std::string zip = ZipBuilder().symlink("sub/link", "../../x").build();
  expect_invalid(inspect_zip(zip),
                 "Code package entry 'sub/link' is a symlink that points outside the package");
}

TEST(InspectZip, RejectsSymlinkEscapingThroughAnotherSymlink) {
  // Lexically "sub/b/../.." is the root, but sub/b is itself the root, so
  // the kernel would land in the package's parent.
  const std::string zip = ZipBuilder().symlink("sub/b", "..").symlink("sub/c", "b/../..").build();
  expect_invalid(inspect_zip(zip), "Code package entry 'sub/c' is a symlink that points outside the package");
}

TEST(InspectZip, RejectsSymlinkLoop) {
  const std::string zip = ZipBuilder().symlink("a", "b").symlink("b", "a").build();
  expect_invalid(inspect_zip(zip), "Code package entry 'a' is a symlink loop");
}

TEST(InspectZip, AcceptsSymlinksInsideThePackage) {
  const std::string zip = ZipBuilder()
                              .file("data/v1.txt", "v1")
                              .symlink("lib/current", "../data/v1.txt")
                              .symlink("lib/self", ".")
                              .symlink("dangling", "nowhere/file")
                              .build();
  auto info = inspect_zip(zip);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->files, std::vector<std::string>{"data/v1.txt"});
  EXPECT_EQ(info->unzipped_size, 2u);
}

TEST(InspectZip, RejectsOverlongSymlinkTarget) {
  const std::string zip = ZipBuilder().symlink("long", std::string(5000, 'a')).build();
  expect_invalid(inspect_zip(zip),
                 "Code package entry 'long' is a symlink with a target longer than 4095 bytes");
}

TEST(InspectZip, RejectsEntryBelowASymlink) {
  const std::string zip = ZipBuilder().symlink("link", "sub").file("link/x", "x").build();
  expect_invalid(inspect_zip(zip), "Code package entry 'link/x' is nested under a file or symlink entry");
}

TEST(InspectZip, RejectsDuplicateEntries) {
  const std::string zip = ZipBuilder().file("a.txt", "1").file("a.txt", "2").build();
  expect_invalid(inspect_zip(zip), "Code package entry 'a.txt' appears more than once in the package");
}

TEST(InspectZip, ReadsHandWrittenZip) {
  // Guards the hand-written zips below: a plain one must pass.
  auto info = inspect_zip(raw_zip({{"a.txt", S_IFREG | 0644, "hello"}, {"run", S_IFREG | 0755, "x"}}));
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->files, (std::vector<std::string>{"a.txt", "run"}));
  EXPECT_EQ(info->unzipped_size, 6u);
}

TEST(InspectZip, ReadsFifoEntryAsRegularFile) {
  // `zip -FI` stores a pipe's mode with the bytes read from it; libarchive
  // reads such an entry as a regular file, so no fifo ever reaches the disk.
  const std::string zip = raw_zip({{"pipe", S_IFIFO | 0644, "from the pipe"}});
  auto info = inspect_zip(zip);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->files, std::vector<std::string>{"pipe"});
  EXPECT_EQ(info->unzipped_size, 13u);
}

TEST(InspectZip, RejectsDeviceFiles) {
  expect_invalid(inspect_zip(raw_zip({{"dev/null", S_IFCHR | 0666, ""}})),
                 "Code package entry 'dev/null' is a device file");
  expect_invalid(inspect_zip(raw_zip({{"dev/sda", S_IFBLK | 0660, ""}})),
                 "Code package entry 'dev/sda' is a device file");
}

TEST(InspectZip, RejectsSocket) {
  expect_invalid(inspect_zip(raw_zip({{"sock", S_IFSOCK | 0644, ""}})),
                 "Code package entry 'sock' is a socket");
}

TEST(InspectZip, StopsAtMaxUnzippedSize) {
  const std::string zip = ZipBuilder().file("bomb", std::string(5000, '\0')).build();
  ASSERT_LT(zip.size(), 1000u);  // compresses well: only the decompressed count is over
  expect_invalid(inspect_zip(zip, 1000), "Unzipped size must be smaller than 1000 bytes");
}

TEST(InspectZip, CountsAcrossFiles) {
  const std::string zip =
      ZipBuilder().file("a", std::string(600, 'a')).file("b", std::string(600, 'b')).build();
  expect_invalid(inspect_zip(zip, 1000), "Unzipped size must be smaller than 1000 bytes");
}

TEST(InspectZip, AllowsExactlyMaxUnzipped) {
  const std::string zip = ZipBuilder().file("a", std::string(1000, 'a')).build();
  auto info = inspect_zip(zip, 1000);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->unzipped_size, 1000u);
}

TEST(InspectZip, LimitIsNamedInTheMessage) {
  // With the default limit the message is Lambda's, 262144000 bytes.
  const std::string zip = ZipBuilder().file("a", "a").build();
  expect_invalid(inspect_zip(zip, 0), "Unzipped size must be smaller than 0 bytes");
  EXPECT_EQ(kMaxUnzippedSize, 262144000u);
}

TEST(InspectZip, DoesNotTrustSizesInHeaders) {
  std::string zip = ZipBuilder().file("bomb", std::string(50000, 'z')).build();
  // Make every header claim 10 bytes uncompressed (central directory at
  // offset 24, local header at offset 22, data descriptor at offset 12).
  auto patch = [&](std::string_view signature, std::size_t offset) {
    for (std::size_t at = zip.find(signature); at != std::string::npos; at = zip.find(signature, at + 1)) {
      if (at + offset + 4 > zip.size()) continue;
      const std::uint32_t old =
          static_cast<std::uint8_t>(zip[at + offset]) | static_cast<std::uint8_t>(zip[at + offset + 1]) << 8 |
          static_cast<std::uint8_t>(zip[at + offset + 2]) << 16 |
          static_cast<std::uint32_t>(static_cast<std::uint8_t>(zip[at + offset + 3])) << 24;
      if (old != 50000) continue;
      zip[at + offset] = 10;
      zip[at + offset + 1] = zip[at + offset + 2] = zip[at + offset + 3] = 0;
    }
  };
  patch(std::string_view("PK\1\2", 4), 24);
  patch(std::string_view("PK\3\4", 4), 22);
  patch(std::string_view("PK\7\10", 4), 12);
  auto r = inspect_zip(zip, 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidParameterValue);
  EXPECT_TRUE(r.error().message == "Unzipped size must be smaller than 1000 bytes" ||
              r.error().message == kNotAZip)
      << r.error().message;
}

// --- BlobStore --------------------------------------------------------------

TEST_F(TempDirTest, OpenCreatesDirectories) {
  BlobStore store(dir_ / "a" / "b");
  ASSERT_TRUE(store.open().ok());
  EXPECT_TRUE(fs::is_directory(dir_ / "a" / "b" / "blobs"));
  EXPECT_TRUE(fs::is_directory(dir_ / "a" / "b" / "code"));
  EXPECT_TRUE(store.open().ok());  // again: nothing to do
}

TEST_F(TempDirTest, OpenNamesThePathThatFails) {
  ASSERT_TRUE(base::write_file_atomic(dir_ / "file", "x").ok());
  BlobStore store(dir_ / "file" / "store");
  const base::Status s = store.open();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kService);
  EXPECT_NE(s.error().message.find((dir_ / "file").string()), std::string::npos) << s.error().message;
}

TEST_F(BlobStoreTest, PutStoresBytesUnderTheirDigest) {
  const std::string zip = ZipBuilder().file("index.js", "exports.handler = 1;").build();
  auto digest = store_->put(zip);
  ASSERT_TRUE(digest.ok()) << digest.error().message;
  EXPECT_EQ(*digest, base::sha256(zip));
  EXPECT_TRUE(store_->contains(*digest));
  EXPECT_EQ(store_->zip_path(*digest), dir_ / "store" / "blobs" / (base::to_hex(base::sha256(zip)) + ".zip"));
  EXPECT_EQ(mode_of(store_->zip_path(*digest)), 0444u);
  auto bytes = store_->read(*digest);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_EQ(*bytes, zip);
  EXPECT_TRUE(leftovers(dir_ / "store" / "blobs").empty());
}

TEST_F(BlobStoreTest, PutIsIdempotent) {
  const std::string zip = ZipBuilder().file("a", "a").build();
  auto first = store_->put(zip);
  ASSERT_TRUE(first.ok()) << first.error().message;
  struct stat before {};
  ASSERT_EQ(::stat(store_->zip_path(*first).c_str(), &before), 0);
  auto second = store_->put(zip);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(*first, *second);
  struct stat after {};
  ASSERT_EQ(::stat(store_->zip_path(*first).c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);  // not rewritten
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ / "store" / "blobs"), fs::directory_iterator()), 1);
}

TEST_F(BlobStoreTest, UnknownDigestIsNotFound) {
  const base::Sha256Digest digest = base::sha256("nothing stored");
  EXPECT_FALSE(store_->contains(digest));
  auto bytes = store_->read(digest);
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.error().code, ErrorCode::kResourceNotFound);
  auto dir = store_->unpacked(digest);
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().code, ErrorCode::kResourceNotFound);
}

TEST_F(BlobStoreTest, UnpackedPreservesContentAndExecBit) {
  const std::string big(200000, 'q');
  const std::string zip = ZipBuilder()
                              .file("bootstrap", "#!/bin/sh\necho hi\n", 0755)
                              .file("lib/data.bin", big, 0600)
                              .dir("empty/")
                              .build();
  auto digest = store_->put(zip);
  ASSERT_TRUE(digest.ok()) << digest.error().message;
  auto dir = store_->unpacked(*digest);
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  EXPECT_EQ(*dir, dir_ / "store" / "code" / base::to_hex(*digest));

  auto bootstrap = base::read_file(*dir / "bootstrap");
  ASSERT_TRUE(bootstrap.ok());
  EXPECT_EQ(*bootstrap, "#!/bin/sh\necho hi\n");
  auto data = base::read_file(*dir / "lib" / "data.bin");
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(*data, big);
  EXPECT_EQ(mode_of(*dir / "bootstrap"), 0555u);
  EXPECT_EQ(mode_of(*dir / "lib" / "data.bin"), 0444u);
  EXPECT_TRUE(fs::is_directory(*dir / "empty"));
}

TEST_F(BlobStoreTest, UnpackedTreeIsReadOnly) {
  const std::string zip =
      ZipBuilder().file("a/b/c.txt", "c").file("a/d.txt", "d", 0666).file("e.sh", "e", 0775).build();
  auto digest = store_->put(zip);
  ASSERT_TRUE(digest.ok());
  auto dir = store_->unpacked(*digest);
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  std::size_t seen = 0;
  for (const auto& e : fs::recursive_directory_iterator(*dir)) {
    EXPECT_EQ(mode_of(e.path()) & 0222, 0u) << e.path();
    ++seen;
  }
  EXPECT_EQ(seen, 5u);  // a, a/b, a/b/c.txt, a/d.txt, e.sh
  EXPECT_EQ(mode_of(*dir), 0555u);
  EXPECT_EQ(mode_of(*dir / "a"), 0555u);
  if (::geteuid() != 0) {  // root ignores modes
    EXPECT_EQ(::access((*dir / "a" / "d.txt").c_str(), W_OK), -1);
  }
}

TEST_F(BlobStoreTest, UnpackedKeepsSymlinksInsideThePackage) {
  const std::string zip =
      ZipBuilder().file("data/v1.txt", "v1").symlink("lib/current", "../data/v1.txt").build();
  auto digest = store_->put(zip);
  ASSERT_TRUE(digest.ok());
  auto dir = store_->unpacked(*digest);
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  EXPECT_TRUE(fs::is_symlink(*dir / "lib" / "current"));
  EXPECT_EQ(fs::read_symlink(*dir / "lib" / "current"), "../data/v1.txt");
  auto content = base::read_file(*dir / "lib" / "current");
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, "v1");
}

TEST_F(BlobStoreTest, UnpackedNeverWritesThroughASymlink) {
  // The symlink comes first, so a naive extractor would create outside/pwned.
  const fs::path outside = dir_ / "outside";
  fs::create_directory(outside);
  const std::string zip =
      ZipBuilder().symlink("escape", outside.string()).file("escape/pwned", "gotcha").build();
  auto digest = store_->put(zip);
  ASSERT_TRUE(digest.ok());
  auto dir = store_->unpacked(*digest);
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().code, ErrorCode::kInvalidParameterValue);
  EXPECT_FALSE(fs::exists(outside / "pwned"));
  EXPECT_FALSE(fs::exists(dir_ / "store" / "code" / base::to_hex(*digest)));
  EXPECT_TRUE(leftovers(dir_ / "store" / "code").empty());
}

TEST_F(BlobStoreTest, UnpackedRejectsEscapingSymlinkAndLeavesNothing) {
  const std::string zip = ZipBuilder().file("a.txt", "a").symlink("sub/up", "../../x").build();
  auto digest = store_->put(zip);
  ASSERT_TRUE(digest.ok());
  auto dir = store_->unpacked(*digest);
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().message, "Code package entry 'sub/up' is a symlink that points outside the package");
  EXPECT_TRUE(fs::is_empty(dir_ / "store" / "code"));
}

TEST_F(BlobStoreTest, UnpackedRejectsTamperedBlob) {
  const std::string zip = ZipBuilder().file("a.txt", "a").build();
  auto digest = store_->put(zip);
  ASSERT_TRUE(digest.ok());
  const fs::path path = store_->zip_path(*digest);
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  ASSERT_TRUE(base::write_file_atomic(path, ZipBuilder().file("a.txt", "b").build()).ok());
  auto dir = store_->unpacked(*digest);
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().code, ErrorCode::kService);
}

TEST_F(BlobStoreTest, UnpacksOnce) {
  const std::string zip = ZipBuilder().file("a.txt", "a").build();
  auto digest = store_->put(zip);
  ASSERT_TRUE(digest.ok());
  auto first = store_->unpacked(*digest);
  ASSERT_TRUE(first.ok()) << first.error().message;
  struct stat before {};
  ASSERT_EQ(::stat((*first / "a.txt").c_str(), &before), 0);
  auto second = store_->unpacked(*digest);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
  struct stat after {};
  ASSERT_EQ(::stat((*second / "a.txt").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
}

TEST_F(BlobStoreTest, ConcurrentPutAndUnpackedAgree) {
  std::string payload;
  for (int i = 0; i < 20000; ++i) payload += std::to_string(i) + "\n";
  ZipBuilder builder;
  for (int i = 0; i < 20; ++i) builder.file("pkg/f" + std::to_string(i) + ".txt", payload);
  const std::string zip = builder.build();

  constexpr int kThreads = 4;
  std::vector<base::Sha256Digest> digests(kThreads);
  std::vector<fs::path> dirs(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto digest = store_->put(zip);
      if (!digest.ok()) {
        errors[t] = digest.error().message;
        return;
      }
      digests[t] = *digest;
      auto dir = store_->unpacked(*digest);
      if (!dir.ok()) {
        errors[t] = dir.error().message;
        return;
      }
      dirs[t] = *dir;
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], "") << "thread " << t;
    EXPECT_EQ(digests[t], base::sha256(zip));
    EXPECT_EQ(dirs[t], dirs[0]);
  }
  auto stored = store_->read(base::sha256(zip));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(*stored, zip);
  for (int i = 0; i < 20; ++i) {
    auto content = base::read_file(dirs[0] / "pkg" / ("f" + std::to_string(i) + ".txt"));
    ASSERT_TRUE(content.ok());
    EXPECT_EQ(*content, payload);
  }
  EXPECT_TRUE(leftovers(dir_ / "store" / "blobs").empty());
  EXPECT_TRUE(leftovers(dir_ / "store" / "code").empty());
}

TEST_F(BlobStoreTest, RemoveDeletesZipAndTree) {
  const std::string zip =
      ZipBuilder().file("a/b.txt", "b").symlink("a/link", "b.txt").symlink("self", ".").build();
  auto digest = store_->put(zip);
  ASSERT_TRUE(digest.ok());
  auto dir = store_->unpacked(*digest);
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  const base::Status removed = store_->remove(*digest);
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_FALSE(store_->contains(*digest));
  EXPECT_FALSE(fs::exists(store_->zip_path(*digest)));
  EXPECT_FALSE(fs::exists(fs::symlink_status(*dir)));
  EXPECT_TRUE(fs::is_empty(dir_ / "store" / "code"));
  EXPECT_TRUE(fs::is_empty(dir_ / "store" / "blobs"));
  EXPECT_TRUE(store_->remove(*digest).ok());  // absent: nothing to do

  // The digest can be stored and unpacked again.
  ASSERT_TRUE(store_->put(zip).ok());
  auto again = store_->unpacked(*digest);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again, *dir);
}

TEST_F(BlobStoreTest, RemoveOfZipNeverUnpacked) {
  auto digest = store_->put(ZipBuilder().file("a", "a").build());
  ASSERT_TRUE(digest.ok());
  ASSERT_TRUE(store_->remove(*digest).ok());
  EXPECT_FALSE(store_->contains(*digest));
}

// A leased package outlives its removal until the last lease ends; what a
// running sandbox mounts never disappears under it.
TEST_F(BlobStoreTest, RemoveOfALeasedPackageWaitsForItsLastLease) {
  auto digest = store_->put(ZipBuilder().file("app.py", "code").build());
  ASSERT_TRUE(digest.ok());
  auto first = store_->lease(*digest);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = store_->lease(*digest);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->path(), second->path());
  const fs::path file = first->path() / "app.py";

  ASSERT_TRUE(store_->remove(*digest).ok());
  EXPECT_EQ(store_->pending_removals(), 1u);
  EXPECT_TRUE(fs::exists(file));
  EXPECT_TRUE(store_->contains(*digest));

  CodeLease moved = std::move(*first);  // a move hands the lease on, it does not end it
  *first = CodeLease();
  EXPECT_TRUE(fs::exists(file));
  *second = CodeLease();
  EXPECT_TRUE(fs::exists(file));
  moved = CodeLease();  // the last one
  EXPECT_FALSE(fs::exists(file));
  EXPECT_FALSE(store_->contains(*digest));
  EXPECT_EQ(store_->pending_removals(), 0u);
  EXPECT_TRUE(fs::is_empty(dir_ / "store" / "code"));
}

// Stored again before the last lease ended: the package is wanted after all.
TEST_F(BlobStoreTest, PutCancelsARemovalWaitingForLeases) {
  const std::string zip = ZipBuilder().file("app.py", "code").build();
  auto digest = store_->put(zip);
  ASSERT_TRUE(digest.ok());
  auto lease = store_->lease(*digest);
  ASSERT_TRUE(lease.ok());
  const fs::path file = lease->path() / "app.py";
  ASSERT_TRUE(store_->remove(*digest).ok());
  ASSERT_TRUE(store_->put(zip).ok());
  EXPECT_EQ(store_->pending_removals(), 0u);
  *lease = CodeLease();
  EXPECT_TRUE(fs::exists(file));
  EXPECT_TRUE(store_->contains(*digest));
  // Without leases a removal is immediate.
  ASSERT_TRUE(store_->remove(*digest).ok());
  EXPECT_FALSE(fs::exists(file));
}

TEST_F(BlobStoreTest, LeaseOfAnUnknownPackageIsNotFound) {
  const auto lease = store_->lease(base::sha256("no such zip"));
  ASSERT_FALSE(lease.ok());
  EXPECT_EQ(lease.error().code, ErrorCode::kResourceNotFound);
}

}  // namespace
}  // namespace nimbus::store
