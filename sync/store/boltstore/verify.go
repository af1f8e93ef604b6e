package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// The bbolt file layout (go.etcd.io/bbolt, file format version 2), read
// here with ordinary reads so that a damaged file is refused before bbolt
// maps it: bbolt trusts every page number and offset it finds, so a
// truncated file makes it read past the end of its mapping (SIGBUS, which
// kills the process) and a flipped byte makes it panic or loop.
const (
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	pageHeaderSize  = 16 // id u64, flags u16, count u16, overflow u32
	elementSize     = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	metaSize        = 64 // magic, version, pageSize, flags u32; root, sequence, freelist, pgid, txid, checksum u64
	bucketHeader    = 16 // root u64, sequence u64
	branchPageFlag  = 0x01
	leafPageFlag    = 0x02
	freelistFlag    = 0x10
	bucketLeafFlag  = 0x01
	noFreelist      = ^uint64(0)
	minPageSize     = 512
	maxPageSize     = 1 << 24
	maxBucketNest   = 8
	freelistOverCnt = 0xFFFF
)

// bbolt lays its structures out in the machine's byte order.
var ne = binary.NativeEndian

// boltMeta is one decoded meta page.
type boltMeta struct {
	magic, version, pageSize uint32
	root, freelist, pgid     uint64
	txid, checksum, sum      uint64
}

func (m boltMeta) valid() error {
	switch {
	case m.magic != boltMagic:
		return errors.New("no bbolt magic number")
	case m.version != boltVersion:
		return fmt.Errorf("bbolt version %d, not %d", m.version, boltVersion)
	case m.checksum != m.sum:
		return fmt.Errorf("checksum %016x, computed %016x", m.checksum, m.sum)
	}
	return nil
}

// parseMeta decodes the meta in a page that starts at b (nil if b is too
// short to hold one).
func parseMeta(b []byte) *boltMeta {
	if len(b) < pageHeaderSize+metaSize {
		return nil
	}
	m := b[pageHeaderSize:]
	h := fnv.New64a()
	h.Write(m[:56])
	return &boltMeta{
		magic: ne.Uint32(m[0:]), version: ne.Uint32(m[4:]), pageSize: ne.Uint32(m[8:]),
		root: ne.Uint64(m[16:]), freelist: ne.Uint64(m[32:]), pgid: ne.Uint64(m[40:]),
		txid: ne.Uint64(m[48:]), checksum: ne.Uint64(m[56:]), sum: h.Sum64(),
	}
}

// fileCheck is what checkFile learnt about a file that passed.
type fileCheck struct {
	pageSize int
	pages    uint64 // the high water mark: pages 0 .. pages-1 are in use or free
	txid     uint64
	// fellBack says that the newer meta page is invalid, so bbolt will use
	// the older one (the last transaction but one). That is how bbolt
	// survives a torn meta write, and is harmless if that transaction never
	// returned; if it did (the witness says so), commits are lost.
	fellBack string
}

// checkFile reads the whole bbolt file at path with ordinary reads and
// checks everything bbolt would trust: the meta pages, the file size
// against them, the freelist, and every page of every bucket's B+tree (page
// numbers in range, page types, element offsets inside their page, keys in
// order, no page reached twice or both reached and free, every page either
// reached or free). It returns an error wrapping [ErrNotAStore] for a file
// that has no bbolt meta page at all, and one wrapping [ErrDamaged] for
// anything else wrong. After it passed, bbolt reads nothing out of bounds.
func checkFile(path string) (fileCheck, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileCheck{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fileCheck{}, err
	}
	c := &checker{f: f, size: fi.Size()}
	return c.run()
}

type checker struct {
	f        *os.File
	size     int64
	pageSize int
	pages    uint64
	state    []byte // per page: 0 unseen, 1 reachable, 2 free
}

const (
	pageReached = 1
	pageFree    = 2
)

func damaged(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrDamaged, fmt.Sprintf(format, args...))
}

// read returns n bytes at off; fewer at the end of the file.
func (c *checker) read(off int64, n int) ([]byte, error) {
	b := make([]byte, n)
	m, err := c.f.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:m], nil
}

