package engine

// childMain is replaced by the crash test's child mode; false in a normal test process.
func childMain() bool { return false }
