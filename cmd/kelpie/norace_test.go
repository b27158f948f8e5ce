//go:build !race

package main

// raceEnabled reports whether the test binary runs under the race
// detector; the integration tests then build the server with it too.
const raceEnabled = false
