#include "http/peer.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace nimbus::http {

namespace asio = boost::asio;

std::optional<unsigned> socket_owner_uid(const asio::ip::tcp::endpoint& local, const asio::ip::tcp::endpoint& peer) {
  if (!local.address().is_v4() || !peer.address().is_v4()) return std::nullopt;
  const int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return std::nullopt;
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } message{};
  message.header.nlmsg_len = sizeof message;
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST;
  message.request.sdiag_family = AF_INET;
  message.request.sdiag_protocol = IPPROTO_TCP;
  message.request.idiag_states = ~0u;
  // The connecting socket: its source is the peer, its destination us.
  message.request.id.idiag_sport = htons(peer.port());
  message.request.id.idiag_dport = htons(local.port());
  const auto src = peer.address().to_v4().to_bytes();
  const auto dst = local.address().to_v4().to_bytes();
  std::memcpy(&message.request.id.idiag_src[0], src.data(), 4);
  std::memcpy(&message.request.id.idiag_dst[0], dst.data(), 4);
  message.request.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  message.request.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  std::optional<unsigned> uid;
  if (::sendto(fd, &message, sizeof message, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) ==
      static_cast<ssize_t>(sizeof message)) {
    alignas(nlmsghdr) char buffer[8192];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    // The answer to an exact match is one message (or an error).
    if (n >= static_cast<ssize_t>(sizeof(nlmsghdr))) {
      const auto* h = reinterpret_cast<const nlmsghdr*>(buffer);
      if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && h->nlmsg_len <= static_cast<std::size_t>(n) &&
          h->nlmsg_len >= NLMSG_LENGTH(sizeof(inet_diag_msg))) {
        const auto* diag = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
        uid = diag->idiag_uid;
      }
    }
  }
  ::close(fd);
  return uid;
}

}  // namespace nimbus::http