func (c *checker) run() (fileCheck, error) {
	// The page size, found as bbolt finds it: from the first meta page if
	// it is valid, else from the second one, looked for at every power of
	// two from 1 KiB.
	first, err := c.read(0, 4096)
	if err != nil {
		return fileCheck{}, err
	}
	looksBolt := false
	if m := parseMeta(first); m != nil {
		looksBolt = m.magic == boltMagic
		if m.valid() == nil {
			c.pageSize = int(m.pageSize)
		}
	}
	for i := 0; c.pageSize == 0 && i <= 14; i++ {
		pos := int64(1024) << i
		if pos >= c.size-1024 {
			break
		}
		b, err := c.read(pos, 4096)
		if err != nil {
			return fileCheck{}, err
		}
		if m := parseMeta(b); m != nil {
			looksBolt = looksBolt || m.magic == boltMagic
			if m.valid() == nil {
				c.pageSize = int(m.pageSize)
			}
		}
	}
	if c.pageSize == 0 {
		if looksBolt {
			return fileCheck{}, damaged("%d bytes: no valid meta page", c.size)
		}
		return fileCheck{}, fmt.Errorf("%w: not a bbolt database (no valid meta page in %d bytes)", ErrNotAStore, c.size)
	}
	if c.pageSize < minPageSize || c.pageSize > maxPageSize || c.pageSize&(c.pageSize-1) != 0 {
		return fileCheck{}, damaged("page size %d", c.pageSize)
	}
	ps := int64(c.pageSize)
	if c.size < 2*ps {
		return fileCheck{}, damaged("truncated: %d bytes, less than the two meta pages of %d bytes", c.size, ps)
	}

	// The meta page bbolt will use: the one with the higher transaction
	// ID if it is valid, else the other.
	var metas [2]*boltMeta
	for i := range metas {
		b, err := c.read(int64(i)*ps, c.pageSize)
		if err != nil {
			return fileCheck{}, err
		}
		if metas[i] = parseMeta(b); metas[i] == nil {
			return fileCheck{}, damaged("truncated meta page %d", i)
		}
	}
	a, b := 0, 1
	if metas[1].txid > metas[0].txid {
		a, b = 1, 0
	}
	var fc fileCheck
	m := metas[a]
	if err := m.valid(); err != nil {
		if err2 := metas[b].valid(); err2 != nil {
			return fileCheck{}, damaged("both meta pages are invalid: page %d: %v; page %d: %v", a, err, b, err2)
		}
		fc.fellBack = fmt.Sprintf("meta page %d is invalid (%v); bbolt falls back to meta page %d (transaction %d)", a, err, b, metas[b].txid)
		m = metas[b]
	}
	if int(m.pageSize) != c.pageSize {
		return fileCheck{}, damaged("meta page says page size %d, the file's is %d", m.pageSize, c.pageSize)
	}
	c.pages = m.pgid
	switch {
	case c.pages < 3 || c.pages > uint64(c.size/ps):
		return fileCheck{}, damaged("truncated: the meta page (transaction %d) counts %d pages of %d bytes (%d bytes); the file has %d bytes",
			m.txid, m.pgid, ps, m.pgid*uint64(ps), c.size)
	case m.root < 2 || m.root >= c.pages:
		return fileCheck{}, damaged("root page %d outside pages 2..%d", m.root, c.pages-1)
	case m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= c.pages):
		return fileCheck{}, damaged("freelist page %d outside pages 2..%d", m.freelist, c.pages-1)
	}
	c.state = make([]byte, c.pages)
	c.state[0], c.state[1] = pageReached, pageReached
	if m.freelist != noFreelist {
		if err := c.freelist(m.freelist); err != nil {
			return fileCheck{}, err
		}
	}
	if err := c.tree(m.root); err != nil {
		return fileCheck{}, err
	}
	// bbolt's own consistency rule: every page is in use or free. A page
	// that is neither was lost by a damaged branch or freelist.
	for id, st := range c.state {
		if st == 0 {
			return fileCheck{}, damaged("page %d is neither in use nor free", id)
		}
	}
	fc.pageSize, fc.pages, fc.txid = c.pageSize, c.pages, m.txid
	return fc, nil
}

