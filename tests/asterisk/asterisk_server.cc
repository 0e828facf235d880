#include "tests/asterisk/asterisk_server.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace audiosocket::testing {
namespace {

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Files Asterisk reads at start; empty ones keep its log free of "cannot
// open" noise for features the tests do not use.
constexpr const char* kEmptyConfigs[] = {
    "cdr.conf",        "cel.conf",    "features.conf",    "acl.conf",       "udptl.conf",
    "ccss.conf",       "stasis.conf", "musiconhold.conf", "pjproject.conf", "websocket_client.conf",
    "extensions.conf",
};

}  // namespace

int FreeTcpPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string AsteriskServer::InstallPrefix() {
  const char* prefix = std::getenv("ASTERISK_PREFIX");
  return prefix == nullptr ? std::string() : std::string(prefix);
}

absl::StatusOr<std::unique_ptr<AsteriskServer>> AsteriskServer::Start(const std::string& prefix) {
  if (access((prefix + "/sbin/asterisk").c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("no Asterisk at ", prefix, "/sbin/asterisk"));
  }
  std::unique_ptr<AsteriskServer> server(new AsteriskServer());
  server->prefix_ = prefix;
  // Under /tmp, not the test's own directory: Asterisk's control socket
  // lives in astrundir, and a Unix socket path is limited to 107 bytes.
  char dir_template[] = "/tmp/asterisk-test-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return absl::InternalError("mkdtemp failed");
  server->dir_ = dir_template;
  const std::string& dir = server->dir_;
  for (const char* sub : {"/etc", "/run", "/log", "/spool", "/lib", "/rec"}) {
    mkdir((dir + sub).c_str(), 0755);
  }
  server->ami_port_ = FreeTcpPort();
  server->http_port_ = FreeTcpPort();
  const std::string etc = dir + "/etc";
  const std::string data = prefix + "/var/lib/asterisk";
  absl::Status written = WriteFile(
      etc + "/asterisk.conf",
      absl::StrCat("[directories]\n", "astcachedir => ", dir, "/lib\n", "astetcdir => ", etc, "\n",
                   "astmoddir => ", prefix, "/lib/asterisk/modules\n", "astvarlibdir => ", dir,
                   "/lib\n", "astdbdir => ", dir, "/lib\n", "astkeydir => ", dir, "/lib\n",
                   "astdatadir => ", data, "\n", "astagidir => ", data, "/agi-bin\n",
                   "astspooldir => ", dir, "/spool\n", "astrundir => ", dir, "/run\n",
                   "astlogdir => ", dir, "/log\n", "astsbindir => ", prefix, "/sbin\n",
                   "[options]\nverbose = 3\nnocolor = yes\nhideconnect = yes\n"));
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"modules.conf", "[modules]\nautoload = yes\n"},
           {"logger.conf", "[general]\n[logfiles]\nfull => notice,warning,error,verbose,dtmf\n"},
           {"manager.conf", absl::StrCat("[general]\nenabled = yes\nbindaddr = 127.0.0.1\nport = ",
                                         server->ami_port_,
                                         "\n\n[test]\nsecret = test\nread = all\nwrite = all\n")},
           {"http.conf", absl::StrCat("[general]\nenabled = yes\nbindaddr = 127.0.0.1\nbindport = ",
                                      server->http_port_, "\n")},
           // Playtones and indications (ringing, busy, hold) need a country.
           {"indications.conf",
            "[general]\ncountry = us\n\n[us]\ndescription = United States\n"
            "ringcadence = 2000,4000\ndial = 350+440\nbusy = 480+620/500,0/500\n"
            "ring = 440+480/2000,0/4000\ncongestion = 480+620/250,0/250\n"},
           {"ari.conf",
            "[general]\nenabled = yes\n\n[test]\ntype = user\nread_only = no\npassword = test\n"},
       }) {
    if (written.ok()) written = WriteFile(etc + "/" + name, text);
  }
  for (const char* name : kEmptyConfigs) {
    if (written.ok()) written = WriteFile(etc + "/" + name, "");
  }
  if (!written.ok()) return written;

  server->process_ = std::make_unique<Subprocess>(std::vector<std::string>{
      "/usr/bin/env", absl::StrCat("LD_LIBRARY_PATH=", prefix, "/lib"), prefix + "/sbin/asterisk",
      "-C", etc + "/asterisk.conf", "-f", "-n"});
  auto ami = AmiClient::Connect(server->ami_port_, "test", "test", absl::Seconds(60));
  if (!ami.ok()) {
    return absl::UnavailableError(absl::StrCat("Asterisk did not start: ", ami.status().message(),
                                               "; its log:\n", server->Log(), "\noutput:\n",
                                               server->process_->Output()));
  }
  server->ami_ = std::move(*ami);
  auto booted = server->ami_->Command("core waitfullybooted", absl::Seconds(60));
  if (!booted.ok()) return booted.status();
  return server;
}

