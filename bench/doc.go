// Package bench is Tandem's load generator: a fixed number of clients, each
// in a closed loop (send a request, wait for the answer, send the next),
// spread evenly over the nodes of a cluster, for a warm-up and then a
// measured period.
//
// Run prepares the cluster (creates the table, preloads the key space for
// the workloads that read), runs the workload, and returns a Result: the
// number of operations that succeeded in the measured window, their rate,
// latency quantiles from a log-bucketed Histogram, and the failures counted
// by error code. It prints nothing; the caller decides how to show the
// Result, so that the same numbers can feed `tandem bench` and a harness
// that compares Tandem with other stores.
//
// What is measured: an operation counts if it completes inside the window,
// whenever it started; its latency is the time from sending the request to
// reading the whole answer, as the client sees it (queueing in the client's
// connection pool included). Latencies are of successful operations only;
// failures are counted, not timed.
package bench
