// The topics the daemon uses, as the end-to-end benchmarks create them on
// their mock cluster: 16 partitions for the input and handover topics, one
// for each of the others.
#pragma once

#include <vector>

#include "cdr/kafka/embedded_cluster.h"

namespace bench {

inline std::vector<cdr::kafka::topic_spec> daemon_topics() {
  return {{"cdr", 16},
          {"usage", 16},
          {"cdr-retention-dlq", 1},
          {"cdr-retention-events", 1},
          {"cdr-retention-control", 1},
          {"cdr-retention-replies", 1},
          {"cdr-retention-handover", 16}};
}

}  // namespace bench
