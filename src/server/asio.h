// Boost.Asio and Beast, included one way everywhere in the server.
#pragma once

// clang-format off
// First: Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>,
// which GCC 12's C++20 library no longer pulls in indirectly.
#include <utility>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
// clang-format on
