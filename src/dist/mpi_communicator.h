// The Communicator over MPI (Open MPI from Debian), for `mpirun -np N moon serve
// --tensor-parallel-size N`. Every collective is posted non-blocking and polled against a
// deadline, so a rank that died or hangs costs an error after `timeout_s`, never a hang;
// polling backs off to short sleeps, so a rank waiting for the others leaves the cores to
// them (ranks share this machine's cores). Builds without MPI too: then create() says so.
#pragma once

#include <memory>

#include "dist/communicator.h"
#include "util/result.h"

namespace moon {

// Whether this binary was built with MPI.
bool mpi_available();

// Initialises MPI (once per process; MPI_THREAD_SERIALIZED, as the engine thread makes the
// calls) and returns MPI_COMM_WORLD. The returned object finalises MPI when destroyed.
Result<std::unique_ptr<Communicator>> create_mpi_communicator(double timeout_s);

}  // namespace moon
