package chdb_test

import (
	"bytes"
	"testing"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
)

const benchBatch = 10_000

var eventColumns = []struct{ name, typ string }{
	{"id", "UUID"}, {"at", "DateTime64(3, 'UTC')"}, {"channel", "LowCardinality(String)"},
	{"error_code", "Nullable(String)"}, {"attrs", "Map(String, String)"}, {"seq", "UInt64"}, {"cost", "Float64"},
}

// nativeEvents encodes events as the driver does for an HTTP insert.
func nativeEvents(tb testing.TB, events []event) []byte {
	tb.Helper()
	block := proto.Block{ServerContext: &column.ServerContext{}}
	for _, c := range eventColumns {
		if err := block.AddColumn(c.name, column.Type(c.typ)); err != nil {
			tb.Fatal(err)
		}
	}
	for _, e := range events {
		if err := block.Append(e.ID, e.At, e.Channel, e.ErrorCode, e.Attrs, e.Seq, e.Cost); err != nil {
			tb.Fatal(err)
		}
	}
	var buf chproto.Buffer
	if err := block.Encode(&buf, 0); err != nil {
		tb.Fatal(err)
	}
	return buf.Buf
}

// BenchmarkRawInsert measures the engine alone: 10,000-row Native batches
// through the streaming insert.
func BenchmarkRawInsert(b *testing.B) {
	e := chdbtest.Open(b)
	db := chdbtest.Database(b, e)
	if _, err := e.Exec(b.Context(), chdb.Statement{SQL: eventsDDL, Database: db}); err != nil {
		b.Fatal(err)
	}
	data := nativeEvents(b, sampleEvents(benchBatch))
	st := chdb.Statement{SQL: "INSERT INTO " + db + ".events", Format: "Native"}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		res, err := e.Insert(b.Context(), st, bytes.NewReader(data))
		if err != nil || res.RowsWritten != benchBatch {
			b.Fatalf("Insert = %+v, %v; want %d rows", res, err, benchBatch)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkDriverInsert measures the same batches through clickhouse-go and
// the HTTP endpoint, appending rows included.
func BenchmarkDriverInsert(b *testing.B) {
	srv := chdbtest.Serve(b)
	conn := chdbtest.Conn(b, srv.Options())
	if err := conn.Exec(b.Context(), eventsDDL); err != nil {
		b.Fatal(err)
	}
	events := sampleEvents(benchBatch)
	b.ResetTimer()
	for b.Loop() {
		batch, err := conn.PrepareBatch(b.Context(), "INSERT INTO events")
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range events {
			if err := batch.Append(e.ID, e.At, e.Channel, e.ErrorCode, e.Attrs, e.Seq, e.Cost); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "rows/s")
}
