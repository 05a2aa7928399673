package chdb_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/compress"

	"github.com/otpscope/otpscope/internal/chdb"
	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/polltest"
)

// fill reads an endless run of 'a': a comment's padding.
type fill struct{}

func (fill) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

// padded is a query of exactly n bytes: SELECT 1 and a comment.
func padded(n int) string {
	const head, tail = "SELECT 1 /* ", " */"
	return head + strings.Repeat("a", n-len(head)-len(tail)) + tail
}

// counter counts the bytes read through it.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// framed is data in ClickHouse's compressed framing, one frame per part.
func framed(t *testing.T, parts ...string) []byte {
	t.Helper()
	var out []byte
	for _, p := range parts {
		cw := compress.NewWriter(compress.LevelZero, compress.LZ4)
		if err := cw.Compress([]byte(p)); err != nil {
			t.Fatal(err)
		}
		out = append(out, cw.Data...)
	}
	return out
}

// send posts body to the endpoint at addr with the URL parameters, headers
// and, when user is set, basic auth.
func send(t *testing.T, addr string, body []byte, params url.Values, header http.Header, user *url.Userinfo) answer {
	t.Helper()
	u := url.URL{Scheme: "http", Host: addr, Path: "/", RawQuery: params.Encode()}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(req.Header, header)
	if user != nil {
		p, _ := user.Password()
		req.SetBasicAuth(user.Username(), p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %d bytes: %v", len(body), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	code, _ := strconv.Atoi(resp.Header.Get("X-ClickHouse-Exception-Code"))
	return answer{status: resp.StatusCode, code: code, body: string(b)}
}

// get sends query to the endpoint at addr by GET, as a guest.
func get(t *testing.T, addr, query string) answer {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/?query=" + url.QueryEscape(query))
	if err != nil {
		t.Errorf("GET %q: %v", query, err)
		return answer{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	code, _ := strconv.Atoi(resp.Header.Get("X-ClickHouse-Exception-Code"))
	return answer{status: resp.StatusCode, code: code, body: string(b)}
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	io.WriteString(zw, s)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestGuestQuerySize: a guest's query body is held to MaxGuestQuerySize,
// decompressed, while the owner's and, with external writes, everyone's
// keep MaxQuerySize.
func TestGuestQuerySize(t *testing.T) {
	const limit = 64 << 10
	srv := chdbtest.ServeConfig(t, chdb.HandlerConfig{MaxGuestQuerySize: limit})
	external := chdbtest.ServeConfig(t, chdb.HandlerConfig{MaxGuestQuerySize: limit, AllowExternalWrites: true})
	owner := url.UserPassword(srv.User, srv.Password)
	gz := http.Header{"Content-Encoding": {"gzip"}}
	framedParams := url.Values{"decompress": {"1"}}
	for _, s := range []*chdbtest.Server{srv, external} {
		if a := send(t, s.Addr, []byte("CREATE TABLE "+s.Database+".kv (k String) ENGINE = Memory"), nil, nil, url.UserPassword(s.User, s.Password)); a.status != http.StatusOK {
			t.Fatalf("create table: %d %s", a.status, a.body)
		}
	}
	// Inline data longer than a guest's limit (and the engine's
	// max_query_size, which counts no inline data).
	insert := func(db string) []byte {
		return []byte("INSERT INTO " + db + ".kv FORMAT TSV\n" + strings.Repeat(strings.Repeat("k", 99)+"\n", 3000))
	}
	tooLarge := fmt.Sprintf("Code: %d. DB::Exception: Query is larger than %d bytes. (QUERY_IS_TOO_LARGE)\n", chdb.CodeQueryTooLarge, limit)

	tests := []struct {
		name    string
		addr    string
		body    []byte
		params  url.Values
		header  http.Header
		user    *url.Userinfo
		want    string // the body of a 200
		refused bool   // or QUERY_IS_TOO_LARGE
	}{
		{name: "guest at the limit", addr: srv.Addr, body: []byte(padded(limit)), want: "1\n"},
		{name: "guest one byte over", addr: srv.Addr, body: []byte(padded(limit + 1)), refused: true},
		{name: "guest gzip at the limit", addr: srv.Addr, body: gzipped(t, padded(limit)), header: gz, want: "1\n"},
		{name: "guest gzip one byte over", addr: srv.Addr, body: gzipped(t, padded(limit+1)), header: gz, refused: true},
		{name: "guest query parameter and body", addr: srv.Addr, params: url.Values{"query": {"SELECT 40"}}, body: []byte("+ 2"), want: "42\n"},
		{name: "guest framed in two frames", addr: srv.Addr, params: framedParams, body: framed(t, "SELECT 40 ", "+ 2"), want: "42\n"},
		{name: "guest frame over the limit", addr: srv.Addr, params: framedParams, body: framed(t, padded(limit+1)), refused: true},
		{name: "guest inline insert", addr: srv.Addr, body: insert(srv.Database), refused: true},
		{name: "owner over the guest limit", addr: srv.Addr, user: owner, body: []byte("SELECT length('" + strings.Repeat("a", 2*limit) + "')"), want: strconv.Itoa(2*limit) + "\n"},
		{name: "owner gzip over the guest limit", addr: srv.Addr, user: owner, header: gz, body: gzipped(t, padded(3*limit)), want: "1\n"},
		{name: "owner framed over the guest limit", addr: srv.Addr, user: owner, params: framedParams, body: framed(t, padded(3*limit)), want: "1\n"},
		{name: "owner inline insert", addr: srv.Addr, user: owner, body: insert(srv.Database)},
		{name: "external writes: anonymous inline insert", addr: external.Addr, body: insert(external.Database)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := send(t, tt.addr, tt.body, tt.params, tt.header, tt.user)
			switch {
			case !tt.refused && (a.status != http.StatusOK || a.body != tt.want):
				t.Errorf("POST %d bytes = %d %.200q; want 200 %q", len(tt.body), a.status, a.body, tt.want)
			case tt.refused && (a.code != chdb.CodeQueryTooLarge || a.body != tooLarge || a.status != http.StatusInternalServerError):
				t.Errorf("POST %d bytes = %d, code %d: %.200q; want 500, %q", len(tt.body), a.status, a.code, a.body, tooLarge)
			}
		})
	}

	// The query URL parameter is bounded by net/http's header limit.
	long := "http://" + srv.Addr + "/?query=" + url.QueryEscape(padded(2*http.DefaultMaxHeaderBytes))
	resp, err := http.Get(long)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("GET with a %d-byte query parameter = %d; want 431", len(long), resp.StatusCode)
	}
}

// TestGuestBodyReadStopsAtLimit: the handler reads no more of a guest's body
// than the limit and a byte, decompressed, however much more the body holds.
func TestGuestBodyReadStopsAtLimit(t *testing.T) {
	const limit = 64 << 10
	const bomb = 64 << 20 // what each body would expand to
	h := chdb.NewHandler(chdbtest.Open(t), chdb.HandlerConfig{MaxGuestQuerySize: limit})
	serve := func(t *testing.T, h *chdb.Handler, body io.Reader, target string, header http.Header) {
		t.Helper()
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, target, body)
		req.Host = "127.0.0.1:8123" // the open endpoint answers this machine's names only
		maps.Copy(req.Header, header)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if code := rec.Header().Get("X-ClickHouse-Exception-Code"); code != strconv.Itoa(chdb.CodeQueryTooLarge) {
			t.Errorf("POST %s = %d, code %s: %.200q; want code %d", target, rec.Code, code, rec.Body, chdb.CodeQueryTooLarge)
		}
	}

	t.Run("plain", func(t *testing.T) {
		body := &counter{r: io.LimitReader(io.MultiReader(strings.NewReader("SELECT 1 /* "), fill{}), bomb)}
		serve(t, h, body, "/", nil)
		if body.n > limit+1 {
			t.Errorf("the handler read %d bytes of the body; want at most %d", body.n, limit+1)
		}
	})
	t.Run("plain, default limit", func(t *testing.T) {
		h := chdb.NewHandler(chdbtest.Open(t), chdb.HandlerConfig{})
		body := &counter{r: io.LimitReader(io.MultiReader(strings.NewReader("SELECT 1 /* "), fill{}), bomb)}
		serve(t, h, body, "/", nil)
		if body.n > chdb.DefaultMaxGuestQuerySize+1 {
			t.Errorf("the handler read %d bytes of the body; want at most %d", body.n, chdb.DefaultMaxGuestQuerySize+1)
		}
	})

	// A gzip stream of 64 MiB, compressed as it is read: what goes into the
	// compressor is what the handler decompressed, give or take the chunk
	// in the pipe.
	t.Run("gzip", func(t *testing.T) {
		const chunk = 4 << 10
		pr, pw := io.Pipe()
		var fed int64
		var wg sync.WaitGroup
		wg.Go(func() {
			zw := gzip.NewWriter(pw)
			src := io.LimitReader(io.MultiReader(strings.NewReader("SELECT 1 /* "), fill{}), bomb)
			buf := make([]byte, chunk)
			for {
				n, _ := src.Read(buf)
				if n == 0 {
					break
				}
				if _, err := zw.Write(buf[:n]); err != nil {
					return
				}
				// Flushed, the compressed stream is never more than a
				// chunk ahead of the handler.
				if err := zw.Flush(); err != nil {
					return
				}
				fed += int64(n)
			}
			zw.Close()
			pw.Close()
		})
		serve(t, h, pr, "/", http.Header{"Content-Encoding": {"gzip"}})
		pr.CloseWithError(io.ErrClosedPipe)
		wg.Wait()
		if fed > limit+2*chunk {
			t.Errorf("the handler decompressed about %d bytes of a %d-byte gzip body; want at most %d and a chunk", fed, int64(bomb), limit+1)
		}
	})

	// A frame's header says how large it is; ch-go's reader would allocate
	// that before reading a byte more.
	t.Run("framed", func(t *testing.T) {
		const header = 16 + 1 + 4 + 4
		frame := framed(t, padded(2*limit))
		body := &counter{r: bytes.NewReader(frame)}
		serve(t, h, body, "/?decompress=1", nil)
		if body.n > header {
			t.Errorf("the handler read %d bytes of a %d-byte frame; want its %d-byte header only", body.n, len(frame), header)
		}
	})
}

// slowGuest sends a guest's request whose body never ends, and returns its
// connection.
func slowGuest(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nSELECT 1 /* "); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGuestQueuedBeforeBody: a guest takes its place in the queue before its
// body is read, so that only as many as the queue holds keep one in memory.
func TestGuestQueuedBeforeBody(t *testing.T) {
	srv := chdbtest.ServeConfig(t, chdb.HandlerConfig{GuestQueue: 1})
	slow := []net.Conn{slowGuest(t, srv.Addr), slowGuest(t, srv.Addr)}
	polltest.Until(t, 30*time.Second, "two guests sending their query", func() bool {
		running, waiting := srv.Handler.Guests()
		return running == 0 && waiting == 2
	})
	if a := ask(t, srv.Addr, "SELECT 1", nil); a.status != http.StatusServiceUnavailable || a.code != chdb.CodeTooManyQueries {
		t.Errorf("third guest = %d, code %d: %s; want 503, code %d", a.status, a.code, a.body, chdb.CodeTooManyQueries)
	}
	for _, c := range slow {
		c.Close()
	}
	polltest.Until(t, 30*time.Second, "the guests that left to give their slots back", func() bool {
		running, waiting := srv.Handler.Guests()
		return running == 0 && waiting == 0
	})
	if a := ask(t, srv.Addr, "SELECT 1", nil); a.status != http.StatusOK {
		t.Errorf("guest after the slow ones left = %d: %s; want 200", a.status, a.body)
	}
}

// TestGuestBodyTimeout: a guest that stops sending its query is answered
// once its time is up, and gives its slot back.
func TestGuestBodyTimeout(t *testing.T) {
	h := chdb.NewHandler(chdbtest.Open(t), chdb.HandlerConfig{GuestQueue: 2})
	chdb.SetGuestBodyTimeout(h, 100*time.Millisecond)
	srv, err := chdb.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	polltest.Go(t, "ClickHouse endpoint", srv.Serve)

	c := slowGuest(t, srv.Addr())
	c.SetReadDeadline(time.Now().Add(60 * time.Second)) // a hang fails, not the time taken
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read the answer to a guest that stopped sending: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("guest that stopped sending = %d; want an error", resp.StatusCode)
	}
	polltest.Until(t, 30*time.Second, "the slot back", func() bool {
		running, waiting := h.Guests()
		return running == 0 && waiting == 0
	})

	// Its time to send ends once its query is read, or at once without a
	// body: waiting for its turn and running take what they take.
	answers := make([]answer, 3)
	var wg sync.WaitGroup
	wg.Go(func() { answers[0] = ask(t, srv.Addr(), "SELECT sleep(1)", nil) })
	polltest.Until(t, 30*time.Second, "a guest running", func() bool {
		running, _ := h.Guests()
		return running == 1
	})
	wg.Go(func() { answers[1] = ask(t, srv.Addr(), "SELECT 1", nil) })
	wg.Go(func() { answers[2] = get(t, srv.Addr(), "SELECT 1") })
	wg.Wait()
	for i, a := range answers {
		if a.status != http.StatusOK {
			t.Errorf("guest %d, which waited or ran past its time to send, = %d: %s; want 200", i, a.status, a.body)
		}
	}

	// The owner is not held to it.
	user, password := h.Credentials()
	q := url.Values{"user": {user}, "password": {password}}
	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, "SELECT ")
		time.Sleep(300 * time.Millisecond) // longer than a guest may take
		io.WriteString(pw, "1")
		pw.Close()
	}()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+srv.Addr()+"/?"+q.Encode(), pr)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(body) != "1\n" {
		t.Errorf("owner's slow query = %d %q; want 200 \"1\\n\"", res.StatusCode, body)
	}
}
