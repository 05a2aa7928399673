package chdb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// chDB writes the Native format as for a client of protocol revision 0: no
// block info, no per-column serialization byte. A ClickHouse server writes it
// for the revision the client announced in client_protocol_version, and
// clickhouse-go reads it that way. The conversion decodes and re-encodes the
// blocks with the driver's own column codecs, so whatever the driver can
// read, it gets in the layout it expects.

// serverContext describes the engine to the column codecs.
func serverContext() *column.ServerContext {
	return &column.ServerContext{
		Revision:     engineRevision,
		VersionMajor: 26,
		VersionMinor: 7,
		Timezone:     time.UTC,
	}
}

// engineRevision is what revision() answers in chDB 26.7.
const engineRevision = 54513

// blockReader reads Native blocks from data and knows where data ends: at a
// block boundary, not inside a block, is the only clean end.
type blockReader struct {
	src *bytes.Reader
	buf *bufio.Reader
	r   *chproto.Reader
}

func newBlockReader(data []byte) *blockReader {
	src := bytes.NewReader(data)
	// ch-go wraps its source in a bufio.Reader of this size or reuses one
	// that is large enough; sharing it keeps the count of unread bytes.
	buf := bufio.NewReaderSize(src, 128<<10)
	return &blockReader{src: src, buf: buf, r: chproto.NewReader(buf)}
}

// next decodes the next block; it returns nil, nil at the end of data.
func (b *blockReader) next() (*proto.Block, error) {
	if b.src.Len()+b.buf.Buffered() == 0 {
		return nil, nil
	}
	block := &proto.Block{ServerContext: serverContext()}
	if err := block.Decode(b.r, 0); err != nil {
		return nil, err
	}
	return block, nil
}

// reencodeNative converts Native data of revision 0 to revision rev.
func reencodeNative(data []byte, rev uint64) ([]byte, error) {
	if rev == 0 || len(data) == 0 {
		return data, nil
	}
	br := newBlockReader(data)
	out := &chproto.Buffer{Buf: make([]byte, 0, len(data)+64)}
	for n := 0; ; n++ {
		block, err := br.next()
		if err != nil {
			return nil, fmt.Errorf("decode native block %d: %w", n, err)
		}
		if block == nil {
			return out.Buf, nil
		}
		if block.Rows() == 0 {
			names := block.ColumnsNames()
			types := make([]string, len(block.Columns))
			for i, c := range block.Columns {
				types[i] = string(c.Type())
			}
			encodeHeader(out, names, types, rev)
			continue
		}
		if err := block.Encode(out, rev); err != nil {
			return nil, fmt.Errorf("encode native block %d: %w", n, err)
		}
	}
}

// headerBlock encodes a block with columns and no rows, what ClickHouse sends
// for an empty result. Each type is checked to be one the driver can read.
func headerBlock(names, types []string, rev uint64) ([]byte, error) {
	for i := range names {
		if _, err := column.Type(types[i]).Column(names[i], serverContext()); err != nil {
			return nil, fmt.Errorf("header column %s %s: %w", names[i], types[i], err)
		}
	}
	out := &chproto.Buffer{}
	encodeHeader(out, names, types, rev)
	return out.Buf, nil
}

// encodeHeader writes a block without rows. It is written by hand because a
// block without rows carries no serialization state prefix (readers skip it
// when there are no rows), while the driver's encoder writes one for
// LowCardinality and other stateful columns.
func encodeHeader(out *chproto.Buffer, names, types []string, rev uint64) {
	if rev > 0 {
		// Block info: field 1 is_overflows=false, field 2 bucket_num=-1, end.
		out.PutUVarInt(1)
		out.PutBool(false)
		out.PutUVarInt(2)
		out.PutInt32(-1)
		out.PutUVarInt(0)
	}
	out.PutUVarInt(uint64(len(names)))
	out.PutUVarInt(0)
	for i := range names {
		out.PutString(names[i])
		out.PutString(types[i])
		if rev >= proto.DBMS_MIN_REVISION_WITH_CUSTOM_SERIALIZATION {
			out.PutBool(false)
		}
	}
}

// describeColumns reads the name and type columns of DESCRIBE output in
// Native format (revision 0).
func describeColumns(data []byte) (names, types []string, err error) {
	br := newBlockReader(data)
	for {
		block, err := br.next()
		if err != nil {
			return nil, nil, fmt.Errorf("decode describe output: %w", err)
		}
		if block == nil {
			return names, types, nil
		}
		if len(block.Columns) < 2 {
			return nil, nil, fmt.Errorf("decode describe output: %d columns, want at least 2", len(block.Columns))
		}
		for i := range block.Rows() {
			name, ok1 := block.Columns[0].Row(i, false).(string)
			typ, ok2 := block.Columns[1].Row(i, false).(string)
			if !ok1 || !ok2 {
				return nil, nil, errors.New("decode describe output: name and type are not strings")
			}
			names, types = append(names, name), append(types, typ)
		}
	}
}