// page reads page id with its overflow pages, after checking its header
// and marking it reached.
func (c *checker) page(id uint64, what string) (buf []byte, flags uint16, count int, err error) {
	if id < 2 || id >= c.pages {
		return nil, 0, 0, damaged("%s: page %d outside pages 2..%d", what, id, c.pages-1)
	}
	off := int64(id) * int64(c.pageSize)
	h, err := c.read(off, pageHeaderSize)
	if err != nil {
		return nil, 0, 0, err
	}
	if len(h) < pageHeaderSize {
		return nil, 0, 0, damaged("%s: page %d: truncated", what, id)
	}
	if got := ne.Uint64(h); got != id {
		return nil, 0, 0, damaged("%s: page %d says it is page %d", what, id, got)
	}
	flags, count = ne.Uint16(h[8:]), int(ne.Uint16(h[10:]))
	overflow := uint64(ne.Uint32(h[12:]))
	if overflow >= c.pages-id {
		return nil, 0, 0, damaged("%s: page %d: %d overflow pages run past page %d", what, id, overflow, c.pages-1)
	}
	for p := id; p <= id+overflow; p++ {
		switch c.state[p] {
		case pageReached:
			return nil, 0, 0, damaged("%s: page %d reached twice", what, p)
		case pageFree:
			return nil, 0, 0, damaged("%s: page %d is in use and also free", what, p)
		}
		c.state[p] = pageReached
	}
	buf, err = c.read(off, int(overflow+1)*c.pageSize)
	if err != nil {
		return nil, 0, 0, err
	}
	if len(buf) < int(overflow+1)*c.pageSize {
		return nil, 0, 0, damaged("%s: page %d: truncated", what, id)
	}
	return buf, flags, count, nil
}

func (c *checker) freelist(id uint64) error {
	buf, flags, count, err := c.page(id, "freelist")
	if err != nil {
		return err
	}
	if flags != freelistFlag {
		return damaged("freelist: page %d has type %#x, not a freelist", id, flags)
	}
	start := pageHeaderSize
	n := uint64(count)
	if count == freelistOverCnt {
		if len(buf) < start+8 {
			return damaged("freelist: page %d: no count", id)
		}
		n, start = ne.Uint64(buf[start:]), start+8
	}
	if n > uint64(len(buf)-start)/8 {
		return damaged("freelist: page %d: %d free pages do not fit in it", id, n)
	}
	for i := range int(n) {
		p := ne.Uint64(buf[start+8*i:])
		if p < 2 || p >= c.pages {
			return damaged("freelist: page %d lists page %d outside pages 2..%d", id, p, c.pages-1)
		}
		if c.state[p] != 0 {
			return damaged("freelist: page %d lists page %d twice, or a page in use", id, p)
		}
		c.state[p] = pageFree
	}
	return nil
}

// item is a page still to check: its number, the bucket it belongs to,
// and the range [lo, hi) its keys must fall in (nil: unbounded).
type item struct {
	id     uint64
	bucket string
	depth  int
	lo, hi []byte
}

// tree checks the B+trees from the root bucket's page, depth first with an
// explicit stack: a cycle of pages is caught as a page reached twice, never
// followed.
func (c *checker) tree(root uint64) error {
	stack := []item{{id: root, bucket: "root bucket"}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		buf, flags, count, err := c.page(it.id, it.bucket)
		if err != nil {
			return err
		}
		where := fmt.Sprintf("%s: page %d", it.bucket, it.id)
		switch flags {
		case branchPageFlag:
			if count == 0 {
				return damaged("%s: branch page without elements", where)
			}
			keys := make([][]byte, count)
			children := make([]uint64, count)
			for i := range count {
				e := pageHeaderSize + i*elementSize
				if e+elementSize > len(buf) {
					return damaged("%s: %d elements do not fit", where, count)
				}
				k, err := span(buf, e, ne.Uint32(buf[e:]), ne.Uint32(buf[e+4:]), 0)
				if err != nil {
					return damaged("%s: element %d: %v", where, i, err)
				}
				keys[i], children[i] = k, ne.Uint64(buf[e+8:])
			}
			if err := ordered(keys, it.lo, it.hi); err != nil {
				return damaged("%s: %v", where, err)
			}
			// Push in reverse so that children are checked in key order.
			for i := count - 1; i >= 0; i-- {
				hi := it.hi
				if i+1 < count {
					hi = keys[i+1]
				}
				stack = append(stack, item{id: children[i], bucket: it.bucket, depth: it.depth,
					lo: bytes.Clone(keys[i]), hi: bytes.Clone(hi)})
			}
		case leafPageFlag:
			subs, err := c.leaf(buf, count, it.lo, it.hi, it.bucket, it.depth, where)
			if err != nil {
				return err
			}
			stack = append(stack, subs...)
		default:
			return damaged("%s: type %#x, not a branch or leaf page", where, flags)
		}
	}
	return nil
}

