// Fuzz harnesses of the three parsers a peer or an operator feeds: events
// (from Kafka), admin requests (from the socket) and the configuration
// (file and --set). Each runs one input and checks what must hold for any
// input; a violation aborts. libFuzzer drives them (tests/fuzz/*_fuzz.cc,
// deploy/dev/fuzz.sh) and the unit suite replays the committed corpora and
// every crash input found (fuzz_replay_test).
#pragma once

#include <cstddef>
#include <cstdint>

namespace cdr::fuzz {

void event(const std::uint8_t* data, std::size_t size);
void admin_request(const std::uint8_t* data, std::size_t size);
void config(const std::uint8_t* data, std::size_t size);

}  // namespace cdr::fuzz
