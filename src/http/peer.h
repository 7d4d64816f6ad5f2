#pragma once
// Who is at the other end of a TCP connection accepted on this host.

#include <boost/asio/ip/tcp.hpp>
#include <optional>

namespace nimbus::http {

// The uid owning the TCP socket at `peer` that is connected to `local`
// (both on this host, IPv4), from the kernel's sock_diag; nullopt if unknown
// (another host, IPv6, or the socket is already gone). One netlink round trip.
[[nodiscard]] std::optional<unsigned> socket_owner_uid(const boost::asio::ip::tcp::endpoint& local,
                                                       const boost::asio::ip::tcp::endpoint& peer);

}  // namespace nimbus::http
