package chdb

import "time"

// SetGuestBodyTimeout shortens how long a guest has to send its query, for
// a test that waits for it to pass. Call it before the handler serves.
func SetGuestBodyTimeout(h *Handler, d time.Duration) { h.guestBody = d }
