// Package seed holds the test that runs the article this project grew
// from: its three redis-py programs (a subscriber, a pattern subscriber
// and a publisher, in shared/seed beside the repository), unchanged,
// against pubsubd on localhost:6379. It has no code of its own.
//
// Where the programs or Python's redis-py are missing, go test runs no
// test here and its summary says "[no tests to run]"; with -v it says
// what is missing. Under CI the test always runs.
package seed