// leaf checks the elements of a leaf page (or of an inline bucket's page)
// in buf, and returns the root pages of the sub-buckets it holds.
func (c *checker) leaf(buf []byte, count int, lo, hi []byte, bucket string, depth int, where string) ([]item, error) {
	keys := make([][]byte, count)
	var subs []item
	for i := range count {
		e := pageHeaderSize + i*elementSize
		if e+elementSize > len(buf) {
			return nil, damaged("%s: %d elements do not fit", where, count)
		}
		flags, pos, ksize, vsize := ne.Uint32(buf[e:]), ne.Uint32(buf[e+4:]), ne.Uint32(buf[e+8:]), ne.Uint32(buf[e+12:])
		kv, err := span(buf, e, pos, ksize, vsize)
		if err != nil {
			return nil, damaged("%s: element %d: %v", where, i, err)
		}
		keys[i] = kv[:ksize]
		if flags&^bucketLeafFlag != 0 {
			return nil, damaged("%s: element %d: flags %#x", where, i, flags)
		}
		if flags&bucketLeafFlag == 0 {
			continue
		}
		name := fmt.Sprintf("bucket %q", keys[i])
		if depth > 0 {
			name = bucket + "/" + name
		}
		v := kv[ksize:]
		if depth+1 > maxBucketNest {
			return nil, damaged("%s: buckets nested deeper than %d", name, maxBucketNest)
		}
		if len(v) < bucketHeader {
			return nil, damaged("%s: bucket header of %d bytes", name, len(v))
		}
		if r := ne.Uint64(v); r != 0 {
			subs = append(subs, item{id: r, bucket: name, depth: depth + 1})
			continue
		}
		// An inline bucket: its one leaf page follows the header, inside
		// the value. It holds no sub-buckets.
		in := v[bucketHeader:]
		if len(in) < pageHeaderSize {
			return nil, damaged("%s: inline page of %d bytes", name, len(in))
		}
		if f := ne.Uint16(in[8:]); f != leafPageFlag {
			return nil, damaged("%s: inline page of type %#x, not a leaf", name, f)
		}
		inSubs, err := c.leaf(in, int(ne.Uint16(in[10:])), nil, nil, name, depth+1, name+" (inline)")
		if err != nil {
			return nil, err
		}
		if len(inSubs) > 0 {
			return nil, damaged("%s: an inline bucket holds a sub-bucket", name)
		}
	}
	if err := ordered(keys, lo, hi); err != nil {
		return nil, damaged("%s: %v", where, err)
	}
	return subs, nil
}

// span returns the ksize+vsize bytes at element offset e + pos in buf, or
// an error if they do not lie inside buf.
func span(buf []byte, e int, pos, ksize, vsize uint32) ([]byte, error) {
	start := uint64(e) + uint64(pos)
	end := start + uint64(ksize) + uint64(vsize)
	if end > uint64(len(buf)) {
		return nil, fmt.Errorf("key and value at %d..%d outside the page's %d bytes", start, end, len(buf))
	}
	return buf[start:end], nil
}

// ordered checks that keys are strictly increasing and inside [lo, hi).
func ordered(keys [][]byte, lo, hi []byte) error {
	for i, k := range keys {
		switch {
		case i > 0 && bytes.Compare(keys[i-1], k) >= 0:
			return fmt.Errorf("key %d (%x) is not after key %d (%x)", i, k, i-1, keys[i-1])
		case lo != nil && bytes.Compare(k, lo) < 0:
			return fmt.Errorf("key %d (%x) is before its parent's key %x", i, k, lo)
		case hi != nil && bytes.Compare(k, hi) >= 0:
			return fmt.Errorf("key %d (%x) is not before the next key of its parent %x", i, k, hi)
		}
	}
	return nil
}
