package leakcheck

// startParked starts, from non-test code, a goroutine that waits for stop;
// the package's tests use it as a goroutine to find.
func startParked(stop <-chan struct{}) { go parked(stop) }

func parked(stop <-chan struct{}) { <-stop }
