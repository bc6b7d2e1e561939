package limit

import "maps"

// keyMap is a shard's map of per-tenant state that gives memory back. A Go map keeps the room
// of the most entries it ever held: after a burst of one-off tenants (a hundred thousand of
// them, each leased once, then forgotten by Sweep) the shards would hold that room for the
// life of the process, about 40 bytes a tenant. compact copies the map into one sized to
// what is left once deletions have cut it to a quarter of its peak.
type keyMap[V any] struct {
	m    map[string]V
	peak int
}

// compactMin is the peak below which a map is not worth copying.
const compactMin = 64

func newKeyMap[V any]() keyMap[V] { return keyMap[V]{m: make(map[string]V)} }

func (k *keyMap[V]) put(key string, v V) {
	k.m[key] = v
	if len(k.m) > k.peak {
		k.peak = len(k.m)
	}
}

// compact replaces the map when it holds a quarter of its peak or less; call it after
// deleting, with the shard locked.
func (k *keyMap[V]) compact() {
	if k.peak < compactMin || len(k.m) > k.peak/4 {
		return
	}
	m := make(map[string]V, len(k.m))
	maps.Copy(m, k.m)
	k.m, k.peak = m, len(m)
}
