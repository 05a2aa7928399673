package ops

import "sync"

// Series keeps the children of a Prometheus metric vector by their label
// values, for handlers that count every request: WithLabelValues hashes the
// labels and looks the child up on every call, a few percent of a webhook's
// CPU. The zero value is ready; K must be bounded (label values that cannot
// grow without limit), as the vector's series are.
type Series[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

// Get is the child kept for k, made by child on first use.
func (s *Series[K, V]) Get(k K, child func() V) V {
	s.mu.RLock()
	v, ok := s.m[k]
	s.mu.RUnlock()
	if ok {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[k]; ok {
		return v
	}
	if s.m == nil {
		s.m = map[K]V{}
	}
	v = child()
	s.m[k] = v
	return v
}