AsteriskServer::~AsteriskServer() {
  if (ami_ != nullptr) (void)ami_->Command("core stop now", absl::Seconds(5));
  if (process_ != nullptr && !process_->Wait(absl::Seconds(10)).has_value()) {
    process_->Signal(SIGKILL);
    process_->Wait(absl::Seconds(5));
  }
  ami_.reset();
  if (!dir_.empty() && std::getenv("ASTERISK_TEST_KEEP") == nullptr) {
    (void)!std::system(absl::StrCat("rm -rf '", dir_, "'").c_str());
  }
}

absl::Status AsteriskServer::SetDialplan(const std::string& extensions) {
  if (absl::Status written = WriteFile(dir_ + "/etc/extensions.conf", extensions); !written.ok()) {
    return written;
  }
  auto output = ami_->Command("dialplan reload");
  if (!output.ok()) return output.status();
  return absl::OkStatus();
}

absl::Status AsteriskServer::Place(const Originate& call) {
  AmiClient::Fields fields = {{"Channel", call.channel}, {"Context", call.context},
                              {"Exten", call.exten},     {"Priority", "1"},
                              {"Async", "true"},         {"Timeout", "30000"}};
  for (const auto& [name, value] : call.variables) {
    fields.emplace_back("Variable", absl::StrCat(name, "=", value));
  }
  if (!call.codecs.empty()) fields.emplace_back("Codecs", call.codecs);
  if (!call.channel_id.empty()) fields.emplace_back("ChannelId", call.channel_id);
  return ami_->Action("Originate", fields).status();
}

absl::Status AsteriskServer::WaitForNoChannels(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last;
  while (absl::Now() < deadline) {
    auto output = ami_->Command("core show channels count");
    if (output.ok()) {
      last = *output;
      if (absl::StrContains(*output, "0 active channels")) return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat("channels still up: ", last));
}

std::string AsteriskServer::Log() const { return ReadFile(dir_ + "/log/full"); }

std::string AsteriskServer::LogTail(size_t lines) const {
  const std::string log = Log();
  size_t start = log.size();
  for (size_t seen = 0; start > 0 && seen <= lines; --start) {
    if (log[start - 1] == '\n') ++seen;
  }
  return log.substr(start);
}

absl::Status AsteriskServer::HangUpEverything(absl::Duration timeout) {
  (void)ami_->Command("channel request hangup all");
  return WaitForNoChannels(timeout);
}

std::vector<std::string> AsteriskServer::LogProblems(
    size_t since, const std::string& needle, const std::vector<std::string>& expected) const {
  std::vector<std::string> problems;
  const std::string log = Log();
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(log).substr(std::min(since, log.size())), '\n')) {
    if (!absl::StrContains(line, "ERROR[") && !absl::StrContains(line, "WARNING[")) continue;
    if (!absl::StrContains(absl::AsciiStrToLower(line), absl::AsciiStrToLower(needle))) continue;
    bool known = false;
    for (const std::string& e : expected) known |= absl::StrContains(line, e);
    if (!known) problems.emplace_back(line);
  }
  return problems;
}

}  // namespace audiosocket::testing
