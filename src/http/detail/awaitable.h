#pragma once
// Completion token shared by the http part's coroutines (internal): errors
// come back as values, never as exceptions.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace nimbus::http::detail {

inline constexpr auto kUseTuple = boost::asio::as_tuple(boost::asio::use_awaitable);

}  // namespace nimbus::http::detail
