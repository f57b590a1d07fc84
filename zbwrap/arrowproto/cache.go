package arrowproto

import (
	"container/list"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
)

// Cache holds compiled schemas, keyed by the schema's column names and
// storage types, so that a stream of batches with one schema compiles it once.
// It keeps the most recently used schemas, up to its size. A Cache is safe for
// concurrent use; concurrent Gets of one new schema compile it once.
type Cache struct {
	opts []Option
	size int

	mu    sync.Mutex
	byKey map[string]*list.Element
	byPtr map[*arrow.Schema]*list.Element
	lru   list.List // of *cacheEntry, most recent first
}

type cacheEntry struct {
	key  string
	ptrs []*arrow.Schema // schema values seen for this key (identity fast path)
	once sync.Once
	s    *Schema
	err  error
}

// maxPtrsPerEntry bounds the schema values remembered per entry.
const maxPtrsPerEntry = 8

// NewCache returns a cache of at most size schemas (at least 1), compiled
// with opts.
func NewCache(size int, opts ...Option) *Cache {
	return &Cache{
		opts:  opts,
		size:  max(size, 1),
		byKey: map[string]*list.Element{},
		byPtr: map[*arrow.Schema]*list.Element{},
	}
}

// Get returns the compiled s, compiling it on first use. A schema that fails
// to compile keeps failing with the same error while it stays cached.
func (c *Cache) Get(s *arrow.Schema) (*Schema, error) {
	if s == nil {
		return NewSchema(nil, c.opts...)
	}
	c.mu.Lock()
	el, ok := c.byPtr[s]
	if !ok {
		key := schemaKey(s)
		el, ok = c.byKey[key]
		if !ok {
			el = c.lru.PushFront(&cacheEntry{key: key})
			c.byKey[key] = el
			c.evict()
		}
		ent := el.Value.(*cacheEntry)
		if len(ent.ptrs) < maxPtrsPerEntry {
			ent.ptrs = append(ent.ptrs, s)
			c.byPtr[s] = el
		}
	}
	c.lru.MoveToFront(el)
	ent := el.Value.(*cacheEntry)
	c.mu.Unlock()

	ent.once.Do(func() { ent.s, ent.err = NewSchema(s, c.opts...) })
	return ent.s, ent.err
}

// Len returns the number of cached schemas.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *Cache) evict() {
	for c.lru.Len() > c.size {
		el := c.lru.Back()
		ent := el.Value.(*cacheEntry)
		c.lru.Remove(el)
		delete(c.byKey, ent.key)
		for _, p := range ent.ptrs {
			delete(c.byPtr, p)
		}
	}
}
