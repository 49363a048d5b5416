package kv

// Prefix returns db seen through bucket names that begin with prefix:
// bucket "b" of the returned DB is bucket prefix+"b" of db. Parts of the
// collector that kept files of their own (the deadline engine's cases.db)
// share one PostgreSQL database this way without their bucket names
// meeting. Close closes db.
func Prefix(db DB, prefix string) DB {
	if prefix == "" {
		return db
	}
	return prefixDB{db, prefix}
}

type prefixDB struct {
	db     DB
	prefix string
}

func (p prefixDB) View(fn func(Tx) error) error {
	return p.db.View(func(tx Tx) error { return fn(prefixTx{tx, p.prefix}) })
}

func (p prefixDB) Update(fn func(Tx) error) error {
	return p.db.Update(func(tx Tx) error { return fn(prefixTx{tx, p.prefix}) })
}

func (p prefixDB) Close() error { return p.db.Close() }

type prefixTx struct {
	tx     Tx
	prefix string
}

func (t prefixTx) Get(bucket string, key []byte) ([]byte, error) {
	return t.tx.Get(t.prefix+bucket, key)
}

func (t prefixTx) Put(bucket string, key, value []byte) error {
	return t.tx.Put(t.prefix+bucket, key, value)
}

func (t prefixTx) Delete(bucket string, key []byte) error {
	return t.tx.Delete(t.prefix+bucket, key)
}

func (t prefixTx) Scan(bucket string, from, to []byte, reverse bool, fn func(key, value []byte) error) error {
	return t.tx.Scan(t.prefix+bucket, from, to, reverse, fn)
}

// NoClose returns db with a Close that does nothing, for a part handed a
// DB that its owner closes.
func NoClose(db DB) DB { return noClose{db} }

type noClose struct{ DB }

func (noClose) Close() error { return nil }
